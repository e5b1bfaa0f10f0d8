import type { GuestMemory } from "../device.js";
import { AVAIL_F_NO_INTERRUPT, DESC_SIZE, DescFlag, MAX_QUEUE_SIZE } from "./spec.js";

/**
 * Split virtqueues (virtio 1.2 §2.7) over guest memory, written for a hostile driver: every index,
 * address and length read from the rings is checked before it is used, nothing outside guest RAM is ever
 * read or written, and no operation allocates (each queue preallocates one chain record per descriptor
 * head, with room for the longest chain it accepts).
 */

/** 2^32: combines two 32-bit register halves into a number. */
const TWO_32 = 4294967296;
/** Upper halves at or above this make an address beyond 2^53, which no guest RAM reaches. */
const MAX_HI = 0x20_0000;
/** Byte length limit of each direction of a chain (used lengths are 32-bit). */
const MAX_CHAIN_BYTES = 0xffff_ffff;
/** Indirect tables are arrays of virtq_desc, whose natural alignment is 8 (it holds a le64). */
const INDIRECT_ALIGN = 8;

/** A 64-bit guest physical address from two 32-bit halves, or -1 when it cannot be guest RAM. */
export function address64(lo: number, hi: number): number {
  hi >>>= 0;
  return hi >= MAX_HI ? -1 : hi * TWO_32 + (lo >>> 0);
}

/** Why a chain's buffers cannot be used; the device fails the request or the queue. */
export const ChainFault = {
  OUTSIDE_RAM: "a buffer lies outside guest RAM",
  READ_AFTER_WRITE: "a device-readable buffer follows a device-writable one",
  TOO_LONG: "the buffers add up to 4 GiB or more",
} as const;

export type ChainFault = (typeof ChainFault)[keyof typeof ChainFault];

/** Why a queue stopped; the transport then sets DEVICE_NEEDS_RESET. */
export const QueueFault = {
  BAD_SIZE: "queue size is not a power of two between 1 and the maximum",
  BAD_RING: "a ring is misaligned or outside guest RAM",
  AVAIL_JUMP: "the available index moved by more than the queue size",
  BAD_HEAD: "an available ring entry names a descriptor beyond the queue size",
  HEAD_IN_USE: "an available ring entry names a chain the device still holds",
  BAD_NEXT: "a descriptor's next index is beyond its table",
  LOOP: "a descriptor chain is longer than its table (a loop)",
  TOO_MANY: "a descriptor chain has more descriptors than the device accepts",
  INDIRECT_OFF: "an indirect descriptor without VIRTIO_F_INDIRECT_DESC",
  INDIRECT_NESTED: "an indirect descriptor inside an indirect table",
  INDIRECT_NEXT: "an indirect descriptor with NEXT set",
  INDIRECT_BAD: "an indirect table is empty, misaligned, oversized or outside guest RAM",
  BAD_RESTORE: "a restored in-flight chain is no longer valid",
} as const;

export type QueueFault = (typeof QueueFault)[keyof typeof QueueFault];

/** Segment storage of a queue: per head, `capacity` (address, length, writable) slots. */
interface SegmentStore {
  readonly memory: GuestMemory;
  readonly addr: Float64Array;
  readonly len: Uint32Array;
  readonly writable: Uint8Array;
}

/**
 * One descriptor chain the device popped, valid until it is pushed back (or the queue is reset): its
 * head index, and its buffers ("segments") flattened out of the descriptor table and any indirect
 * table. With no fault, the first `readable` segments are device-readable and the rest device-writable,
 * every segment lies in guest RAM, and each direction totals less than 4 GiB. The objects are reused:
 * code that finishes a request later (async I/O) keeps `ticket` and checks `queue.holds(chain, ticket)`.
 */
export class DescriptorChain {
  head = 0;
  /** Number of segments. */
  length = 0;
  /** Segments [0, readable) are device-readable, [readable, length) device-writable. */
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Set when the buffers cannot be used (the segments are still recorded as the driver gave them). */
  fault: ChainFault | null = null;
  /** Changes every time the chain is popped. */
  ticket = 0;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);

  constructor(
    private readonly store: SegmentStore,
    /** Index of the chain's first slot in the store. */
    readonly base: number,
  ) {}

  /** Guest physical address of segment i. */
  address(i: number): number {
    return this.store.addr[this.base + i] as number;
  }

  /** Byte length of segment i. */
  size(i: number): number {
    return this.store.len[this.base + i] as number;
  }

  writable(i: number): boolean {
    return this.store.writable[this.base + i] === 1;
  }

  /**
   * Copies up to `length` bytes of the device-readable part (nothing if the chain has a fault), starting `offset` bytes into it, to
   * dst[dstOffset...]. Returns how many were copied (fewer at the end of the readable part).
   */
  readBytes(offset: number, dst: Uint8Array, dstOffset: number, length: number): number {
    return this.copy(0, this.readable, offset, dst, dstOffset, length, false);
  }

  /** Copies src[srcOffset...] into the device-writable part at `offset`; returns how many bytes fit. */
  writeBytes(offset: number, src: Uint8Array, srcOffset: number, length: number): number {
    return this.copy(this.readable, this.length, offset, src, srcOffset, length, true);
  }

  /** Sets `length` bytes of the device-writable part from `offset` to `value`; returns how many. */
  fillWritable(offset: number, length: number, value: number): number {
    if (this.fault !== null) return 0;
    const bytes = this.store.memory.bytes;
    const ramBase = this.store.memory.base;
    let done = 0;
    for (let i = this.readable; i < this.length && done < length; i++) {
      const size = this.size(i);
      if (offset >= size) {
        offset -= size;
        continue;
      }
      const n = Math.min(size - offset, length - done);
      const at = this.address(i) - ramBase + offset;
      bytes.fill(value, at, at + n);
      done += n;
      offset = 0;
    }
    return done;
  }

  /** Little-endian u8/u16/u32 at `offset` in the device-readable part; -1 if it ends too early. */
  readU8(offset: number): number {
    return this.readBytes(offset, this.scratch, 0, 1) === 1 ? (this.scratch[0] as number) : -1;
  }

  readU16(offset: number): number {
    return this.readBytes(offset, this.scratch, 0, 2) === 2 ? this.scratchView.getUint16(0, true) : -1;
  }

  readU32(offset: number): number {
    return this.readBytes(offset, this.scratch, 0, 4) === 4 ? this.scratchView.getUint32(0, true) : -1;
  }

  /**
   * Guest address of the last byte of the chain when that byte is device-writable and in RAM (where
   * devices put a status byte), else -1. Works on faulty chains too, so a request can still be failed.
   */
  lastWritableByte(): number {
    if (this.length === 0) return -1;
    const i = this.length - 1;
    const size = this.size(i);
    const addr = this.address(i);
    if (!this.writable(i) || size === 0 || !this.store.memory.contains(addr, size)) return -1;
    return addr + size - 1;
  }

  private copy(
    first: number,
    end: number,
    offset: number,
    data: Uint8Array,
    dataOffset: number,
    length: number,
    toGuest: boolean,
  ): number {
    // A faulty chain's segments may lie outside RAM: never touch them.
    if (this.fault !== null) return 0;
    const bytes = this.store.memory.bytes;
    const ramBase = this.store.memory.base;
    let done = 0;
    for (let i = first; i < end && done < length; i++) {
      const size = this.size(i);
      if (offset >= size) {
        offset -= size;
        continue;
      }
      const n = Math.min(size - offset, length - done);
      const at = this.address(i) - ramBase + offset;
      const d = dataOffset + done;
      if (n <= 64) {
        if (toGuest) for (let k = 0; k < n; k++) bytes[at + k] = data[d + k] as number;
        else for (let k = 0; k < n; k++) data[d + k] = bytes[at + k] as number;
      } else if (toGuest) bytes.set(data.subarray(d, d + n), at);
      else data.set(bytes.subarray(at, at + n), d);
      done += n;
      offset = 0;
    }
    return done;
  }
}

/** A queue's state as plain data (see SplitQueue.snapshot). */
export interface SplitQueueState {
  size: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  lastAvail: number;
  usedIdx: number;
  signalledUsed: number;
  fault: string | null;
  /** Heads of the chains popped and not yet pushed back. */
  inFlight: number[];
}

/**
 * One split virtqueue: the registers the driver programs (size and the three ring addresses, as 32-bit
 * halves), the device's position in the rings, and the chains it holds. `pop` hands out the next
 * available chain, `push` returns one as used, `needsInterrupt` applies the driver's notification
 * suppression (used_event with EVENT_IDX, else VIRTQ_AVAIL_F_NO_INTERRUPT). A structural error (a
 * loop, an index out of range, a bad indirect table, an avail index jump) stops the queue: `fault` is
 * set, `onFault` tells the transport, and the queue hands out nothing until it is reset.
 */
export class SplitQueue {
  /** Registers (valid while not ready; the driver must not change them while ready). */
  size: number;
  descLo = 0;
  descHi = 0;
  driverLo = 0;
  driverHi = 0;
  deviceLo = 0;
  deviceHi = 0;
  /** QueueReady as the driver last wrote it. */
  ready = false;
  /** Negotiated ring features (the transport sets them). */
  eventIdx = false;
  indirect = false;
  /** Why the queue stopped (a QueueFault, or a device's own reason), or null. */
  fault: string | null = null;
  /** Called once when the queue stops with a fault. */
  onFault: (queue: SplitQueue, reason: string) => void = () => {};

  private readonly view: DataView;
  private readonly store: SegmentStore;
  private readonly chains: DescriptorChain[];
  private readonly held: Uint8Array;
  private heldCount = 0;
  private tickets = 0;
  /** Byte offsets of the rings in guest RAM (valid while ready without fault). */
  private descOff = 0;
  private availOff = 0;
  private usedOff = 0;
  /** Next avail ring entry to consume, next used ring entry to fill (free-running u16). */
  private lastAvail = 0;
  private usedIdx = 0;
  /** Used idx when the last interrupt decision was made. */
  private signalledUsed = 0;

  constructor(
    readonly memory: GuestMemory,
    readonly index: number,
    /** QueueSizeMax: a power of two; also the longest chain (in buffers) accepted. */
    readonly maxSize: number,
  ) {
    if (!isPowerOfTwo(maxSize) || maxSize > MAX_QUEUE_SIZE) {
      throw new RangeError(`virtqueue maximum size ${maxSize} is not a power of two up to 32768`);
    }
    const bytes = memory.bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const slots = maxSize * maxSize;
    this.store = {
      memory,
      addr: new Float64Array(slots),
      len: new Uint32Array(slots),
      writable: new Uint8Array(slots),
    };
    this.chains = [];
    for (let head = 0; head < maxSize; head++)
      this.chains.push(new DescriptorChain(this.store, head * maxSize));
    this.held = new Uint8Array(maxSize);
    this.size = maxSize;
  }

  /** Number of chains popped and not yet pushed. */
  get inFlight(): number {
    return this.heldCount;
  }

  /** True while `chain` (as popped with `ticket`) is still held: it may be completed. */
  holds(chain: DescriptorChain, ticket: number): boolean {
    return chain.ticket === ticket && this.held[chain.head] === 1 && this.fault === null && this.ready;
  }

  /** Whether the queue can be processed: ready, set up correctly and not stopped. */
  get usable(): boolean {
    return this.ready && this.fault === null;
  }

  /**
   * QueueReady = 1: checks size and rings (alignment 16/2/4, entirely in RAM) and starts at index 0.
   * Returns false (and stops the queue with a fault) when they are invalid.
   */
  enable(): boolean {
    this.ready = true;
    this.startOver();
    const n = this.size;
    if (!isPowerOfTwo(n) || n > this.maxSize) return this.fail(QueueFault.BAD_SIZE);
    const desc = address64(this.descLo, this.descHi);
    const avail = address64(this.driverLo, this.driverHi);
    const used = address64(this.deviceLo, this.deviceHi);
    const m = this.memory;
    if (
      desc % 16 !== 0 ||
      avail % 2 !== 0 ||
      used % 4 !== 0 ||
      !m.contains(desc, DESC_SIZE * n) ||
      !m.contains(avail, 6 + 2 * n) ||
      !m.contains(used, 6 + 8 * n)
    ) {
      return this.fail(QueueFault.BAD_RING);
    }
    this.descOff = desc - m.base;
    this.availOff = avail - m.base;
    this.usedOff = used - m.base;
    return true;
  }

  /** QueueReady = 0: the device lets go of the rings and every chain it holds. */
  disable(): void {
    this.ready = false;
    this.startOver();
  }

  /** Queue reset (device reset or QueueReset): registers back to their reset values. */
  reset(): void {
    this.disable();
    this.size = this.maxSize;
    this.descLo = this.descHi = this.driverLo = this.driverHi = this.deviceLo = this.deviceHi = 0;
    this.eventIdx = false;
    this.indirect = false;
  }

  /** Stops the queue (the device found a request it cannot handle, or the rings are broken). */
  fail(reason: string): false {
    if (this.fault === null) {
      this.fault = reason;
      this.onFault(this, reason);
    }
    return false;
  }

  /**
   * The next available chain, or null when there is none (or the queue cannot be used). With
   * EVENT_IDX, finding the ring empty publishes avail_event so the driver notifies on its next buffer.
   */
  pop(): DescriptorChain | null {
    if (!this.ready || this.fault !== null) return null;
    const v = this.view;
    let availIdx = v.getUint16(this.availOff + 2, true);
    if (availIdx === this.lastAvail) {
      if (!this.eventIdx) return null;
      v.setUint16(this.usedOff + 4 + 8 * this.size, this.lastAvail, true);
      // The driver may have added a buffer before it could see the new avail_event: look again.
      availIdx = v.getUint16(this.availOff + 2, true);
      if (availIdx === this.lastAvail) return null;
    }
    if (((availIdx - this.lastAvail) & 0xffff) > this.size) {
      this.fail(QueueFault.AVAIL_JUMP);
      return null;
    }
    const head = v.getUint16(this.availOff + 4 + 2 * (this.lastAvail & (this.size - 1)), true);
    if (head >= this.size) {
      this.fail(QueueFault.BAD_HEAD);
      return null;
    }
    if (this.held[head] === 1) {
      this.fail(QueueFault.HEAD_IN_USE);
      return null;
    }
    const chain = this.chains[head] as DescriptorChain;
    if (!this.walk(chain, head)) return null;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    this.held[head] = 1;
    this.heldCount++;
    chain.ticket = ++this.tickets;
    return chain;
  }

  /**
   * Returns a held chain to the driver as used, with `written` bytes written to its writable part.
   * Returns false (and does nothing) if the chain is no longer held (queue reset or disabled since).
   */
  push(chain: DescriptorChain, written: number): boolean {
    const head = chain.head;
    if (this.held[head] !== 1 || this.chains[head] !== chain) return false;
    this.held[head] = 0;
    this.heldCount--;
    if (!this.ready || this.fault !== null) return false;
    const len = Math.max(0, Math.min(written, chain.writableBytes)) >>> 0;
    const v = this.view;
    const slot = this.usedOff + 4 + 8 * (this.usedIdx & (this.size - 1));
    v.setUint32(slot, head, true);
    v.setUint32(slot + 4, len, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    v.setUint16(this.usedOff + 2, this.usedIdx, true);
    return true;
  }

  /**
   * Whether the used buffers pushed since the last call warrant an interrupt: with EVENT_IDX, when
   * used idx passed used_event; without it, unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
   */
  needsInterrupt(): boolean {
    if (!this.ready || this.fault !== null) return false;
    const now = this.usedIdx;
    const before = this.signalledUsed;
    this.signalledUsed = now;
    if (now === before) return false;
    const v = this.view;
    if (this.eventIdx) {
      const usedEvent = v.getUint16(this.availOff + 4 + 2 * this.size, true);
      return ((now - usedEvent - 1) & 0xffff) < ((now - before) & 0xffff);
    }
    return (v.getUint16(this.availOff, true) & AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** The chain a held head refers to (after a restore, devices find their requests with it). */
  heldChain(head: number): DescriptorChain | null {
    return head >= 0 && head < this.maxSize && this.held[head] === 1
      ? (this.chains[head] as DescriptorChain)
      : null;
  }

  snapshot(): SplitQueueState {
    const inFlight: number[] = [];
    for (let head = 0; head < this.maxSize; head++) if (this.held[head] === 1) inFlight.push(head);
    return {
      size: this.size,
      ready: this.ready,
      desc: [this.descLo, this.descHi],
      driver: [this.driverLo, this.driverHi],
      device: [this.deviceLo, this.deviceHi],
      lastAvail: this.lastAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalledUsed,
      fault: this.fault,
      inFlight,
    };
  }

  /**
   * Restores a snapshot taken from a queue with the same maximum size (ring features must be set
   * first). Held chains are walked again from the descriptor table, which the guest RAM snapshot holds.
   * Throws a RangeError (changing nothing) if the state is malformed.
   */
  restore(state: unknown): void {
    const s = parseQueueState(state, this.maxSize);
    this.size = s.size;
    [this.descLo, this.descHi] = s.desc;
    [this.driverLo, this.driverHi] = s.driver;
    [this.deviceLo, this.deviceHi] = s.device;
    this.disable();
    if (!s.ready) return;
    if (s.fault !== null) {
      this.ready = true;
      this.fault = s.fault;
      return;
    }
    if (!this.enable()) return;
    this.lastAvail = s.lastAvail;
    this.usedIdx = s.usedIdx;
    this.signalledUsed = s.signalledUsed;
    for (const head of s.inFlight) {
      if (head >= this.size) {
        this.fail(QueueFault.BAD_RESTORE);
        return;
      }
      const chain = this.chains[head] as DescriptorChain;
      if (!this.walk(chain, head)) return;
      this.held[head] = 1;
      this.heldCount++;
      chain.ticket = ++this.tickets;
    }
  }

  /** Back to ring index 0 holding nothing; chains held so far can no longer be pushed. */
  private startOver(): void {
    this.fault = null;
    this.lastAvail = 0;
    this.usedIdx = 0;
    this.signalledUsed = 0;
    this.held.fill(0);
    this.heldCount = 0;
    this.tickets++;
  }

  /**
   * Flattens the chain starting at `head` into `chain`. Structural errors stop the queue (false);
   * buffer errors (outside RAM, wrong direction order, too long) only mark the chain.
   */
  private walk(chain: DescriptorChain, head: number): boolean {
    const v = this.view;
    const m = this.memory;
    const store = this.store;
    const capacity = this.maxSize;
    chain.head = head;
    chain.length = 0;
    chain.readable = 0;
    chain.readableBytes = 0;
    chain.writableBytes = 0;
    chain.fault = null;
    let tableOff = this.descOff;
    let tableLen = this.size;
    let inIndirect = false;
    let steps = 0;
    let index = head;
    let sawWritable = false;
    for (;;) {
      if (steps >= tableLen) return this.fail(QueueFault.LOOP);
      steps++;
      const off = tableOff + DESC_SIZE * index;
      const lo = v.getUint32(off, true);
      const hi = v.getUint32(off + 4, true);
      const len = v.getUint32(off + 8, true);
      const flags = v.getUint16(off + 12, true);
      const next = v.getUint16(off + 14, true);
      if ((flags & DescFlag.INDIRECT) !== 0) {
        if (!this.indirect) return this.fail(QueueFault.INDIRECT_OFF);
        if (inIndirect) return this.fail(QueueFault.INDIRECT_NESTED);
        if ((flags & DescFlag.NEXT) !== 0) return this.fail(QueueFault.INDIRECT_NEXT);
        const table = address64(lo, hi);
        const entries = len / DESC_SIZE;
        if (
          len === 0 ||
          len % DESC_SIZE !== 0 ||
          entries > capacity ||
          table % INDIRECT_ALIGN !== 0 ||
          !m.contains(table, len)
        ) {
          return this.fail(QueueFault.INDIRECT_BAD);
        }
        tableOff = table - m.base;
        tableLen = entries;
        inIndirect = true;
        steps = 0;
        index = 0;
        continue;
      }
      if (chain.length >= capacity) return this.fail(QueueFault.TOO_MANY);
      const addr = address64(lo, hi);
      const writable = (flags & DescFlag.WRITE) !== 0;
      const slot = chain.base + chain.length;
      store.addr[slot] = addr;
      store.len[slot] = len;
      store.writable[slot] = writable ? 1 : 0;
      chain.length++;
      if (writable) {
        sawWritable = true;
        chain.writableBytes += len;
      } else {
        if (sawWritable) chain.fault ??= ChainFault.READ_AFTER_WRITE;
        chain.readable++;
        chain.readableBytes += len;
      }
      if (!m.contains(addr, len)) chain.fault ??= ChainFault.OUTSIDE_RAM;
      if (chain.readableBytes > MAX_CHAIN_BYTES || chain.writableBytes > MAX_CHAIN_BYTES) {
        chain.fault ??= ChainFault.TOO_LONG;
      }
      if ((flags & DescFlag.NEXT) === 0) return true;
      if (next >= tableLen) return this.fail(QueueFault.BAD_NEXT);
      index = next;
    }
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

const isU32 = (x: unknown): x is number =>
  typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
const isU16 = (x: unknown): x is number => isU32(x) && x <= 0xffff;

function pair(s: Record<string, unknown>, key: string): [number, number] {
  const value = s[key];
  if (!Array.isArray(value) || value.length !== 2 || !isU32(value[0]) || !isU32(value[1])) {
    throw new RangeError(`virtqueue snapshot: ${key} must be two 32-bit halves`);
  }
  return [value[0], value[1]];
}

function parseQueueState(state: unknown, maxSize: number): SplitQueueState {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new TypeError("virtqueue snapshot: not an object");
  }
  const s = state as Record<string, unknown>;
  const { size, ready, lastAvail, usedIdx, signalledUsed, fault, inFlight } = s;
  if (!isU16(size) || size > maxSize) throw new RangeError("virtqueue snapshot: bad size");
  if (typeof ready !== "boolean") throw new TypeError("virtqueue snapshot: ready must be a boolean");
  if (!isU16(lastAvail) || !isU16(usedIdx) || !isU16(signalledUsed)) {
    throw new RangeError("virtqueue snapshot: ring indexes must be 16-bit");
  }
  if (fault !== null && typeof fault !== "string") throw new TypeError("virtqueue snapshot: bad fault");
  if (
    !Array.isArray(inFlight) ||
    !inFlight.every((h) => isU16(h) && h < maxSize) ||
    new Set(inFlight).size !== inFlight.length
  ) {
    throw new RangeError("virtqueue snapshot: bad in-flight heads");
  }
  return {
    size,
    ready,
    desc: pair(s, "desc"),
    driver: pair(s, "driver"),
    device: pair(s, "device"),
    lastAvail,
    usedIdx,
    signalledUsed,
    fault: fault as string | null,
    inFlight: inFlight as number[],
  };
}
