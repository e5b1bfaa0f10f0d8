import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import type { DescriptorChain } from "../queue.js";
import { DeviceId, featureWords } from "../spec.js";
import type { VsockBackend, VsockHost, VsockStream, VsockStreamHandler } from "./backend.js";
import { ByteRing } from "./byte-ring.js";
import {
  Hdr,
  MAX_GUEST_CID,
  MIN_GUEST_CID,
  Op,
  Shutdown,
  VMADDR_CID_HOST,
  VSOCK_CONFIG_SIZE,
  VSOCK_EVENT_SIZE,
  VSOCK_EVENT_TRANSPORT_RESET,
  VSOCK_HDR_SIZE,
  VSOCK_MAX_PAYLOAD,
  VSOCK_TYPE_STREAM,
  VsockFeature,
  VsockQueue,
} from "./protocol.js";

export const VSOCK_QUEUE_SIZE = 128;
export const VSOCK_EVENT_QUEUE_SIZE = 16;
/** Bytes buffered on the host per connection and direction (the credit the guest gets), by default. */
export const DEFAULT_VSOCK_BUFFER = 64 * 1024;
export const DEFAULT_VSOCK_CONNECTIONS = 128;
/** RSTs for unknown connections waiting for a receive buffer; more are dropped (and counted). */
const RST_BACKLOG = 64;
/** Host ports of host-initiated connections are taken from here up (below is left to guest requests). */
export const FIRST_HOST_PORT = 0x4000_0000;
/** VMADDR_PORT_ANY, never a port of a connection. */
const PORT_ANY = 0xffff_ffff;

export interface VirtioVsockOptions {
  /** The guest's context ID: 3..0xfffffffe. */
  guestCid: number;
  /** Where guest connections go; without one, every guest connection is refused (RST). */
  backend?: VsockBackend | null;
  /** Host-side buffer per connection and direction, in bytes (4 KiB..16 MiB, default 64 KiB). */
  bufferSize?: number;
  /** Connections open at once (1..4096, default 128); more are refused. */
  maxConnections?: number;
}

/** What the device did; every guest packet it did not act on is counted in one field. */
export interface VsockStats {
  /** Well-formed guest packets, and the stream bytes they carried to the host. */
  txPackets: number;
  txBytes: number;
  /**
   * Guest packets dropped for their header: shorter than 44 bytes, a source CID other than the
   * guest's, a destination other than the host (2), a type other than stream, a length that is not
   * the payload's (or above 64 KiB, or on a packet other than RW), unknown SHUTDOWN flags.
   */
  txMalformed: number;
  /** Well-formed guest packets for no connection (answered with RST unless they were RST). */
  txUnknown: number;
  /**
   * Protocol violations on a connection, which reset it: an operation the connection's state does not
   * allow (data before the connection is up or after SHUTDOWN, a second REQUEST, an unknown op) or
   * more data than the credit the host gave.
   */
  txProtocol: number;
  /** Packets written to the guest's receive buffers, and the stream bytes they carried. */
  rxPackets: number;
  rxBytes: number;
  /** Receive buffers returned unused because they were shorter than a header. */
  rxBufferTooSmall: number;
  /** RSTs for unknown connections not sent because RST_BACKLOG of them were already waiting. */
  rstDropped: number;
  /** Connections that came up (either side connecting), and guest connections refused. */
  connectionsOpened: number;
  connectionsRefused: number;
  /** TRANSPORT_RESET events delivered. */
  events: number;
}

/** The device's own state as plain data. Connections are not saved: their host ends do not survive. */
export interface VirtioVsockState {
  version: 1;
  guestCid: number;
  /** A TRANSPORT_RESET event is owed to the driver. */
  resetPending: boolean;
  stats: VsockStats;
  /**
   * (host port, guest port) of each connection the guest had: a restore resets each one with an RST.
   * Optional (added later): a snapshot without it gets a TRANSPORT_RESET event instead.
   */
  connections?: number[];
  /** The next host port to try, so a restored VM's new connections do not reuse a port the guest saw. */
  nextHostPort?: number;
  /** Only in a clone's restore: the saved VM's CID, which the guest's sockets still carry. */
  formerCid?: number;
}

function zeroStats(): VsockStats {
  return {
    txPackets: 0,
    txBytes: 0,
    txMalformed: 0,
    txUnknown: 0,
    txProtocol: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxBufferTooSmall: 0,
    rstDropped: 0,
    connectionsOpened: 0,
    connectionsRefused: 0,
    events: 0,
  };
}

/** Connection states (the host's view). */
const State = {
  /** Host-initiated: REQUEST queued or sent, waiting for the guest's RESPONSE. */
  HOST_CONNECTING: 0,
  /** Guest-initiated: waiting for the backend to accept or reject. */
  GUEST_CONNECTING: 1,
  ESTABLISHED: 2,
  /** An RST is queued; the connection goes away once it is sent. */
  RESETTING: 3,
  CLOSED: 4,
} as const;
type State = (typeof State)[keyof typeof State];

/** Control packets a connection owes the guest. */
const Pending = {
  REQUEST: 1,
  RESPONSE: 2,
  CREDIT_UPDATE: 4,
} as const;

/** What a connection needs from the device (the device implements it; streams call it). */
interface StreamOwner {
  streamAccept(c: Connection, handler: VsockStreamHandler): boolean;
  streamReject(c: Connection): void;
  streamWrite(c: Connection, data: Uint8Array, offset: number, length: number): number;
  streamConsumed(c: Connection, bytes: number): void;
  streamEnd(c: Connection): void;
  streamClose(c: Connection): void;
  streamReset(c: Connection): void;
}

/**
 * One stream connection, keyed by (host port, guest port). `inbound` holds guest bytes until the
 * backend consumed them (its capacity is the buf_alloc the guest sees), `outbound` host bytes until
 * the guest's credit lets them go.
 */
class Connection implements VsockStream {
  state: State;
  handler: VsockStreamHandler | null = null;
  readonly inbound: ByteRing;
  readonly outbound: ByteRing;
  /** Guest bytes the backend consumed (or that were dropped), and what the guest was last told (u32). */
  fwdCnt = 0;
  lastSentFwdCnt = 0;
  /** Host bytes sent to the guest (u32), and the guest's buffer and progress as it last said. */
  txCnt = 0;
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  /** SHUTDOWN flags the guest sent; those the host wants to send, and has sent. */
  peerShutdown = 0;
  shutdownWanted = 0;
  shutdownSent = 0;
  pending = 0;
  /** A CREDIT_REQUEST went out and the guest has not said anything since. */
  creditRequested = false;
  /** `write` took less than offered: call `writable()` once there is room. */
  wantWritable = false;
  /** In the device's service queue. */
  queued = false;

  constructor(
    private readonly owner: StreamOwner,
    readonly hostPort: number,
    readonly guestPort: number,
    state: State,
    bufferSize: number,
  ) {
    this.state = state;
    this.inbound = new ByteRing(bufferSize);
    this.outbound = new ByteRing(bufferSize);
  }

  get open(): boolean {
    return this.state !== State.RESETTING && this.state !== State.CLOSED;
  }

  /** Bytes the guest can take now: its buf_alloc minus what is in flight (0 if it claims more). */
  get credit(): number {
    const inFlight = (this.txCnt - this.peerFwdCnt) >>> 0;
    return inFlight >= this.peerBufAlloc ? 0 : this.peerBufAlloc - inFlight;
  }

  accept(handler: VsockStreamHandler): boolean {
    return this.owner.streamAccept(this, handler);
  }
  reject(): void {
    this.owner.streamReject(this);
  }
  write(data: Uint8Array, offset = 0, length = data.length - offset): number {
    return this.owner.streamWrite(this, data, offset, length);
  }
  consumed(bytes: number): void {
    this.owner.streamConsumed(this, bytes);
  }
  end(): void {
    this.owner.streamEnd(this);
  }
  close(): void {
    this.owner.streamClose(this);
  }
  reset(): void {
    this.owner.streamReset(this);
  }
}

/** A FIFO of connections that grows when needed (it holds each live connection at most once). */
class ConnectionQueue {
  private items: (Connection | null)[] = new Array(16).fill(null);
  private head = 0;
  count = 0;

  push(c: Connection): void {
    if (this.count === this.items.length) {
      const bigger: (Connection | null)[] = new Array(this.items.length * 2).fill(null);
      for (let i = 0; i < this.count; i++)
        bigger[i] = this.items[(this.head + i) % this.items.length] ?? null;
      this.items = bigger;
      this.head = 0;
    }
    this.items[(this.head + this.count) % this.items.length] = c;
    this.count++;
  }

  peek(): Connection | null {
    return this.count === 0 ? null : (this.items[this.head] ?? null);
  }

  shift(): void {
    if (this.count === 0) return;
    this.items[this.head] = null;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
  }

  clear(): void {
    this.items.fill(null);
    this.head = 0;
    this.count = 0;
  }
}

/**
 * virtio-vsock (ID 19): stream sockets between the guest (its CID from the config space) and the host
 * (CID 2), over an rx, a tx and an event queue. Offers VIRTIO_VSOCK_F_STREAM only (no seqpacket).
 *
 * Transmit: every guest packet is checked (header length, CIDs, type, length, SHUTDOWN flags) before
 * it is acted on; malformed ones are dropped and counted, a well-formed one for no connection is
 * answered with RST, one that breaks the protocol on a connection resets that connection. The chain
 * goes back to the guest at once. Receive: control packets (RSTs for unknown connections first, then
 * per connection REQUEST/RESPONSE, data within the guest's credit, SHUTDOWN once the data is out,
 * CREDIT_UPDATE/CREDIT_REQUEST) go into the guest's receive buffers as they are posted, connections
 * taking turns. Each connection buffers at most `bufferSize` bytes each way on the host: the guest is
 * told that much buf_alloc, and its credit comes back (CREDIT_UPDATE) as the backend consumes data.
 *
 * No packet allocates guest-visible state: headers are built in a scratch buffer, payloads are copied
 * between guest memory and the connection's two preallocated rings.
 */
export class VirtioVsock implements VirtioDevice, VsockHost, StreamOwner {
  readonly name = "virtio-vsock";
  readonly deviceId = DeviceId.SOCKET;
  readonly features: readonly number[] = featureWords(VsockFeature.STREAM);
  readonly queueSizes: readonly number[] = [VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE, VSOCK_EVENT_QUEUE_SIZE];
  readonly configSize = VSOCK_CONFIG_SIZE;
  readonly guestCid: number;
  readonly bufferSize: number;
  readonly maxConnections: number;
  readonly backend: VsockBackend | null;
  stats: VsockStats = zeroStats();
  private readonly config = new ConfigSpace(VSOCK_CONFIG_SIZE);
  private host: VirtioHost | undefined;
  /** host port → guest port → connection. */
  private readonly connections = new Map<number, Map<number, Connection>>();
  private connectionCount = 0;
  private readonly service = new ConnectionQueue();
  /** RSTs for unknown connections: (host port, guest port, guest CID) in a ring (see restore()). */
  private readonly rsts = new Uint32Array(3 * RST_BACKLOG);
  private rstHead = 0;
  private rstCount = 0;
  private nextHostPort = FIRST_HOST_PORT;
  private resetPending = false;
  /**
   * A TRANSPORT_RESET went out and the driver has not yet handed the event buffer back (Linux re-posts
   * it once it has read the new CID and reset its sockets). Host REQUESTs wait meanwhile: one that
   * overtook the event would be answered from the old CID (dropped here) or reset by it in the guest.
   */
  private resetUnacked = false;
  /** Re-entrancy: backend callbacks may write or consume while the device is busy. */
  private busy = false;
  private again = false;
  private readonly txHeader = new Uint8Array(VSOCK_HDR_SIZE);
  private readonly txView = new DataView(this.txHeader.buffer);
  private readonly rxHeader = new Uint8Array(VSOCK_HDR_SIZE);
  private readonly rxView = new DataView(this.rxHeader.buffer);
  private readonly event = new Uint8Array(VSOCK_EVENT_SIZE);

  constructor(options: VirtioVsockOptions) {
    const cid = options.guestCid;
    if (!Number.isInteger(cid) || cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
      throw new RangeError(`virtio-vsock: guest CID ${cid} is not between 3 and 4294967294`);
    }
    const bufferSize = options.bufferSize ?? DEFAULT_VSOCK_BUFFER;
    if (!Number.isInteger(bufferSize) || bufferSize < 4096 || bufferSize > 16 << 20) {
      throw new RangeError(`virtio-vsock: bufferSize ${bufferSize} is not between 4 KiB and 16 MiB`);
    }
    const max = options.maxConnections ?? DEFAULT_VSOCK_CONNECTIONS;
    if (!Number.isInteger(max) || max < 1 || max > 4096) {
      throw new RangeError(`virtio-vsock: maxConnections ${max} is not between 1 and 4096`);
    }
    this.guestCid = cid;
    this.bufferSize = bufferSize;
    this.maxConnections = max;
    this.config.u64(0, cid);
    this.event.fill(0);
    new DataView(this.event.buffer).setUint32(0, VSOCK_EVENT_TRANSPORT_RESET, true);
    this.backend = options.backend ?? null;
    this.backend?.attach(this);
  }

  attach(host: VirtioHost): void {
    this.host = host;
  }

  /** Connections in the table (including those whose RST is still on its way). */
  get openConnections(): number {
    return this.connectionCount;
  }

  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  /** guest_cid is read-only. */
  writeConfig(): void {}

  activate(): void {
    this.run(true);
  }

  notify(index: number): void {
    if (index === VsockQueue.EVENT && this.resetUnacked) {
      this.resetUnacked = false;
      this.releaseRequests();
    }
    if (index === VsockQueue.TX) this.run(true);
    else this.run(false);
  }

  /** The driver is gone: so are its connections. */
  reset(): void {
    this.closeAll();
    this.resetPending = false;
    this.resetUnacked = false;
  }

  /** Nothing is held across calls on any queue: a queue reset needs nothing. */
  queueReset(): void {}

  /**
   * Drops every connection (their handlers are told) and tells the driver with a TRANSPORT_RESET event
   * that all its connections are gone; call after a restore, whose connections did not survive.
   */
  transportReset(): void {
    this.closeAll();
    this.resetPending = true;
    this.resetUnacked = false;
    this.run(false);
  }

  /**
   * The VM around the device is restored (RAM, transport, interrupt controller): an owed TRANSPORT_RESET
   * goes out now, before anything on the host can open a connection, rather than with the first one.
   */
  restored(): void {
    this.run(false);
  }

  /** The VM is going away: connections are dropped and the backend closed. */
  async close(): Promise<void> {
    this.closeAll();
    await this.backend?.close();
  }

  snapshot(): VirtioVsockState {
    const connections: number[] = [];
    for (const byGuest of this.connections.values()) {
      for (const c of byGuest.values()) connections.push(c.hostPort, c.guestPort);
    }
    return {
      version: 1,
      guestCid: this.guestCid,
      resetPending: this.resetPending,
      stats: { ...this.stats },
      connections,
      nextHostPort: this.nextHostPort,
    };
  }

  /**
   * Restores `snapshot()`. The connections of the saved VM are not restored (their host ends are gone):
   * a running driver is owed a TRANSPORT_RESET event, sent once the VM is whole (`restored()`), or else
   * when the event queue next has a buffer and the device runs.
   */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null)
      throw new TypeError("virtio-vsock snapshot: not an object");
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-vsock snapshot: unsupported version");
    if (s.guestCid !== this.guestCid) throw new RangeError("virtio-vsock snapshot: another guest CID");
    if (typeof s.resetPending !== "boolean") throw new TypeError("virtio-vsock snapshot: bad resetPending");
    const counters = zeroStats();
    const stats = s.stats;
    if (typeof stats !== "object" || stats === null) throw new TypeError("virtio-vsock snapshot: bad stats");
    for (const key of Object.keys(counters) as (keyof VsockStats)[]) {
      const v = (stats as Record<string, unknown>)[key];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        throw new RangeError(`virtio-vsock snapshot: bad counter ${key}`);
      }
      counters[key] = v;
    }
    const u32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < PORT_ANY;
    const saved = s.connections;
    if (
      saved !== undefined &&
      (!Array.isArray(saved) || saved.length % 2 !== 0 || saved.length > 2 * 4096 || !saved.every(u32))
    ) {
      throw new RangeError("virtio-vsock snapshot: connections must be (host port, guest port) pairs");
    }
    const next = s.nextHostPort;
    if (next !== undefined && (!u32(next) || (next as number) < FIRST_HOST_PORT)) {
      throw new RangeError("virtio-vsock snapshot: bad nextHostPort");
    }
    const former = s.formerCid;
    if (former !== undefined && (!u32(former) || (former as number) < MIN_GUEST_CID)) {
      throw new RangeError("virtio-vsock snapshot: bad formerCid");
    }
    this.closeAll();
    this.stats = counters;
    this.resetUnacked = false;
    if (next !== undefined) this.nextHostPort = next as number;
    if (saved === undefined) {
      this.resetPending = s.resetPending || this.host?.active === true;
      return;
    }
    // The guest's sockets of those connections: each gets an RST, as if its host end had hung up. A
    // TRANSPORT_RESET would leave them in an error state that a poll for input or hang-up never sees
    // (qemu-ga waits on its client for ever and refuses every new one).
    const cid = (former as number | undefined) ?? this.guestCid;
    for (let i = 0; i < saved.length; i += 2) this.queueRst(saved[i] as number, saved[i + 1] as number, cid);
    // A clone with a new CID still owes the event that tells the guest so. It goes out after the RSTs
    // (deliver() runs first), but the guest may act on it first, and a socket the event reset ignores
    // its RST: such a clone of a VM whose agent was connected at the snapshot can keep qemu-ga stuck.
    this.resetPending = s.resetPending;
  }

  // --- VsockHost ---

  connect(guestPort: number, handler: VsockStreamHandler): VsockStream | null {
    if (!Number.isInteger(guestPort) || guestPort < 0 || guestPort >= PORT_ANY) {
      throw new RangeError(`virtio-vsock: guest port ${guestPort} is not a 32-bit port`);
    }
    if (this.host === undefined || !this.host.active || this.connectionCount >= this.maxConnections)
      return null;
    const hostPort = this.allocatePort();
    if (hostPort < 0) return null;
    const c = this.add(hostPort, guestPort, State.HOST_CONNECTING);
    c.handler = handler;
    c.pending |= Pending.REQUEST;
    this.schedule(c);
    return c;
  }

  // --- StreamOwner (VsockStream's methods) ---

  streamAccept(c: Connection, handler: VsockStreamHandler): boolean {
    if (c.state !== State.GUEST_CONNECTING) return false;
    c.handler = handler;
    c.state = State.ESTABLISHED;
    c.pending |= Pending.RESPONSE;
    this.stats.connectionsOpened++;
    this.schedule(c);
    return true;
  }

  streamReject(c: Connection): void {
    if (c.state !== State.GUEST_CONNECTING) return;
    this.stats.connectionsRefused++;
    this.resetConnection(c, false);
  }

  streamWrite(c: Connection, data: Uint8Array, offset: number, length: number): number {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) return 0;
    length = Math.min(length, data.length - offset);
    if (length <= 0) return 0;
    if (c.state !== State.ESTABLISHED && c.state !== State.HOST_CONNECTING) return 0;
    // The guest will not read it, or the host said it was done: taken and dropped.
    if ((c.peerShutdown & Shutdown.RCV) !== 0 || (c.shutdownWanted & Shutdown.SEND) !== 0) return length;
    const n = c.outbound.write(data, offset, length);
    if (n < length) c.wantWritable = true;
    if (n > 0) this.schedule(c);
    return n;
  }

  streamConsumed(c: Connection, bytes: number): void {
    if (!c.open || !Number.isInteger(bytes) || bytes <= 0) return;
    const n = c.inbound.discard(bytes);
    c.fwdCnt = (c.fwdCnt + n) >>> 0;
    this.creditFreed(c);
  }

  streamEnd(c: Connection): void {
    if (c.state !== State.ESTABLISHED && c.state !== State.HOST_CONNECTING) return;
    c.shutdownWanted |= Shutdown.SEND;
    this.schedule(c);
  }

  streamClose(c: Connection): void {
    if (c.state === State.GUEST_CONNECTING) {
      this.streamReject(c);
      return;
    }
    if (c.state === State.HOST_CONNECTING) {
      this.streamReset(c);
      return;
    }
    if (c.state !== State.ESTABLISHED) return;
    c.handler = null;
    c.shutdownWanted = Shutdown.BOTH;
    // Nobody reads what the guest sent any more: it is dropped and its room given back.
    c.fwdCnt = (c.fwdCnt + c.inbound.length) >>> 0;
    c.inbound.clear();
    this.creditFreed(c);
    this.schedule(c);
  }

  streamReset(c: Connection): void {
    if (!c.open) return;
    c.handler = null;
    this.resetConnection(c, false);
  }

  // --- the connection table ---

  private lookup(hostPort: number, guestPort: number): Connection | null {
    return this.connections.get(hostPort)?.get(guestPort) ?? null;
  }

  private add(hostPort: number, guestPort: number, state: State): Connection {
    const c = new Connection(this, hostPort, guestPort, state, this.bufferSize);
    let byGuest = this.connections.get(hostPort);
    if (byGuest === undefined) {
      byGuest = new Map();
      this.connections.set(hostPort, byGuest);
    }
    byGuest.set(guestPort, c);
    this.connectionCount++;
    return c;
  }

  private remove(c: Connection): void {
    c.state = State.CLOSED;
    const byGuest = this.connections.get(c.hostPort);
    if (byGuest?.get(c.guestPort) !== c) return;
    byGuest.delete(c.guestPort);
    if (byGuest.size === 0) this.connections.delete(c.hostPort);
    this.connectionCount--;
  }

  /** A free host port for a host-initiated connection (one no connection uses), or -1. */
  private allocatePort(): number {
    for (let tries = 0; tries <= this.maxConnections; tries++) {
      const port = this.nextHostPort;
      this.nextHostPort = port + 1 >= PORT_ANY ? FIRST_HOST_PORT : port + 1;
      if (!this.connections.has(port)) return port;
    }
    return -1;
  }

  /** Every connection goes away at once (device reset, transport reset); handlers are told. */
  private closeAll(): void {
    const all: Connection[] = [];
    for (const byGuest of this.connections.values()) for (const c of byGuest.values()) all.push(c);
    this.connections.clear();
    this.connectionCount = 0;
    this.service.clear();
    this.rstHead = 0;
    this.rstCount = 0;
    for (const c of all) {
      c.state = State.CLOSED;
      c.queued = false;
      const h = c.handler;
      c.handler = null;
      h?.closed();
    }
  }

  /** Queues an RST for the connection and forgets it once sent; `notify` tells its handler now. */
  private resetConnection(c: Connection, notify: boolean): void {
    if (!c.open) return;
    c.state = State.RESETTING;
    c.outbound.clear();
    const h = c.handler;
    c.handler = null;
    this.schedule(c);
    if (notify) h?.closed();
  }

  private queueRst(hostPort: number, guestPort: number, cid = this.guestCid): void {
    if (this.rstCount === RST_BACKLOG) {
      this.stats.rstDropped++;
      return;
    }
    const at = 3 * ((this.rstHead + this.rstCount) % RST_BACKLOG);
    this.rsts[at] = hostPort;
    this.rsts[at + 1] = guestPort;
    this.rsts[at + 2] = cid;
    this.rstCount++;
  }

  /** Puts `c` in the service queue (if not there) and runs the receive side. */
  private schedule(c: Connection): void {
    if (!c.queued) {
      c.queued = true;
      this.service.push(c);
    }
    this.run(false);
  }

  /**
   * The backend consumed guest bytes: tell the guest (CREDIT_UPDATE) once what it believes it may send
   * fell below half the buffer, so a sender waiting for credit always hears about it.
   */
  private creditFreed(c: Connection): void {
    if (c.state !== State.ESTABLISHED) return;
    const unreported = (c.fwdCnt - c.lastSentFwdCnt) >>> 0;
    if (unreported === 0) return;
    const believed = c.inbound.capacity - unreported - c.inbound.length;
    if (believed < c.inbound.capacity / 2) {
      c.pending |= Pending.CREDIT_UPDATE;
      this.schedule(c);
    }
  }

  // --- processing ---

  /** Runs the queues: transmit (if asked), then events and receive, again while callbacks add work. */
  private run(transmit: boolean): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    const host = this.host;
    if (host === undefined || !host.active) return;
    this.busy = true;
    try {
      if (transmit) this.transmit(host);
      do {
        this.again = false;
        // Events first: a REQUEST must not overtake a TRANSPORT_RESET the driver is owed.
        this.sendEvents(host);
        this.deliver(host);
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  private transmit(host: VirtioHost): void {
    const q = host.queue(VsockQueue.TX);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        host.fail(VsockQueue.TX, chain.fault);
        break;
      }
      this.packet(chain);
      q.push(chain, 0);
      used = true;
    }
    if (used) host.signalUsed(VsockQueue.TX);
  }

  /** One guest packet: validation, then what it means for its connection. */
  private packet(chain: DescriptorChain): void {
    const stats = this.stats;
    if (chain.readableBytes < VSOCK_HDR_SIZE) {
      stats.txMalformed++;
      return;
    }
    chain.readBytes(0, this.rxHeader, 0, VSOCK_HDR_SIZE);
    const v = this.rxView;
    const len = v.getUint32(Hdr.LEN, true);
    const op = v.getUint16(Hdr.OP, true);
    const flags = v.getUint32(Hdr.FLAGS, true);
    if (
      v.getUint32(Hdr.SRC_CID, true) !== this.guestCid ||
      v.getUint32(Hdr.SRC_CID + 4, true) !== 0 ||
      v.getUint32(Hdr.DST_CID, true) !== VMADDR_CID_HOST ||
      v.getUint32(Hdr.DST_CID + 4, true) !== 0 ||
      v.getUint16(Hdr.TYPE, true) !== VSOCK_TYPE_STREAM ||
      len > VSOCK_MAX_PAYLOAD ||
      len > chain.readableBytes - VSOCK_HDR_SIZE ||
      (op !== Op.RW && len !== 0) ||
      (op === Op.SHUTDOWN && (flags & ~Shutdown.BOTH) !== 0)
    ) {
      stats.txMalformed++;
      return;
    }
    stats.txPackets++;
    const guestPort = v.getUint32(Hdr.SRC_PORT, true);
    const hostPort = v.getUint32(Hdr.DST_PORT, true);
    const c = this.lookup(hostPort, guestPort);
    if (c === null) {
      if (op === Op.REQUEST) this.request(hostPort, guestPort);
      else if (op !== Op.RST) {
        stats.txUnknown++;
        this.queueRst(hostPort, guestPort);
      }
      return;
    }
    // The RST is on its way: whatever the guest sent meanwhile no longer matters.
    if (c.state === State.RESETTING) return;
    if (op === Op.RST) {
      this.remove(c);
      const h = c.handler;
      c.handler = null;
      h?.closed();
      return;
    }
    c.peerBufAlloc = v.getUint32(Hdr.BUF_ALLOC, true);
    c.peerFwdCnt = v.getUint32(Hdr.FWD_CNT, true);
    c.creditRequested = false;
    if (c.state === State.HOST_CONNECTING && op === Op.RESPONSE && (c.pending & Pending.REQUEST) === 0) {
      c.state = State.ESTABLISHED;
      stats.connectionsOpened++;
      this.schedule(c);
      c.handler?.connected?.();
      return;
    }
    if (c.state === State.ESTABLISHED) {
      switch (op) {
        case Op.RW:
          if ((c.peerShutdown & Shutdown.SEND) === 0) {
            this.receive(c, chain, len);
            return;
          }
          break;
        case Op.CREDIT_UPDATE:
          this.schedule(c);
          return;
        case Op.CREDIT_REQUEST:
          c.pending |= Pending.CREDIT_UPDATE;
          this.schedule(c);
          return;
        case Op.SHUTDOWN:
          this.peerShutdown(c, flags);
          return;
      }
    }
    stats.txProtocol++;
    this.resetConnection(c, true);
  }

  /** A guest REQUEST for a new connection: handed to the backend, or refused. */
  private request(hostPort: number, guestPort: number): void {
    if (this.backend === null || this.connectionCount >= this.maxConnections) {
      this.stats.connectionsRefused++;
      this.queueRst(hostPort, guestPort);
      return;
    }
    const c = this.add(hostPort, guestPort, State.GUEST_CONNECTING);
    c.peerBufAlloc = this.rxView.getUint32(Hdr.BUF_ALLOC, true);
    c.peerFwdCnt = this.rxView.getUint32(Hdr.FWD_CNT, true);
    this.backend.incoming(c);
  }

  /** RW payload into the connection's inbound ring, then to the backend. */
  private receive(c: Connection, chain: DescriptorChain, len: number): void {
    if (len > c.inbound.free) {
      // More than the credit the host gave.
      this.stats.txProtocol++;
      this.resetConnection(c, true);
      return;
    }
    this.stats.txBytes += len;
    if (c.handler === null) {
      // The host closed its side: dropped, and the room is the guest's again.
      c.fwdCnt = (c.fwdCnt + len) >>> 0;
      this.creditFreed(c);
      return;
    }
    let offset = VSOCK_HDR_SIZE;
    let left = len;
    while (left > 0 && c.state === State.ESTABLISHED && c.handler !== null) {
      const at = c.inbound.tail;
      const run = Math.min(left, c.inbound.tailRun);
      chain.readBytes(offset, c.inbound.bytes, at, run);
      c.inbound.commit(run);
      offset += run;
      left -= run;
      c.handler.data(c.inbound.bytes.subarray(at, at + run));
    }
    if (left > 0 && c.state === State.ESTABLISHED) {
      // The backend closed its side in the middle: the rest is dropped like later data.
      c.fwdCnt = (c.fwdCnt + left) >>> 0;
      this.creditFreed(c);
    }
  }

  private peerShutdown(c: Connection, flags: number): void {
    const added = flags & ~c.peerShutdown;
    c.peerShutdown |= flags;
    if ((added & Shutdown.RCV) !== 0) {
      c.outbound.clear();
      if (c.wantWritable) {
        c.wantWritable = false;
        c.handler?.writable();
      }
    }
    if ((added & Shutdown.SEND) !== 0) c.handler?.end();
    // A clean close from the guest: answered with RST, which ends the connection.
    if (c.peerShutdown === Shutdown.BOTH) this.resetConnection(c, true);
    else this.schedule(c);
  }

  /** A SHUTDOWN the host owes, due once its data is out (or the guest stopped reading). */
  private shutdownDue(c: Connection): boolean {
    return (
      (c.shutdownWanted & ~c.shutdownSent) !== 0 &&
      (c.outbound.length === 0 || (c.peerShutdown & Shutdown.RCV) !== 0)
    );
  }

  private needsService(c: Connection): boolean {
    switch (c.state) {
      case State.RESETTING:
        return true;
      case State.HOST_CONNECTING:
        return (c.pending & Pending.REQUEST) !== 0 && !this.resetUnacked;
      case State.ESTABLISHED:
        if ((c.pending & (Pending.RESPONSE | Pending.CREDIT_UPDATE)) !== 0) return true;
        if (c.outbound.length > 0 && (c.peerShutdown & Shutdown.RCV) === 0) {
          if (c.credit > 0 || !c.creditRequested) return true;
        }
        return this.shutdownDue(c);
      default:
        return false;
    }
  }

  /** The next connection with a packet to send (dropping those with none from the queue), or null. */
  private nextConnection(): Connection | null {
    for (let c = this.service.peek(); c !== null; c = this.service.peek()) {
      if (this.needsService(c)) return c;
      this.service.shift();
      c.queued = false;
    }
    return null;
  }

  /** The driver took the TRANSPORT_RESET: host connections waiting for it send their REQUESTs. */
  private releaseRequests(): void {
    for (const byGuest of this.connections.values()) {
      for (const c of byGuest.values()) {
        if (c.state === State.HOST_CONNECTING && (c.pending & Pending.REQUEST) !== 0 && !c.queued) {
          c.queued = true;
          this.service.push(c);
        }
      }
    }
  }

  /** Fills the guest's receive buffers: RSTs for unknown connections first, then connections in turn. */
  private deliver(host: VirtioHost): void {
    if (this.rstCount === 0 && this.service.count === 0) return;
    const q = host.queue(VsockQueue.RX);
    let used = false;
    for (;;) {
      const c = this.rstCount > 0 ? null : this.nextConnection();
      if (c === null && this.rstCount === 0) break;
      const chain = q.pop();
      if (chain === null) break;
      if (chain.fault !== null) {
        host.fail(VsockQueue.RX, chain.fault);
        break;
      }
      used = true;
      if (chain.writableBytes < VSOCK_HDR_SIZE) {
        this.stats.rxBufferTooSmall++;
        q.push(chain, 0);
        continue;
      }
      let written: number;
      if (c === null) {
        const at = 3 * this.rstHead;
        this.header(Op.RST, this.rsts[at] as number, this.rsts[at + 1] as number, 0, 0, null);
        this.txView.setUint32(Hdr.DST_CID, this.rsts[at + 2] as number, true);
        chain.writeBytes(0, this.txHeader, 0, VSOCK_HDR_SIZE);
        this.rstHead = (this.rstHead + 1) % RST_BACKLOG;
        this.rstCount--;
        written = VSOCK_HDR_SIZE;
      } else {
        this.service.shift();
        c.queued = false;
        written = this.emit(c, chain);
        if (this.needsService(c)) {
          c.queued = true;
          this.service.push(c);
        }
      }
      q.push(chain, written);
      this.stats.rxPackets++;
    }
    if (used) host.signalUsed(VsockQueue.RX);
  }

  /** Writes the next packet `c` owes the guest into `chain`; returns the bytes written. */
  private emit(c: Connection, chain: DescriptorChain): number {
    if (c.state === State.RESETTING) {
      this.remove(c);
      return this.control(chain, Op.RST, 0, c);
    }
    if (c.state === State.HOST_CONNECTING) {
      c.pending &= ~Pending.REQUEST;
      return this.control(chain, Op.REQUEST, 0, c);
    }
    if ((c.pending & Pending.RESPONSE) !== 0) {
      c.pending &= ~Pending.RESPONSE;
      return this.control(chain, Op.RESPONSE, 0, c);
    }
    if (c.outbound.length > 0 && (c.peerShutdown & Shutdown.RCV) === 0) {
      const credit = c.credit;
      if (credit > 0) {
        const n = Math.min(
          c.outbound.length,
          credit,
          chain.writableBytes - VSOCK_HDR_SIZE,
          VSOCK_MAX_PAYLOAD,
        );
        if (n > 0) return this.data(c, chain, n);
      } else if (!c.creditRequested) {
        c.creditRequested = true;
        return this.control(chain, Op.CREDIT_REQUEST, 0, c);
      }
    }
    if (this.shutdownDue(c)) {
      c.shutdownSent = c.shutdownWanted;
      return this.control(chain, Op.SHUTDOWN, c.shutdownWanted, c);
    }
    return this.control(chain, Op.CREDIT_UPDATE, 0, c);
  }

  private control(chain: DescriptorChain, op: number, flags: number, c: Connection): number {
    this.header(op, c.hostPort, c.guestPort, 0, flags, c);
    chain.writeBytes(0, this.txHeader, 0, VSOCK_HDR_SIZE);
    return VSOCK_HDR_SIZE;
  }

  /** An RW packet with the next `n` outbound bytes. */
  private data(c: Connection, chain: DescriptorChain, n: number): number {
    this.header(Op.RW, c.hostPort, c.guestPort, n, 0, c);
    chain.writeBytes(0, this.txHeader, 0, VSOCK_HDR_SIZE);
    const ring = c.outbound;
    const first = Math.min(n, ring.headRun);
    chain.writeBytes(VSOCK_HDR_SIZE, ring.bytes, ring.head, first);
    if (first < n) chain.writeBytes(VSOCK_HDR_SIZE + first, ring.bytes, 0, n - first);
    ring.discard(n);
    c.txCnt = (c.txCnt + n) >>> 0;
    this.stats.rxBytes += n;
    if (c.wantWritable) {
      c.wantWritable = false;
      c.handler?.writable();
    }
    return VSOCK_HDR_SIZE + n;
  }

  /** Builds a host → guest header in txHeader; with a connection, its credit goes along. */
  private header(
    op: number,
    hostPort: number,
    guestPort: number,
    len: number,
    flags: number,
    c: Connection | null,
  ): void {
    const v = this.txView;
    v.setUint32(Hdr.SRC_CID, VMADDR_CID_HOST, true);
    v.setUint32(Hdr.SRC_CID + 4, 0, true);
    v.setUint32(Hdr.DST_CID, this.guestCid, true);
    v.setUint32(Hdr.DST_CID + 4, 0, true);
    v.setUint32(Hdr.SRC_PORT, hostPort, true);
    v.setUint32(Hdr.DST_PORT, guestPort, true);
    v.setUint32(Hdr.LEN, len, true);
    v.setUint16(Hdr.TYPE, VSOCK_TYPE_STREAM, true);
    v.setUint16(Hdr.OP, op, true);
    v.setUint32(Hdr.FLAGS, flags, true);
    v.setUint32(Hdr.BUF_ALLOC, c === null ? 0 : c.inbound.capacity, true);
    v.setUint32(Hdr.FWD_CNT, c === null ? 0 : c.fwdCnt, true);
    if (c !== null) {
      c.lastSentFwdCnt = c.fwdCnt;
      c.pending &= ~Pending.CREDIT_UPDATE;
    }
  }

  /** A TRANSPORT_RESET event into the event queue, when one is owed and a buffer is there. */
  private sendEvents(host: VirtioHost): void {
    if (!this.resetPending) return;
    const q = host.queue(VsockQueue.EVENT);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        host.fail(VsockQueue.EVENT, chain.fault);
        break;
      }
      used = true;
      if (chain.writableBytes < VSOCK_EVENT_SIZE) {
        q.push(chain, 0);
        continue;
      }
      chain.writeBytes(0, this.event, 0, VSOCK_EVENT_SIZE);
      q.push(chain, VSOCK_EVENT_SIZE);
      // The driver's re-post of this buffer is the acknowledgement: make sure it notifies.
      q.notifyOnNext();
      this.resetPending = false;
      this.resetUnacked = true;
      this.stats.events++;
      break;
    }
    if (used) host.signalUsed(VsockQueue.EVENT);
  }
}
