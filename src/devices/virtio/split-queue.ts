import type { GuestMemory } from "../device.js";
import {
  address64,
  ChainFault,
  type ChainPool,
  type DescriptorChain,
  INDIRECT_ALIGN,
  MAX_CHAIN_BYTES,
} from "./chain.js";
import { isU16, pair, QueueBase, QueueFault, stateRecord } from "./queue-base.js";
import { AVAIL_F_NO_INTERRUPT, DESC_SIZE, DescFlag, MAX_QUEUE_SIZE } from "./spec.js";

/**
 * Split virtqueues (virtio 1.2 §2.7) over guest memory, written for a hostile driver: every index,
 * address and length read from the rings is checked before it is used, nothing outside guest RAM is ever
 * read or written, and no operation allocates (each queue preallocates one chain record per descriptor
 * head, with room for the longest chain it accepts).
 */

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
 * One split virtqueue: the device's position in the rings (available ring, used ring, descriptor
 * table) and the chains it holds. `pop` hands out the next available chain, `push` returns one as used,
 * `needsInterrupt` applies the driver's notification suppression (used_event with EVENT_IDX, else
 * VIRTQ_AVAIL_F_NO_INTERRUPT). A structural error (a loop, an index out of range, a bad indirect table,
 * an avail index jump) stops the queue: `fault` is set, `onFault` tells the transport, and the queue
 * hands out nothing until it is reset.
 */
export class SplitQueue extends QueueBase {
  readonly format = "split" as const;
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
    memory: GuestMemory,
    index: number,
    /** QueueSizeMax: a power of two; also the longest chain (in buffers) accepted. */
    maxSize: number,
    pool?: ChainPool,
  ) {
    if (!isPowerOfTwo(maxSize) || maxSize > MAX_QUEUE_SIZE) {
      throw new RangeError(`virtqueue maximum size ${maxSize} is not a power of two up to 32768`);
    }
    super(memory, index, maxSize, pool);
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
      this.memory.written?.(this.memory.base + this.usedOff + 4 + 8 * this.size, 2);
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
    this.pool.heldCount++;
    chain.ticket = ++this.pool.tickets;
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
    this.pool.heldCount--;
    if (!this.ready || this.fault !== null) return false;
    const len = Math.max(0, Math.min(written, chain.writableBytes)) >>> 0;
    const v = this.view;
    const slot = this.usedOff + 4 + 8 * (this.usedIdx & (this.size - 1));
    v.setUint32(slot, head, true);
    v.setUint32(slot + 4, len, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    v.setUint16(this.usedOff + 2, this.usedIdx, true);
    // Ring writes are DMA too: a translator must not keep code compiled from these bytes.
    this.memory.written?.(this.memory.base + slot, 8);
    this.memory.written?.(this.memory.base + this.usedOff + 2, 2);
    return true;
  }

  /** With EVENT_IDX: avail_event at the driver's current avail idx, which its next buffer passes. */
  notifyOnNext(): void {
    if (!this.ready || this.fault !== null || !this.eventIdx) return;
    const v = this.view;
    v.setUint16(this.usedOff + 4 + 8 * this.size, v.getUint16(this.availOff + 2, true), true);
    this.memory.written?.(this.memory.base + this.usedOff + 4 + 8 * this.size, 2);
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

  snapshot(): SplitQueueState {
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
      inFlight: this.heldHeads(),
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
      this.take(chain);
    }
  }

  protected rewind(): void {
    this.lastAvail = 0;
    this.usedIdx = 0;
    this.signalledUsed = 0;
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

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function parseQueueState(state: unknown, maxSize: number): SplitQueueState {
  const s = stateRecord(state);
  const { size, ready, lastAvail, usedIdx, signalledUsed, fault, inFlight } = s;
  if (s.format !== undefined && s.format !== "split") {
    throw new TypeError("virtqueue snapshot: not a split queue");
  }
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
