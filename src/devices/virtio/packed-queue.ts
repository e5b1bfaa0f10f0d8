import type { GuestMemory } from "../device.js";
import {
  address64,
  appendSegment,
  ChainFault,
  type ChainPool,
  clearChain,
  type DescriptorChain,
  INDIRECT_ALIGN,
  MAX_CHAIN_BYTES,
} from "./chain.js";
import { isU16, isU32, pair, QueueBase, QueueFault, stateRecord } from "./queue-base.js";
import { DESC_SIZE, DescFlag, EVENT_WRAP, MAX_PACKED_QUEUE_SIZE, PackedFlag, RingEvent } from "./spec.js";

/**
 * Packed virtqueues (virtio 1.2 §2.8) over guest memory, for the same hostile driver as split rings.
 *
 * One descriptor ring (16 bytes per entry: addr, len, buffer ID, flags) is shared by both sides. The
 * device reads it in order from `nextAvail`: a descriptor is available when its AVAIL bit equals the
 * device's view of the driver's wrap counter and its USED bit does not (`availBits` holds that pattern
 * and flips each time the position wraps). A buffer is a run of descriptors linked by NEXT, or a single
 * descriptor pointing at an indirect table; its buffer ID is in the last descriptor. Used buffers are
 * written in completion order (so out of order) at `nextUsed`, with AVAIL = USED = the used wrap
 * counter, and `nextUsed` then skips as many ring entries as the buffer took. Chains are flattened at
 * pop time into the record of their buffer ID: a used descriptor written later may overwrite the ring
 * entries of a buffer still in flight, so nothing is read from the ring afterwards.
 *
 * Two small structures suppress notifications: the driver's (Driver Area) says whether it wants used
 * buffer interrupts (ENABLE, DISABLE, or DESC: when the used descriptor at an offset/wrap is written),
 * the device's (Device Area) says when the driver should notify: ENABLE, or with EVENT_IDX, once the
 * ring is found empty, DESC at the next descriptor the device will look at.
 *
 * The driver's mistakes stop the queue as with split rings: a chain longer than the queue, a chained
 * descriptor not marked available for its wrap counter, more descriptors in flight than the ring holds,
 * a buffer ID out of range or still held, an indirect descriptor in a chain or without the feature, a
 * bad indirect table. Unusable buffers only mark the chain (ChainFault). Nothing outside guest RAM is
 * read or written and no operation allocates.
 */

const BOTH = PackedFlag.AVAIL | PackedFlag.USED;

/** One buffer the device held when the snapshot was taken, flattened (the ring may be overwritten). */
export interface PackedInFlight {
  id: number;
  /** Ring entries the buffer took (the used descriptor skips as many). */
  descriptors: number;
  /** [guest address or -1, length, 1 if device-writable] per buffer element. */
  segments: [number, number, number][];
}

/** A packed queue's state as plain data (see PackedQueue.snapshot). */
export interface PackedQueueState {
  format: "packed";
  size: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  nextAvail: number;
  availWrap: number;
  nextUsed: number;
  usedWrap: number;
  /** Used position (0 .. 2 * size - 1, wrap counter included) at the last interrupt decision. */
  signalled: number;
  /** Ring entries used since that decision. */
  usedSince: number;
  fault: string | null;
  inFlight: PackedInFlight[];
}

export class PackedQueue extends QueueBase {
  readonly format = "packed" as const;
  /** Byte offsets in guest RAM of the descriptor ring and the two event suppression structures. */
  private descOff = 0;
  private driverOff = 0;
  private deviceOff = 0;
  /** Next ring entry to read, and the AVAIL/USED pattern that makes it available there. */
  private nextAvail = 0;
  private availBits: number = PackedFlag.AVAIL;
  /** Next ring entry to write a used descriptor to, and the AVAIL/USED bits it gets. */
  private nextUsed = 0;
  private usedBits: number = BOTH;
  /** Ring entries of the buffers in flight (the driver cannot have more than the ring holds). */
  private outstanding = 0;
  /** Per buffer ID: how many ring entries it took. */
  private readonly ringCount: Uint16Array;
  /** Used position at the last interrupt decision (see `usedPosition`), and entries used since. */
  private signalled = 0;
  private usedSince = 0;

  constructor(
    memory: GuestMemory,
    index: number,
    /** QueueSizeMax; also the longest chain (in buffers) accepted. */
    maxSize: number,
    pool?: ChainPool,
  ) {
    if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize > MAX_PACKED_QUEUE_SIZE) {
      throw new RangeError(`packed virtqueue maximum size ${maxSize} is not between 1 and 32768`);
    }
    super(memory, index, maxSize, pool);
    this.ringCount = new Uint16Array(maxSize);
  }

  /**
   * QueueReady = 1: checks size (any value from 1 to the maximum) and areas (descriptor ring 16-aligned,
   * event structures 4-aligned, all in RAM), starts at entry 0 with both wrap counters 1, and sets the
   * device event structure to ENABLE. Returns false (and stops the queue with a fault) when invalid.
   */
  enable(): boolean {
    this.ready = true;
    this.startOver();
    const n = this.size;
    if (!Number.isInteger(n) || n < 1 || n > this.maxSize) return this.fail(QueueFault.PACKED_SIZE);
    const desc = address64(this.descLo, this.descHi);
    const driver = address64(this.driverLo, this.driverHi);
    const device = address64(this.deviceLo, this.deviceHi);
    const m = this.memory;
    if (
      desc % 16 !== 0 ||
      driver % 4 !== 0 ||
      device % 4 !== 0 ||
      !m.contains(desc, DESC_SIZE * n) ||
      !m.contains(driver, 4) ||
      !m.contains(device, 4)
    ) {
      return this.fail(QueueFault.BAD_RING);
    }
    this.descOff = desc - m.base;
    this.driverOff = driver - m.base;
    this.deviceOff = device - m.base;
    this.view.setUint32(this.deviceOff, RingEvent.ENABLE << 16, true);
    this.memory.written?.(m.base + this.deviceOff, 4);
    return true;
  }

  /**
   * The next available buffer, or null when there is none (or the queue cannot be used). With
   * EVENT_IDX, finding the ring empty asks the driver (device event DESC) to notify once it makes the
   * next entry available.
   */
  pop(): DescriptorChain | null {
    if (!this.ready || this.fault !== null) return null;
    const v = this.view;
    const n = this.size;
    const descOff = this.descOff;
    let flags = v.getUint16(descOff + DESC_SIZE * this.nextAvail + 14, true);
    if ((flags & BOTH) !== this.availBits) {
      if (!this.eventIdx) return null;
      const wrap = this.availBits === PackedFlag.AVAIL ? EVENT_WRAP : 0;
      v.setUint32(this.deviceOff, this.nextAvail | wrap | (RingEvent.DESC << 16), true);
      this.memory.written?.(this.memory.base + this.deviceOff, 4);
      // The driver may have made it available before it could see the event: look again.
      flags = v.getUint16(descOff + DESC_SIZE * this.nextAvail + 14, true);
      if ((flags & BOTH) !== this.availBits) return null;
    }
    // The buffer ID is in the chain's last entry: find it, checking each entry is available too.
    let pos = this.nextAvail;
    let bits = this.availBits;
    let count = 1;
    while ((flags & DescFlag.NEXT) !== 0) {
      if ((flags & DescFlag.INDIRECT) !== 0) return this.stop(QueueFault.INDIRECT_CHAINED);
      if (count >= n) return this.stop(QueueFault.CHAIN_TOO_LONG);
      if (++pos === n) {
        pos = 0;
        bits ^= BOTH;
      }
      flags = v.getUint16(descOff + DESC_SIZE * pos + 14, true);
      if ((flags & BOTH) !== bits) return this.stop(QueueFault.NOT_AVAILABLE);
      count++;
    }
    if ((flags & DescFlag.INDIRECT) !== 0 && count > 1) return this.stop(QueueFault.INDIRECT_CHAINED);
    if (this.outstanding + count > n) return this.stop(QueueFault.OVERRUN);
    const id = v.getUint16(descOff + DESC_SIZE * pos + 12, true);
    if (id >= n) return this.stop(QueueFault.BAD_ID);
    if (this.held[id] === 1) return this.stop(QueueFault.ID_IN_USE);
    const chain = this.chains[id] as DescriptorChain;
    if (!this.walk(chain, id, count)) return null;
    this.nextAvail += count;
    if (this.nextAvail >= n) {
      this.nextAvail -= n;
      this.availBits ^= BOTH;
    }
    this.ringCount[id] = count;
    this.outstanding += count;
    this.held[id] = 1;
    this.pool.heldCount++;
    chain.ticket = ++this.pool.tickets;
    return chain;
  }

  /**
   * Writes a held buffer back as used (ID, `written` bytes, WRITE set when that is not 0) at the next
   * used position, flags last. Returns false (and does nothing) if the chain is no longer held.
   */
  push(chain: DescriptorChain, written: number): boolean {
    const id = chain.head;
    if (this.held[id] !== 1 || this.chains[id] !== chain) return false;
    this.held[id] = 0;
    this.pool.heldCount--;
    const count = this.ringCount[id] as number;
    this.outstanding -= count;
    if (!this.ready || this.fault !== null) return false;
    const len = Math.max(0, Math.min(written, chain.writableBytes)) >>> 0;
    const v = this.view;
    const off = this.descOff + DESC_SIZE * this.nextUsed;
    v.setUint32(off + 8, len, true);
    v.setUint16(off + 12, id, true);
    v.setUint16(off + 14, this.usedBits | (len !== 0 ? DescFlag.WRITE : 0), true);
    // Ring writes are DMA too: a translator must not keep code compiled from these bytes.
    this.memory.written?.(this.memory.base + off + 8, 8);
    this.nextUsed += count;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedBits ^= BOTH;
    }
    this.usedSince += count;
    return true;
  }

  /** The device event structure back to ENABLE (pop sets DESC again once it finds the ring empty). */
  notifyOnNext(): void {
    if (!this.ready || this.fault !== null) return;
    this.view.setUint32(this.deviceOff, RingEvent.ENABLE << 16, true);
    this.memory.written?.(this.memory.base + this.deviceOff, 4);
  }

  /**
   * Whether the buffers used since the last call warrant an interrupt, per the driver event structure:
   * ENABLE yes, DISABLE no, DESC (with EVENT_IDX) when the entry at its offset/wrap counter was among
   * those written. Reserved values, DESC without EVENT_IDX and offsets beyond the ring interrupt (one
   * interrupt too many is harmless, one too few hangs the driver).
   */
  needsInterrupt(): boolean {
    if (!this.ready || this.fault !== null) return false;
    const used = this.usedSince;
    if (used === 0) return false;
    const before = this.signalled;
    const now = this.usedPosition();
    this.signalled = now;
    this.usedSince = 0;
    const v = this.view;
    const flags = v.getUint16(this.driverOff + 2, true) & 3;
    if (flags === RingEvent.DISABLE) return false;
    if (flags !== RingEvent.DESC || !this.eventIdx) return true;
    const n = this.size;
    const event = v.getUint16(this.driverOff, true);
    const offset = event & ~EVENT_WRAP;
    if (offset >= n) return true;
    // Entries written since: positions before .. before + used - 1 over two laps (more than two laps
    // since the last decision include every position).
    const at = offset + ((event & EVENT_WRAP) !== 0 ? 0 : n);
    return (at - before + 2 * n) % (2 * n) < used;
  }

  snapshot(): PackedQueueState {
    const inFlight: PackedInFlight[] = [];
    for (const id of this.heldHeads()) {
      const chain = this.chains[id] as DescriptorChain;
      const segments: [number, number, number][] = [];
      for (let i = 0; i < chain.length; i++) {
        segments.push([chain.address(i), chain.size(i), chain.writable(i) ? 1 : 0]);
      }
      inFlight.push({ id, descriptors: this.ringCount[id] as number, segments });
    }
    return {
      format: "packed",
      size: this.size,
      ready: this.ready,
      desc: [this.descLo, this.descHi],
      driver: [this.driverLo, this.driverHi],
      device: [this.deviceLo, this.deviceHi],
      nextAvail: this.nextAvail,
      availWrap: this.availBits === PackedFlag.AVAIL ? 1 : 0,
      nextUsed: this.nextUsed,
      usedWrap: this.usedBits === BOTH ? 1 : 0,
      signalled: this.signalled,
      usedSince: this.usedSince,
      fault: this.fault,
      inFlight,
    };
  }

  /**
   * Restores a snapshot taken from a packed queue with the same maximum size (ring features must be
   * set first). Held buffers come back from their saved segments, checked against guest RAM again.
   * Throws (changing nothing) if the state is malformed; positions that do not fit the restored size
   * stop the queue (BAD_RESTORE).
   */
  restore(state: unknown): void {
    const s = parsePackedState(state, this.maxSize);
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
    // enable() sets the device event structure to ENABLE: at worst the driver notifies more often.
    if (!this.enable()) return;
    const n = this.size;
    let total = 0;
    for (const b of s.inFlight) total += b.descriptors;
    if (
      s.nextAvail >= n ||
      s.nextUsed >= n ||
      s.signalled >= 2 * n ||
      total > n ||
      s.inFlight.some((b) => b.id >= n || b.descriptors > n)
    ) {
      this.fail(QueueFault.BAD_RESTORE);
      return;
    }
    this.nextAvail = s.nextAvail;
    this.availBits = s.availWrap === 1 ? PackedFlag.AVAIL : PackedFlag.USED;
    this.nextUsed = s.nextUsed;
    this.usedBits = s.usedWrap === 1 ? BOTH : 0;
    this.signalled = s.signalled;
    this.usedSince = s.usedSince;
    for (const b of s.inFlight) {
      const chain = this.chains[b.id] as DescriptorChain;
      clearChain(chain, b.id);
      for (const [addr, len, writable] of b.segments)
        appendSegment(this.store, chain, addr, len, writable === 1);
      this.ringCount[b.id] = b.descriptors;
      this.outstanding += b.descriptors;
      this.take(chain);
    }
  }

  protected rewind(): void {
    this.nextAvail = 0;
    this.availBits = PackedFlag.AVAIL;
    this.nextUsed = 0;
    this.usedBits = BOTH;
    this.outstanding = 0;
    this.signalled = 0;
    this.usedSince = 0;
  }

  /** The next used position counted over two laps (wrap counter 1: 0..size-1, 0: size..2*size-1). */
  private usedPosition(): number {
    return this.nextUsed + (this.usedBits === BOTH ? 0 : this.size);
  }

  private stop(reason: string): null {
    this.fail(reason);
    return null;
  }

  /**
   * Flattens the `count` ring entries from `nextAvail` (or the indirect table the single entry points
   * at) into `chain`. Structural errors stop the queue (false); buffer errors only mark the chain.
   */
  private walk(chain: DescriptorChain, id: number, count: number): boolean {
    const v = this.view;
    const m = this.memory;
    const store = this.store;
    const n = this.size;
    chain.head = id;
    chain.length = 0;
    chain.readable = 0;
    chain.readableBytes = 0;
    chain.writableBytes = 0;
    chain.fault = null;
    let pos = this.nextAvail;
    let sawWritable = false;
    for (let k = 0; k < count; k++) {
      const off = this.descOff + DESC_SIZE * pos;
      const lo = v.getUint32(off, true);
      const hi = v.getUint32(off + 4, true);
      const len = v.getUint32(off + 8, true);
      const flags = v.getUint16(off + 14, true);
      if ((flags & DescFlag.INDIRECT) !== 0) {
        // Seen without INDIRECT a moment ago: the driver is rewriting an available chain.
        if (count !== 1) return this.fail(QueueFault.INDIRECT_CHAINED);
        return this.walkIndirect(chain, address64(lo, hi), len);
      }
      // As appendSegment, inline (this is the hot path).
      const addr = address64(lo, hi);
      const writable = (flags & DescFlag.WRITE) !== 0;
      const slot = chain.base + k;
      store.addr[slot] = addr;
      store.len[slot] = len;
      store.writable[slot] = writable ? 1 : 0;
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
      if (++pos === n) pos = 0;
    }
    chain.length = count;
    return true;
  }

  /**
   * An indirect table: len / 16 descriptors used in order; WRITE is their only flag, the others and the
   * buffer ID are reserved and ignored (§2.8.7).
   */
  private walkIndirect(chain: DescriptorChain, table: number, len: number): boolean {
    if (!this.indirect) return this.fail(QueueFault.INDIRECT_OFF);
    const m = this.memory;
    const entries = len / DESC_SIZE;
    if (
      len === 0 ||
      len % DESC_SIZE !== 0 ||
      entries > this.maxSize ||
      table % INDIRECT_ALIGN !== 0 ||
      !m.contains(table, len)
    ) {
      return this.fail(QueueFault.INDIRECT_BAD);
    }
    const v = this.view;
    const store = this.store;
    let off = table - m.base;
    for (let e = 0; e < entries; e++, off += DESC_SIZE) {
      const addr = address64(v.getUint32(off, true), v.getUint32(off + 4, true));
      const flags = v.getUint16(off + 14, true);
      appendSegment(store, chain, addr, v.getUint32(off + 8, true), (flags & DescFlag.WRITE) !== 0);
    }
    return true;
  }
}

const isBit = (x: unknown): x is number => x === 0 || x === 1;

function parsePackedState(state: unknown, maxSize: number): PackedQueueState {
  const s = stateRecord(state);
  if (s.format !== "packed") throw new TypeError("virtqueue snapshot: not a packed queue");
  const { size, ready, nextAvail, availWrap, nextUsed, usedWrap, signalled, usedSince, fault, inFlight } = s;
  if (!isU16(size) || size > maxSize) throw new RangeError("virtqueue snapshot: bad size");
  if (typeof ready !== "boolean") throw new TypeError("virtqueue snapshot: ready must be a boolean");
  if (!isU16(nextAvail) || !isU16(nextUsed) || !isBit(availWrap) || !isBit(usedWrap)) {
    throw new RangeError("virtqueue snapshot: bad ring positions");
  }
  if (!isU32(signalled) || !isU32(usedSince)) throw new RangeError("virtqueue snapshot: bad used counts");
  if (fault !== null && typeof fault !== "string") throw new TypeError("virtqueue snapshot: bad fault");
  if (!Array.isArray(inFlight)) throw new RangeError("virtqueue snapshot: bad in-flight buffers");
  const ids = new Set<number>();
  const buffers: PackedInFlight[] = inFlight.map((b: unknown) => {
    const r = stateRecord(b);
    const { id, descriptors, segments } = r;
    if (!isU16(id) || id >= maxSize || ids.has(id)) throw new RangeError("virtqueue snapshot: bad buffer ID");
    ids.add(id);
    if (!isU16(descriptors) || descriptors < 1)
      throw new RangeError("virtqueue snapshot: bad descriptor count");
    if (!Array.isArray(segments) || segments.length < 1 || segments.length > maxSize) {
      throw new RangeError("virtqueue snapshot: bad segments");
    }
    for (const seg of segments as unknown[]) {
      if (
        !Array.isArray(seg) ||
        seg.length !== 3 ||
        !Number.isSafeInteger(seg[0]) ||
        (seg[0] as number) < -1 ||
        !isU32(seg[1]) ||
        !isBit(seg[2])
      ) {
        throw new RangeError("virtqueue snapshot: bad segment");
      }
    }
    return { id, descriptors, segments: segments as [number, number, number][] };
  });
  return {
    format: "packed",
    size,
    ready,
    desc: pair(s, "desc"),
    driver: pair(s, "driver"),
    device: pair(s, "device"),
    nextAvail,
    availWrap,
    nextUsed,
    usedWrap,
    signalled,
    usedSince,
    fault: fault as string | null,
    inFlight: buffers,
  };
}
