import type { GuestMemory } from "../device.js";

/**
 * Descriptor chains as devices see them, whatever the ring format (split or packed): the buffers of one
 * request flattened into preallocated segment slots, checked against guest RAM.
 */

/** 2^32: combines two 32-bit register halves into a number. */
const TWO_32 = 4294967296;
/** Upper halves at or above this make an address beyond 2^53, which no guest RAM reaches. */
const MAX_HI = 0x20_0000;
/** Byte length limit of each direction of a chain (used lengths are 32-bit). */
export const MAX_CHAIN_BYTES = 0xffff_ffff;
/** Indirect tables are arrays of virtq_desc, whose natural alignment is 8 (it holds a le64). */
export const INDIRECT_ALIGN = 8;

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

/** Segment storage of a queue: per head (buffer ID), `capacity` (address, length, writable) slots. */
export interface SegmentStore {
  readonly memory: GuestMemory;
  readonly addr: Float64Array;
  readonly len: Uint32Array;
  readonly writable: Uint8Array;
}

/**
 * One descriptor chain the device popped, valid until it is pushed back (or the queue is reset): its
 * `head` (the head descriptor index of a split ring, the buffer ID of a packed ring), and its buffers
 * ("segments") flattened out of the descriptor ring or table and any indirect table. With no fault, the first `readable` segments are device-readable and the rest device-writable,
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
      this.store.memory.written?.(at + ramBase, n);
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
      if (toGuest) this.store.memory.written?.(at + ramBase, n);
      done += n;
      offset = 0;
    }
    return done;
  }
}

/** Empties `chain` before its segments are recorded again. */
export function clearChain(chain: DescriptorChain, head: number): void {
  chain.head = head;
  chain.length = 0;
  chain.readable = 0;
  chain.readableBytes = 0;
  chain.writableBytes = 0;
  chain.fault = null;
}

/**
 * Records one more buffer of `chain` (the caller checked there is a free slot), marking the chain when
 * the buffer is unusable: outside RAM (`addr` -1 is an address no RAM has), readable after writable, or
 * a direction adding up to 4 GiB.
 */
export function appendSegment(
  store: SegmentStore,
  chain: DescriptorChain,
  addr: number,
  len: number,
  writable: boolean,
): void {
  const slot = chain.base + chain.length;
  store.addr[slot] = addr;
  store.len[slot] = len;
  store.writable[slot] = writable ? 1 : 0;
  chain.length++;
  if (writable) chain.writableBytes += len;
  else {
    if (chain.readable !== chain.length - 1) chain.fault ??= ChainFault.READ_AFTER_WRITE;
    chain.readable++;
    chain.readableBytes += len;
  }
  if (!store.memory.contains(addr, len)) chain.fault ??= ChainFault.OUTSIDE_RAM;
  if (chain.readableBytes > MAX_CHAIN_BYTES || chain.writableBytes > MAX_CHAIN_BYTES) {
    chain.fault ??= ChainFault.TOO_LONG;
  }
}

/**
 * The chain records of one queue: `capacity` segment slots for each of `capacity` heads (or buffer IDs),
 * which chains are held, and the ticket counter. A transport's split and packed queue of one index share
 * a pool (only one of them is in use at a time), so a chain popped from one is never mistaken for a
 * chain of the other: tickets never repeat.
 */
export class ChainPool {
  readonly store: SegmentStore;
  readonly chains: DescriptorChain[] = [];
  /** 1 for each head whose chain the device holds. */
  readonly held: Uint8Array;
  heldCount = 0;
  tickets = 0;

  constructor(
    memory: GuestMemory,
    readonly capacity: number,
  ) {
    const slots = capacity * capacity;
    this.store = {
      memory,
      addr: new Float64Array(slots),
      len: new Uint32Array(slots),
      writable: new Uint8Array(slots),
    };
    for (let head = 0; head < capacity; head++)
      this.chains.push(new DescriptorChain(this.store, head * capacity));
    this.held = new Uint8Array(capacity);
  }
}
