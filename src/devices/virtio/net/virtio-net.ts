import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import type { DescriptorChain } from "../queue.js";
import { DeviceId, featureWords } from "../spec.js";
import type { NetBackend } from "./backend.js";

/** Feature bits (virtio 1.2 §5.1.3); the device offers MTU, MAC and STATUS, no offloads. */
export const NetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  HOST_TSO4: 11,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  MQ: 22,
} as const;

/** struct virtio_net_config offsets: mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu. */
export const NetConfig = {
  MAC: 0,
  STATUS: 6,
  MAX_VIRTQUEUE_PAIRS: 8,
  MTU: 10,
  SIZE: 12,
} as const;

/** Config status bits. */
export const NET_S_LINK_UP = 1;

/**
 * struct virtio_net_hdr as VERSION_1 lays it out (num_buffers always present): u8 flags, u8 gso_type,
 * le16 hdr_len, le16 gso_size, le16 csum_start, le16 csum_offset, le16 num_buffers.
 */
export const NET_HDR_SIZE = 12;
const HDR_FLAGS = 0;
const HDR_GSO_TYPE = 1;
const HDR_NUM_BUFFERS = 10;
/** VIRTIO_NET_GSO_NONE, the only gso_type without the HOST_TSO/UFO/USO features. */
const GSO_NONE = 0;
/** flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, only valid with VIRTIO_NET_F_CSUM. */
const HDR_F_NEEDS_CSUM = 1;

/** Ethernet header (destination, source, type) and the 802.1Q tag a tagged frame adds. */
export const ETH_HEADER = 14;
const VLAN_TAG = 4;
const ETHERTYPE_VLAN = 0x8100;
/** The longest frame without a negotiated MTU: a 65535-byte payload, the Ethernet header, one spare. */
export const MAX_FRAME = 65550;
export const DEFAULT_MTU = 1500;
/** Smallest MTU the device accepts to advertise (IPv4's minimum). */
const MIN_MTU = 68;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
export const NET_QUEUE_SIZE = 256;
/** Frames for the guest held until it posts receive buffers; more are dropped. */
export const DEFAULT_RX_BACKLOG = 256;

export interface VirtioNetOptions {
  /** The guest's MAC address (six bytes, a unicast address). */
  mac: ArrayLike<number>;
  /** Advertised with VIRTIO_NET_F_MTU (68..65535, default 1500); frames may not exceed MTU + 14. */
  mtu?: number;
  /** Frames waiting for receive buffers before new ones are dropped (default 256). */
  rxBacklog?: number;
}

/** What the device did with frames; every dropped frame is counted in exactly one field. */
export interface NetStats {
  /** Frames (and their bytes, headers excluded) the guest sent that went to the backend. */
  txFrames: number;
  txBytes: number;
  /** Guest frames dropped: no full virtio header, shorter than 14 bytes, over the MTU, or a header asking for an offload that was not negotiated. */
  txMalformed: number;
  /** Frames written into the guest's receive buffers. */
  rxFrames: number;
  rxBytes: number;
  /** Host frames dropped for their length (under 14 bytes, over MTU + 14 or 65550). */
  rxMalformed: number;
  /** Host frames dropped because the backlog was full (the guest did not post buffers fast enough). */
  rxBacklogFull: number;
  /** Host frames dropped because the guest's receive buffer was too small for them. */
  rxBufferTooSmall: number;
  /** Host frames dropped while the link was down. */
  rxLinkDown: number;
}

/** The device's own state as plain data (queues are the transport's). */
export interface VirtioNetState {
  version: 1;
  linkUp: boolean;
  /** Host frames not yet delivered, oldest first. */
  backlog: number[][];
  /** Head of the receive chain the device holds with no frame for it, or null. */
  parkedHead: number | null;
  stats: NetStats;
}

function zeroStats(): NetStats {
  return {
    txFrames: 0,
    txBytes: 0,
    txMalformed: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxMalformed: 0,
    rxBacklogFull: 0,
    rxBufferTooSmall: 0,
    rxLinkDown: 0,
  };
}

/**
 * virtio-net (ID 1) with one receiveq (0) and one transmitq (1), no control queue, no multiqueue, no
 * offloads: the virtio header is zeroed on receive (num_buffers = 1, as §5.1.6.4 requires without
 * MRG_RXBUF) and only checked on transmit. Offers MAC (the config's address), STATUS (link up, or down
 * with `setLinkUp(false)`) and MTU.
 *
 * Transmit: each chain's readable part is the 12-byte header then one frame, which goes to the backend
 * and the chain back to the guest at once. Receive: frames from the backend wait in a bounded backlog
 * until the guest posts buffers; each frame takes one chain (no MRG_RXBUF), header then frame. A frame
 * too big for the chain is dropped and the chain kept for the next frame. Malformed frames either way
 * are dropped and counted (`stats`), never thrown; a chain whose buffers are unusable (outside RAM)
 * stops its queue (DEVICE_NEEDS_RESET), as in the other devices.
 */
export class VirtioNet implements VirtioDevice {
  readonly name = "virtio-net";
  readonly deviceId = DeviceId.NET;
  readonly features: readonly number[] = featureWords(NetFeature.MAC, NetFeature.STATUS, NetFeature.MTU);
  readonly queueSizes: readonly number[] = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  readonly configSize = NetConfig.SIZE;
  readonly mac: Uint8Array;
  readonly mtu: number;
  stats: NetStats = zeroStats();
  private readonly config = new ConfigSpace(NetConfig.SIZE);
  private host!: VirtioHost;
  private readonly backlogLimit: number;
  /** Pending host frames: a ring of `backlogLimit` slots. */
  private readonly backlog: (Uint8Array | null)[];
  private backlogHead = 0;
  private backlogCount = 0;
  /** A receive chain popped for a frame that did not fit, kept for the next one (with its ticket). */
  private parked: DescriptorChain | null = null;
  private parkedTicket = 0;
  /** Transmit frames are copied here (the backend must not keep it). */
  private readonly txBuffer = new Uint8Array(MAX_FRAME);
  private readonly header = new Uint8Array(NET_HDR_SIZE);

  constructor(
    readonly backend: NetBackend,
    options: VirtioNetOptions,
  ) {
    const mac = Uint8Array.from(options.mac);
    if (mac.length !== 6 || (mac[0] as number) & 1 || mac.every((b) => b === 0)) {
      throw new RangeError("virtio-net: the MAC address must be six bytes, unicast and not all zero");
    }
    this.mac = mac;
    const mtu = options.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > 0xffff) {
      throw new RangeError(`virtio-net: MTU ${mtu} is not between ${MIN_MTU} and 65535`);
    }
    this.mtu = mtu;
    const backlog = options.rxBacklog ?? DEFAULT_RX_BACKLOG;
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > 65536) {
      throw new RangeError(`virtio-net: rxBacklog ${backlog} is not between 1 and 65536`);
    }
    this.backlogLimit = backlog;
    this.backlog = new Array(backlog).fill(null);
    this.config.bytes.set(mac, NetConfig.MAC);
    this.config.u16(NetConfig.STATUS, NET_S_LINK_UP);
    this.config.u16(NetConfig.MAX_VIRTQUEUE_PAIRS, 1);
    this.config.u16(NetConfig.MTU, mtu);
    backend.onReceive((frame) => this.receive(frame));
  }

  attach(host: VirtioHost): void {
    this.host = host;
  }

  get linkUp(): boolean {
    return (this.config.read(NetConfig.STATUS, 2) & NET_S_LINK_UP) !== 0;
  }

  /** Cable in or out: updates the config status and tells the driver (config change interrupt). */
  setLinkUp(up: boolean): void {
    if (up === this.linkUp) return;
    this.config.u16(NetConfig.STATUS, up ? NET_S_LINK_UP : 0);
    if (!up) this.clearBacklog();
    this.host?.configChanged();
  }

  /** Host frames waiting for receive buffers. */
  get pendingFrames(): number {
    return this.backlogCount;
  }

  /**
   * A frame for the guest (the backend calls this). It is copied; delivered at once when the guest has
   * a receive buffer posted, else kept in the backlog. Returns false when it was dropped.
   */
  receive(frame: Uint8Array): boolean {
    if (frame.length < ETH_HEADER || frame.length > MAX_FRAME) {
      this.stats.rxMalformed++;
      return false;
    }
    if (!this.linkUp) {
      this.stats.rxLinkDown++;
      return false;
    }
    if (this.backlogCount === this.backlogLimit) {
      // Make room first if the guest has buffers: the backlog may only be full for want of a notify.
      this.deliver();
      if (this.backlogCount === this.backlogLimit) {
        this.stats.rxBacklogFull++;
        return false;
      }
    }
    this.backlog[(this.backlogHead + this.backlogCount) % this.backlogLimit] = frame.slice();
    this.backlogCount++;
    this.deliver();
    return true;
  }

  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  /** The config space is read-only for the driver (no CTRL_MAC_ADDR, and MAC is the device's). */
  writeConfig(): void {}

  activate(): void {
    this.transmit();
    this.deliver();
  }

  notify(index: number): void {
    if (index === TRANSMITQ) this.transmit();
    else if (index === RECEIVEQ) this.deliver();
  }

  /** The driver is gone: frames queued for it are stale. */
  reset(): void {
    this.parked = null;
    this.clearBacklog();
  }

  queueReset(index: number): void {
    if (index === RECEIVEQ) this.parked = null;
  }

  /** Closes the backend (the VM is going away). */
  close(): void {
    this.backend.close();
  }

  snapshot(): VirtioNetState {
    const backlog: number[][] = [];
    for (let i = 0; i < this.backlogCount; i++) {
      backlog.push(Array.from(this.backlog[(this.backlogHead + i) % this.backlogLimit] as Uint8Array));
    }
    return {
      version: 1,
      linkUp: this.linkUp,
      backlog,
      parkedHead: this.heldParked()?.head ?? null,
      stats: { ...this.stats },
    };
  }

  restore(state: unknown): void {
    if (typeof state !== "object" || state === null)
      throw new TypeError("virtio-net snapshot: not an object");
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-net snapshot: unsupported version");
    const { linkUp, backlog, parkedHead, stats } = s;
    if (typeof linkUp !== "boolean") throw new TypeError("virtio-net snapshot: linkUp must be a boolean");
    const isByte = (b: unknown) => typeof b === "number" && Number.isInteger(b) && b >= 0 && b <= 0xff;
    if (
      !Array.isArray(backlog) ||
      backlog.length > this.backlogLimit ||
      !backlog.every(
        (f) =>
          Array.isArray(f) &&
          f.length >= ETH_HEADER &&
          f.length <= MAX_FRAME &&
          (f as unknown[]).every(isByte),
      )
    ) {
      throw new RangeError("virtio-net snapshot: bad backlog");
    }
    if (
      parkedHead !== null &&
      !(typeof parkedHead === "number" && Number.isInteger(parkedHead) && parkedHead >= 0)
    ) {
      throw new RangeError("virtio-net snapshot: bad parkedHead");
    }
    const counters = zeroStats();
    if (typeof stats !== "object" || stats === null) throw new TypeError("virtio-net snapshot: bad stats");
    for (const key of Object.keys(counters) as (keyof NetStats)[]) {
      const v = (stats as Record<string, unknown>)[key];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        throw new RangeError(`virtio-net snapshot: bad counter ${key}`);
      }
      counters[key] = v;
    }
    // A parked chain must be one the restored receive queue holds.
    const parked = parkedHead === null ? null : (this.host.queue(RECEIVEQ).heldChain(parkedHead) ?? null);
    if (parkedHead !== null && parked === null)
      throw new RangeError("virtio-net snapshot: parked chain not held");
    this.config.u16(NetConfig.STATUS, linkUp ? NET_S_LINK_UP : 0);
    this.clearBacklog();
    for (const f of backlog as number[][]) this.backlog[this.backlogCount++] = Uint8Array.from(f);
    this.parked = parked;
    this.parkedTicket = parked?.ticket ?? 0;
    this.stats = counters;
  }

  private clearBacklog(): void {
    this.backlog.fill(null);
    this.backlogHead = 0;
    this.backlogCount = 0;
  }

  /** The parked receive chain if the queue still holds it (a reset voids it). */
  private heldParked(): DescriptorChain | null {
    const p = this.parked;
    if (p === null) return null;
    if (this.host.queue(RECEIVEQ).holds(p, this.parkedTicket)) return p;
    this.parked = null;
    return null;
  }

  /** Longest frame either way: MTU + Ethernet header (+ a VLAN tag) once MTU is negotiated. */
  private frameLimit(tagged: boolean): number {
    if (!this.host.hasFeature(NetFeature.MTU)) return MAX_FRAME;
    return this.mtu + ETH_HEADER + (tagged ? VLAN_TAG : 0);
  }

  /** Each transmit chain: check the header and the frame, hand the frame to the backend, return the chain. */
  private transmit(): void {
    const host = this.host;
    if (!host.active) return;
    const q = host.queue(TRANSMITQ);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        host.fail(TRANSMITQ, chain.fault);
        break;
      }
      const length = this.readFrame(chain);
      q.push(chain, 0);
      used = true;
      if (length < 0) {
        this.stats.txMalformed++;
        continue;
      }
      this.stats.txFrames++;
      this.stats.txBytes += length;
      this.backend.send(this.txBuffer.subarray(0, length));
    }
    if (used) host.signalUsed(TRANSMITQ);
  }

  /** Copies a transmit chain's frame to txBuffer; its length, or -1 when the chain holds no valid frame. */
  private readFrame(chain: DescriptorChain): number {
    const total = chain.readableBytes;
    if (total < NET_HDR_SIZE + ETH_HEADER || total - NET_HDR_SIZE > MAX_FRAME) return -1;
    chain.readBytes(0, this.header, 0, NET_HDR_SIZE);
    const flags = this.header[HDR_FLAGS] as number;
    // No CSUM or HOST_* offload was offered: a partial checksum or a GSO packet cannot be sent as is.
    if ((flags & HDR_F_NEEDS_CSUM) !== 0 || this.header[HDR_GSO_TYPE] !== GSO_NONE) return -1;
    const length = total - NET_HDR_SIZE;
    chain.readBytes(NET_HDR_SIZE, this.txBuffer, 0, length);
    const tagged = this.txBuffer[12] === ETHERTYPE_VLAN >> 8 && this.txBuffer[13] === (ETHERTYPE_VLAN & 0xff);
    return length > this.frameLimit(tagged) ? -1 : length;
  }

  /** Backlogged frames into the receive buffers the guest posted, one chain per frame. */
  private deliver(): void {
    const host = this.host;
    if (this.backlogCount === 0 || host === undefined || !host.active) return;
    const q = host.queue(RECEIVEQ);
    let used = false;
    while (this.backlogCount > 0) {
      const chain = this.heldParked() ?? q.pop();
      if (chain === null) break;
      this.parked = null;
      if (chain.fault !== null) {
        host.fail(RECEIVEQ, chain.fault);
        break;
      }
      const frame = this.backlog[this.backlogHead] as Uint8Array;
      this.backlog[this.backlogHead] = null;
      this.backlogHead = (this.backlogHead + 1) % this.backlogLimit;
      this.backlogCount--;
      const tagged = frame[12] === ETHERTYPE_VLAN >> 8 && frame[13] === (ETHERTYPE_VLAN & 0xff);
      if (frame.length > this.frameLimit(tagged)) {
        this.stats.rxMalformed++;
        this.park(chain);
        continue;
      }
      if (chain.writableBytes < NET_HDR_SIZE + frame.length) {
        this.stats.rxBufferTooSmall++;
        this.park(chain);
        continue;
      }
      chain.fillWritable(0, NET_HDR_SIZE, 0);
      this.header.fill(0);
      this.header[HDR_NUM_BUFFERS] = 1;
      chain.writeBytes(HDR_NUM_BUFFERS, this.header, HDR_NUM_BUFFERS, 2);
      chain.writeBytes(NET_HDR_SIZE, frame, 0, frame.length);
      q.push(chain, NET_HDR_SIZE + frame.length);
      this.stats.rxFrames++;
      this.stats.rxBytes += frame.length;
      used = true;
    }
    if (used) host.signalUsed(RECEIVEQ);
  }

  private park(chain: DescriptorChain): void {
    this.parked = chain;
    this.parkedTicket = chain.ticket;
  }
}
