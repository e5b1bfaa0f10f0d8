/**
 * Test scaffolding for virtio-vsock: the guest's side of the protocol written straight into hand-built
 * rings (packets on the tx queue, receive buffers on the rx queue), and a backend that records what
 * the device tells it.
 */
import type {
  VsockBackend,
  VsockHost,
  VsockStream,
  VsockStreamHandler,
} from "../../../src/devices/virtio/vsock/backend.js";
import { Hdr, Op, VSOCK_HDR_SIZE } from "../../../src/devices/virtio/vsock/protocol.js";
import { VirtioVsock, type VirtioVsockOptions } from "../../../src/devices/virtio/vsock/virtio-vsock.js";
import { TestDriver, TestMemory } from "./harness.js";

export const BASE = 0x8000_0000;
export const GUEST_CID = 3;
export const HOST_CID = 2;
export const RXQ = 0;
export const TXQ = 1;
export const EVQ = 2;
/** Where the guest's packets and receive buffers live. */
const TX_AREA = BASE + 0x10_0000;
const TX_SLOT = 0x1_1000;
const TX_SLOTS = 32;
const RX_AREA = BASE + 0x40_0000;
const RX_SLOT = 0x2000;
const RX_SLOTS = 128;
export const RAM = 8 << 20;

/** A vsock header as numbers (CIDs below 2^32; the high halves are separate for malformed tests). */
export interface Header {
  srcCid: number;
  srcCidHi: number;
  dstCid: number;
  dstCidHi: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

export interface Packet extends Header {
  payload: Uint8Array;
  /** The used length the device reported. */
  used: number;
}

export function encodeHeader(h: Partial<Header>): Uint8Array {
  const full: Header = {
    srcCid: GUEST_CID,
    srcCidHi: 0,
    dstCid: HOST_CID,
    dstCidHi: 0,
    srcPort: 0,
    dstPort: 0,
    len: 0,
    type: 1,
    op: Op.RW,
    flags: 0,
    bufAlloc: 0,
    fwdCnt: 0,
    ...h,
  };
  const bytes = new Uint8Array(VSOCK_HDR_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(Hdr.SRC_CID, full.srcCid, true);
  v.setUint32(Hdr.SRC_CID + 4, full.srcCidHi, true);
  v.setUint32(Hdr.DST_CID, full.dstCid, true);
  v.setUint32(Hdr.DST_CID + 4, full.dstCidHi, true);
  v.setUint32(Hdr.SRC_PORT, full.srcPort, true);
  v.setUint32(Hdr.DST_PORT, full.dstPort, true);
  v.setUint32(Hdr.LEN, full.len, true);
  v.setUint16(Hdr.TYPE, full.type, true);
  v.setUint16(Hdr.OP, full.op, true);
  v.setUint32(Hdr.FLAGS, full.flags, true);
  v.setUint32(Hdr.BUF_ALLOC, full.bufAlloc, true);
  v.setUint32(Hdr.FWD_CNT, full.fwdCnt, true);
  return bytes;
}

export function decodeHeader(bytes: Uint8Array): Header {
  const v = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HDR_SIZE);
  return {
    srcCid: v.getUint32(Hdr.SRC_CID, true),
    srcCidHi: v.getUint32(Hdr.SRC_CID + 4, true),
    dstCid: v.getUint32(Hdr.DST_CID, true),
    dstCidHi: v.getUint32(Hdr.DST_CID + 4, true),
    srcPort: v.getUint32(Hdr.SRC_PORT, true),
    dstPort: v.getUint32(Hdr.DST_PORT, true),
    len: v.getUint32(Hdr.LEN, true),
    type: v.getUint16(Hdr.TYPE, true),
    op: v.getUint16(Hdr.OP, true),
    flags: v.getUint32(Hdr.FLAGS, true),
    bufAlloc: v.getUint32(Hdr.BUF_ALLOC, true),
    fwdCnt: v.getUint32(Hdr.FWD_CNT, true),
  };
}

/** A handler that records everything; consumes guest data at once unless `autoConsume` is off. */
export class RecordingHandler implements VsockStreamHandler {
  stream: VsockStream | null = null;
  readonly received: number[] = [];
  connects = 0;
  ends = 0;
  closes = 0;
  writables = 0;
  /** Bytes passed to data() and not consumed yet. */
  held = 0;

  constructor(public autoConsume = true) {}

  connected(): void {
    this.connects++;
  }
  data(bytes: Uint8Array): void {
    for (const b of bytes) this.received.push(b);
    if (this.autoConsume) this.stream?.consumed(bytes.length);
    else this.held += bytes.length;
  }
  /** Consumes what is held (or `n` bytes of it). */
  consume(n = this.held): void {
    this.held -= n;
    this.stream?.consumed(n);
  }
  writable(): void {
    this.writables++;
  }
  end(): void {
    this.ends++;
  }
  closed(): void {
    this.closes++;
  }
  text(): string {
    return Buffer.from(this.received).toString("latin1");
  }
}

/** A backend whose answer to guest connections is set by the test: accept, reject, or hold. */
export class TestBackend implements VsockBackend {
  host: VsockHost | null = null;
  policy: "accept" | "reject" | "hold" = "accept";
  readonly streams: VsockStream[] = [];
  readonly handlers: RecordingHandler[] = [];
  closed = false;
  autoConsume = true;

  attach(host: VsockHost): void {
    this.host = host;
  }
  incoming(stream: VsockStream): void {
    this.streams.push(stream);
    if (this.policy === "reject") stream.reject();
    else if (this.policy === "accept") this.accept(stream);
  }
  accept(stream: VsockStream): RecordingHandler {
    const h = new RecordingHandler(this.autoConsume);
    h.stream = stream;
    this.handlers.push(h);
    stream.accept(h);
    return h;
  }
  close(): void {
    this.closed = true;
  }
}

/** The guest: a driver that sends packets and posts receive buffers on the device's rings. */
export class Guest {
  readonly mem = new TestMemory(BASE, RAM);
  readonly drv: TestDriver;
  private txSlot = 0;
  private rxSlot = 0;
  private readonly rxAddr = new Map<number, number>();

  constructor(readonly device: VirtioVsock) {
    this.drv = new TestDriver(this.mem, device);
  }

  static start(options: Partial<VirtioVsockOptions> = {}, size?: number): Guest {
    const g = new Guest(new VirtioVsock({ guestCid: GUEST_CID, ...options }));
    g.drv.start(size === undefined ? {} : { size });
    return g;
  }

  /** Sends one packet: header (defaults: from the guest to the host, RW) and payload, in `split` pieces. */
  send(h: Partial<Header>, payload: Uint8Array = new Uint8Array(0), split = 1): number {
    const len = h.len ?? payload.length;
    const hdr = encodeHeader({ ...h, len });
    const at = TX_AREA + (this.txSlot++ % TX_SLOTS) * TX_SLOT;
    this.mem.write(at, hdr);
    this.mem.write(at + VSOCK_HDR_SIZE, payload);
    const total = VSOCK_HDR_SIZE + payload.length;
    const bufs: { addr: number; len: number }[] = [];
    const piece = Math.ceil(total / split);
    for (let off = 0; off < total; off += piece)
      bufs.push({ addr: at + off, len: Math.min(piece, total - off) });
    if (bufs.length === 0) bufs.push({ addr: at, len: 0 });
    return this.drv.submit(TXQ, bufs);
  }

  /** Convenience: a packet on connection (guestPort → hostPort). */
  op(
    op: number,
    guestPort: number,
    hostPort: number,
    extra: Partial<Header> = {},
    payload?: Uint8Array,
  ): void {
    this.send({ op, srcPort: guestPort, dstPort: hostPort, bufAlloc: 256 * 1024, ...extra }, payload);
  }

  /**
   * Posts `count` receive buffers of `size` bytes (one writable descriptor each, as Linux does), fewer if
   * the ring would hold more than it has descriptors (they are not reused while posted).
   */
  post(count = 1, size = 4096 + VSOCK_HDR_SIZE): void {
    const ring = this.drv.rings[RXQ];
    if (ring === undefined) throw new Error("no rx ring");
    const outstanding = (ring.availIdx - ring.usedSeen) & 0xffff;
    count = Math.min(count, ring.ring.size - outstanding);
    for (let i = 0; i < count; i++) {
      const at = RX_AREA + (this.rxSlot++ % RX_SLOTS) * RX_SLOT;
      this.mem.write(at, new Uint8Array(Math.min(size, RX_SLOT)).fill(0xee));
      const head = ring.chain([{ addr: at, len: size, write: true }]);
      this.rxAddr.set(head, at);
      ring.publish(head);
    }
    this.drv.wr(0x050, RXQ);
  }

  /** Packets the device wrote into receive buffers since the last call. */
  receive(): Packet[] {
    const ring = this.drv.rings[RXQ];
    if (ring === undefined) throw new Error("no rx ring");
    const out: Packet[] = [];
    for (const [head, used] of ring.takeUsed()) {
      const at = this.rxAddr.get(head);
      if (at === undefined) throw new Error(`used head ${head} was never posted`);
      if (used < VSOCK_HDR_SIZE) {
        out.push({ ...decodeHeader(new Uint8Array(VSOCK_HDR_SIZE)), payload: new Uint8Array(0), used });
        continue;
      }
      const h = decodeHeader(this.mem.read(at, VSOCK_HDR_SIZE));
      out.push({ ...h, payload: this.mem.read(at + VSOCK_HDR_SIZE, used - VSOCK_HDR_SIZE), used });
    }
    return out;
  }

  /** Used entries of the tx queue (every packet comes back at once with length 0). */
  txUsed(): [number, number][] {
    return this.drv.rings[TXQ]?.takeUsed() ?? [];
  }
}
