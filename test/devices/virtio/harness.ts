/**
 * Test scaffolding for virtio devices: guest RAM with guard regions around it, and a minimal driver
 * that builds split or packed rings by hand and programs the virtio-mmio registers. The ring format of
 * drivers and layouts defaults to split; `useRingFormat("packed")` switches a whole test file (the
 * device suites run again that way from packed-suites.test.ts).
 */
import assert from "node:assert/strict";
import type { GuestMemory, InterruptLine } from "../../../src/devices/device.js";
import type { VirtioDevice } from "../../../src/devices/virtio/device.js";
import { MmioReg, VirtioMmio } from "../../../src/devices/virtio/mmio.js";
import type { RingFormat } from "../../../src/devices/virtio/queue.js";
import {
  DescFlag,
  EVENT_WRAP,
  Feature,
  featureMask,
  featureWord,
  PackedFlag,
  RingEvent,
  Status,
} from "../../../src/devices/virtio/spec.js";

let defaultFormat: RingFormat = "split";

/** The ring format test drivers and `layoutRing` use from now on in this process. */
export function useRingFormat(format: RingFormat): void {
  defaultFormat = format;
}

export function ringFormat(): RingFormat {
  return defaultFormat;
}

export const GUARD = 4096;
const GUARD_BYTE = 0xa5;

/** Guest RAM at `base`, with GUARD bytes of a known pattern on both sides that must stay untouched. */
export class TestMemory implements GuestMemory {
  readonly backing: Uint8Array;
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    this.backing = new Uint8Array(size + 2 * GUARD);
    this.backing.fill(GUARD_BYTE, 0, GUARD);
    this.backing.fill(GUARD_BYTE, GUARD + size);
    this.bytes = this.backing.subarray(GUARD, GUARD + size);
    this.view = new DataView(this.backing.buffer, GUARD, size);
  }

  contains(paddr: number, length: number): boolean {
    return paddr >= this.base && length >= 0 && paddr + length <= this.base + this.size;
  }

  guardsIntact(): boolean {
    for (let i = 0; i < GUARD; i++) {
      if (this.backing[i] !== GUARD_BYTE || this.backing[GUARD + this.size + i] !== GUARD_BYTE) return false;
    }
    return true;
  }

  u8(paddr: number): number {
    return this.view.getUint8(paddr - this.base);
  }
  u16(paddr: number): number {
    return this.view.getUint16(paddr - this.base, true);
  }
  u32(paddr: number): number {
    return this.view.getUint32(paddr - this.base, true);
  }
  set16(paddr: number, v: number): void {
    this.view.setUint16(paddr - this.base, v, true);
  }
  set32(paddr: number, v: number): void {
    this.view.setUint32(paddr - this.base, v >>> 0, true);
  }
  set64(paddr: number, v: number): void {
    this.set32(paddr, v % 2 ** 32);
    this.set32(paddr + 4, Math.floor(v / 2 ** 32));
  }
  write(paddr: number, data: Uint8Array | number[]): void {
    this.bytes.set(data, paddr - this.base);
  }
  read(paddr: number, length: number): Uint8Array {
    return this.bytes.slice(paddr - this.base, paddr - this.base + length);
  }
}

export class TestLine implements InterruptLine {
  level = false;
  rises = 0;
  set(level: boolean): void {
    if (level && !this.level) this.rises++;
    this.level = level;
  }
}

/** A buffer of a chain: guest address, length, device-writable or not. */
export interface Buf {
  addr: number;
  len: number;
  write?: boolean;
}

/**
 * Where a queue's rings live in test RAM: the Descriptor, Driver and Device Areas (split: descriptor
 * table, avail ring, used ring; packed: descriptor ring, driver and device event suppression).
 */
export interface RingLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
  packed?: boolean;
}

/** Lays out `size`-entry rings at `at` (16-byte aligned) in the given (or the default) format. */
export function layoutRing(at: number, size: number, format: RingFormat = defaultFormat): RingLayout {
  const desc = at;
  const avail = desc + 16 * size;
  if (format === "packed") return { size, desc, avail, used: avail + 4, packed: true };
  const used = align(avail + 6 + 2 * size, 4);
  return { size, desc, avail, used };
}

/** The first address after a layout's areas. */
export function ringEnd(ring: RingLayout): number {
  return ring.packed ? ring.used + 4 : ring.used + 6 + 8 * ring.size;
}

/** The driver side of a ring laid out by `layoutRing`, split or packed as the layout says. */
export function driverRing(mem: TestMemory, ring: RingLayout, eventIdx = false): TestRing {
  const r = ring.packed ? new PackedTestRing(mem, ring) : new TestRing(mem, ring);
  r.setEventIdx(eventIdx);
  return r;
}

export function align(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * The driver side of one split ring, written straight into guest memory: a simple descriptor
 * allocator (descriptors are never reused), avail publishing and used reading.
 */
export class TestRing {
  nextDesc = 0;
  availIdx = 0;
  usedSeen = 0;

  /** The driver accepted EVENT_IDX (packed rings then ask for interrupts with DESC events). */
  eventIdx = false;

  setEventIdx(on: boolean): void {
    this.eventIdx = on;
  }

  constructor(
    readonly mem: TestMemory,
    readonly ring: RingLayout,
  ) {}

  /** Writes descriptor i. */
  desc(i: number, addr: number, len: number, flags: number, next: number): void {
    const at = this.ring.desc + 16 * i;
    this.mem.set64(at, addr);
    this.mem.set32(at + 8, len);
    this.mem.set16(at + 12, flags);
    this.mem.set16(at + 14, next);
  }

  /** Writes a chain of direct descriptors for `bufs` (wrapping the allocator); returns its head. */
  chain(bufs: Buf[]): number {
    const n = this.ring.size;
    const head = this.nextDesc % n;
    bufs.forEach((b, k) => {
      const i = (this.nextDesc + k) % n;
      const last = k === bufs.length - 1;
      this.desc(
        i,
        b.addr,
        b.len,
        (b.write ? DescFlag.WRITE : 0) | (last ? 0 : DescFlag.NEXT),
        last ? 0 : (i + 1) % n,
      );
    });
    this.nextDesc += bufs.length;
    return head;
  }

  /** Writes an indirect table for `bufs` at `table` and one descriptor pointing at it; returns the head. */
  indirectChain(table: number, bufs: Buf[]): number {
    bufs.forEach((b, k) => {
      const at = table + 16 * k;
      const last = k === bufs.length - 1;
      this.mem.set64(at, b.addr);
      this.mem.set32(at + 8, b.len);
      this.mem.set16(at + 12, (b.write ? DescFlag.WRITE : 0) | (last ? 0 : DescFlag.NEXT));
      this.mem.set16(at + 14, last ? 0 : k + 1);
    });
    const head = this.nextDesc % this.ring.size;
    this.desc(head, table, 16 * bufs.length, DescFlag.INDIRECT, 0);
    this.nextDesc++;
    return head;
  }

  /** Breaks the written (not yet published) chain `head`: its head descriptor links to itself. */
  loop(head: number): void {
    const at = this.ring.desc + 16 * head;
    this.mem.set16(at + 12, this.mem.u16(at + 12) | DescFlag.NEXT);
    this.mem.set16(at + 14, head);
  }

  /** Puts `head` in the avail ring and publishes it. */
  publish(head: number): void {
    const r = this.ring;
    this.mem.set16(r.avail + 4 + 2 * (this.availIdx % r.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.set16(r.avail + 2, this.availIdx);
  }

  setAvailFlags(flags: number): void {
    this.mem.set16(this.ring.avail, flags);
  }

  setUsedEvent(value: number): void {
    this.mem.set16(this.ring.avail + 4 + 2 * this.ring.size, value);
  }

  availEvent(): number {
    return this.mem.u16(this.ring.used + 4 + 8 * this.ring.size);
  }

  usedIdx(): number {
    return this.mem.u16(this.ring.used + 2);
  }

  /**
   * Used entries since the last call: [head, len]. Like a driver re-enabling callbacks, it then asks
   * (with EVENT_IDX) for an interrupt at the next used entry: used_event = the used index it has seen.
   */
  takeUsed(): [number, number][] {
    const out: [number, number][] = [];
    const r = this.ring;
    const idx = this.usedIdx();
    while (this.usedSeen !== idx) {
      const at = r.used + 4 + 8 * (this.usedSeen % r.size);
      out.push([this.mem.u32(at), this.mem.u32(at + 4)]);
      this.usedSeen = (this.usedSeen + 1) & 0xffff;
    }
    this.setUsedEvent(this.usedSeen);
    return out;
  }
}

/** A virtio-mmio device with a test driver in front of it. */
export class TestDriver {
  readonly mmio: VirtioMmio;
  readonly line = new TestLine();
  readonly rings: TestRing[] = [];
  private readonly out = new Uint32Array(2);

  /** The ring format this driver sets queues up with (it accepts RING_PACKED for "packed" only). */
  readonly format: RingFormat;
  /** The format the last `negotiate` settled on (packed only if the device offered it). */
  negotiated: RingFormat = "split";

  constructor(
    readonly mem: TestMemory,
    readonly device: VirtioDevice,
    options: { format?: RingFormat; transportRing?: RingFormat } = {},
  ) {
    this.format = options.format ?? defaultFormat;
    this.mmio = new VirtioMmio(
      device,
      mem,
      this.line,
      options.transportRing === undefined ? {} : { ring: options.transportRing },
    );
  }

  rd(offset: number): number {
    assert.ok(this.mmio.read(offset, 4, this.out), `read 0x${offset.toString(16)}`);
    return this.out[0] as number;
  }

  wr(offset: number, value: number): void {
    assert.ok(this.mmio.write(offset, 4, value >>> 0, 0), `write 0x${offset.toString(16)}`);
  }

  config(offset: number, size: number): number {
    assert.ok(this.mmio.read(0x100 + offset, size, this.out));
    return this.out[0] as number;
  }

  status(): number {
    return this.rd(MmioReg.STATUS);
  }

  /** Offered features as a list of bit numbers (0..63). */
  offered(): Set<number> {
    const bits = new Set<number>();
    for (let w = 0; w < 2; w++) {
      this.wr(MmioReg.DEVICE_FEATURES_SEL, w);
      const v = this.rd(MmioReg.DEVICE_FEATURES);
      for (let b = 0; b < 32; b++) if ((v >>> b) & 1) bits.add(32 * w + b);
    }
    return bits;
  }

  /**
   * Accepts `features` (all offered ones by default) with RING_PACKED added when this driver's format
   * is packed and the device offers it, removed otherwise; returns the accepted set.
   */
  negotiate(features?: Iterable<number>): Set<number> {
    const offered = this.offered();
    const accepted = new Set(features ?? offered);
    if (this.format === "packed" && offered.has(Feature.RING_PACKED)) accepted.add(Feature.RING_PACKED);
    else accepted.delete(Feature.RING_PACKED);
    this.accept(accepted);
    this.negotiated = accepted.has(Feature.RING_PACKED) ? "packed" : "split";
    return accepted;
  }

  /** Writes the driver's feature words. */
  accept(bits: Iterable<number>): void {
    const words = [0, 0];
    for (const bit of bits)
      words[featureWord(bit)] = ((words[featureWord(bit)] as number) | featureMask(bit)) >>> 0;
    for (let w = 0; w < 2; w++) {
      this.wr(MmioReg.DRIVER_FEATURES_SEL, w);
      this.wr(MmioReg.DRIVER_FEATURES, words[w] as number);
    }
  }

  /**
   * The Linux-like bring-up: reset, ACK, DRIVER, features (all offered unless `features` says which;
   * RING_PACKED exactly when this driver's format is packed and the device offers it), FEATURES_OK,
   * queues (laid out from `ringBase`, each with `size` entries or its maximum), DRIVER_OK.
   */
  start(options: { features?: Iterable<number>; ringBase?: number; size?: number } = {}): void {
    this.wr(MmioReg.STATUS, 0);
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE);
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    const features = this.negotiate(options.features);
    const format = this.negotiated;
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    assert.ok(this.status() & Status.FEATURES_OK, "FEATURES_OK accepted");
    if (this.device.queueSizes.length > 0) assert.equal(this.mmio.queue(0).format, format, "ring format");
    let at = options.ringBase ?? this.mem.base;
    this.rings.length = 0;
    for (let q = 0; q < this.device.queueSizes.length; q++) {
      this.wr(MmioReg.QUEUE_SEL, q);
      const max = this.rd(MmioReg.QUEUE_SIZE_MAX);
      const ring = layoutRing(align(at, 4096), Math.min(options.size ?? max, max), format);
      const r = driverRing(this.mem, ring, features.has(Feature.RING_EVENT_IDX));
      this.setupQueue(q, ring);
      this.rings.push(r);
      at = ringEnd(ring);
    }
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
  }

  /** Programs queue q's size and ring addresses and sets it ready. */
  setupQueue(q: number, ring: RingLayout): void {
    this.wr(MmioReg.QUEUE_SEL, q);
    this.wr(MmioReg.QUEUE_SIZE, ring.size);
    this.wr(MmioReg.QUEUE_DESC_LOW, ring.desc % 2 ** 32);
    this.wr(MmioReg.QUEUE_DESC_HIGH, Math.floor(ring.desc / 2 ** 32));
    this.wr(MmioReg.QUEUE_DRIVER_LOW, ring.avail % 2 ** 32);
    this.wr(MmioReg.QUEUE_DRIVER_HIGH, Math.floor(ring.avail / 2 ** 32));
    this.wr(MmioReg.QUEUE_DEVICE_LOW, ring.used % 2 ** 32);
    this.wr(MmioReg.QUEUE_DEVICE_HIGH, Math.floor(ring.used / 2 ** 32));
    this.wr(MmioReg.QUEUE_READY, 1);
  }

  /** The end of the rings `start` laid out: free memory for buffers starts here. */
  ringsEnd(): number {
    const last = this.rings[this.rings.length - 1];
    return last === undefined ? this.mem.base : align(ringEnd(last.ring), 4096);
  }

  /** Submits `bufs` on queue q as one chain and notifies. Returns the head. */
  submit(q: number, bufs: Buf[]): number {
    const ring = this.rings[q] as TestRing;
    const head = ring.chain(bufs);
    ring.publish(head);
    this.wr(MmioReg.QUEUE_NOTIFY, q);
    return head;
  }

  /** Acknowledges every pending interrupt; returns the status it saw. */
  ack(): number {
    const s = this.rd(MmioReg.INTERRUPT_STATUS);
    this.wr(MmioReg.INTERRUPT_ACK, s);
    return s;
  }

  needsReset(): boolean {
    return (this.status() & Status.DEVICE_NEEDS_RESET) !== 0;
  }
}

export const ALL_RING_FEATURES = [Feature.VERSION_1, Feature.RING_EVENT_IDX, Feature.RING_INDIRECT_DESC];

/** Lets pending promise callbacks (async backends) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The driver side of one packed ring (§2.8), written straight into guest memory with the TestRing API:
 * `chain` writes a buffer's descriptors at the next ring entries (buffer ID in every one, the first
 * one's flags held back), `publish` makes it available, `takeUsed` reads used descriptors and skips
 * as many entries as each buffer took. Buffer IDs are the lowest free ones; writing more descriptors
 * than the ring has free entries throws (a real driver would wait).
 */
export class PackedTestRing extends TestRing {
  private nextAvail = 0;
  private availWrap = 1;
  private nextUsed = 0;
  private usedWrap = 1;
  private usedCount = 0;
  private outstanding = 0;
  /** Per ID: ring entries taken (0 = free). */
  private readonly entries: number[];
  /** First entries of written, not yet published buffers: ID -> [position, flags]. */
  private readonly pending = new Map<number, [number, number]>();

  constructor(mem: TestMemory, ring: RingLayout) {
    super(mem, ring);
    this.entries = new Array(ring.size).fill(0);
  }

  /** With EVENT_IDX the driver asks for an interrupt at its next used entry (DESC), else ENABLE. */
  override setEventIdx(on: boolean): void {
    this.eventIdx = on;
    this.mem.set16(this.ring.avail + 2, on ? RingEvent.DESC : RingEvent.ENABLE);
    this.mem.set16(this.ring.avail, this.nextUsed | (this.usedWrap ? EVENT_WRAP : 0));
  }

  /** Writes ring entry i: addr, len, buffer ID (`next` here), flags as given. */
  override desc(i: number, addr: number, len: number, flags: number, next: number): void {
    const at = this.ring.desc + 16 * i;
    this.mem.set64(at, addr);
    this.mem.set32(at + 8, len);
    this.mem.set16(at + 12, next);
    this.mem.set16(at + 14, flags);
  }

  /** AVAIL/USED bits marking an entry available under the current driver wrap counter. */
  private availBits(wrap: number): number {
    return wrap ? PackedFlag.AVAIL : PackedFlag.USED;
  }

  private allocate(count: number): number {
    if (this.outstanding + count > this.ring.size) throw new Error("packed test ring: no free entries");
    const id = this.entries.indexOf(0);
    if (id < 0) throw new Error("packed test ring: no free buffer ID");
    this.entries[id] = count;
    this.outstanding += count;
    return id;
  }

  /**
   * Writes entries for `elems` ([addr, len, flags]; NEXT and the AVAIL/USED bits are added) from
   * nextAvail, the first one's flags held back until `publish`; returns the buffer ID.
   */
  write(elems: [number, number, number][]): number {
    const id = this.allocate(elems.length);
    let first: [number, number] | null = null;
    elems.forEach(([addr, len, flags], k) => {
      const pos = this.nextAvail;
      const f = flags | (k < elems.length - 1 ? DescFlag.NEXT : 0) | this.availBits(this.availWrap);
      const at = this.ring.desc + 16 * pos;
      this.mem.set64(at, addr);
      this.mem.set32(at + 8, len);
      this.mem.set16(at + 12, id);
      if (k === 0) first = [pos, f];
      else this.mem.set16(at + 14, f);
      if (++this.nextAvail === this.ring.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    });
    this.pending.set(id, first as unknown as [number, number]);
    return id;
  }

  override chain(bufs: Buf[]): number {
    return this.write(bufs.map((b) => [b.addr, b.len, b.write ? DescFlag.WRITE : 0]));
  }

  override indirectChain(table: number, bufs: Buf[]): number {
    bufs.forEach((b, k) => {
      const at = table + 16 * k;
      this.mem.set64(at, b.addr);
      this.mem.set32(at + 8, b.len);
      this.mem.set16(at + 12, 0);
      this.mem.set16(at + 14, b.write ? DescFlag.WRITE : 0);
    });
    return this.write([[table, 16 * bufs.length, DescFlag.INDIRECT]]);
  }

  /**
   * Breaks the written (not yet published) buffer `id`: its last entry gets NEXT, so the chain runs on
   * into an entry that is not available (or past the queue size).
   */
  override loop(id: number): void {
    const first = this.pending.get(id);
    if (first === undefined) throw new Error(`packed test ring: buffer ${id} was not written`);
    const last = (first[0] + (this.entries[id] as number) - 1) % this.ring.size;
    if (last === first[0]) first[1] |= DescFlag.NEXT;
    else {
      const at = this.ring.desc + 16 * last + 14;
      this.mem.set16(at, this.mem.u16(at) | DescFlag.NEXT);
    }
  }

  /** Makes buffer `id` available: its first entry's flags, written last. */
  override publish(id: number): void {
    const first = this.pending.get(id);
    if (first === undefined) throw new Error(`packed test ring: buffer ${id} was not written`);
    this.pending.delete(id);
    this.mem.set16(this.ring.desc + 16 * first[0] + 14, first[1]);
  }

  /** DISABLE for a non-zero value (as VIRTQ_AVAIL_F_NO_INTERRUPT), else back to ENABLE or DESC. */
  override setAvailFlags(flags: number): void {
    const mode = flags !== 0 ? RingEvent.DISABLE : this.eventIdx ? RingEvent.DESC : RingEvent.ENABLE;
    this.mem.set16(this.ring.avail + 2, mode);
  }

  /** The driver event offset/wrap word. */
  override setUsedEvent(value: number): void {
    this.mem.set16(this.ring.avail, value);
  }

  /** The device event offset/wrap word. */
  override availEvent(): number {
    return this.mem.u16(this.ring.used);
  }

  /** Used descriptors the device wrote so far (seen or not), modulo 2^16. */
  override usedIdx(): number {
    let n = this.usedCount;
    let pos = this.nextUsed;
    let wrap = this.usedWrap;
    const taken = this.entries.slice();
    for (;;) {
      const at = this.ring.desc + 16 * pos;
      if (!this.isUsed(this.mem.u16(at + 14), wrap)) break;
      const id = this.mem.u16(at + 12);
      const count = taken[id] ?? 0;
      if (count === 0) break;
      taken[id] = 0;
      n++;
      pos += count;
      if (pos >= this.ring.size) {
        pos -= this.ring.size;
        wrap ^= 1;
      }
    }
    return n & 0xffff;
  }

  private isUsed(flags: number, wrap: number): boolean {
    const avail = (flags & PackedFlag.AVAIL) !== 0 ? 1 : 0;
    const used = (flags & PackedFlag.USED) !== 0 ? 1 : 0;
    return avail === used && used === wrap;
  }

  /**
   * Used buffers since the last call: [ID, len] (len 0 unless WRITE is set). Like a driver re-enabling
   * callbacks, it then points the driver event at its next used entry.
   */
  override takeUsed(): [number, number][] {
    const out: [number, number][] = [];
    for (;;) {
      const at = this.ring.desc + 16 * this.nextUsed;
      const flags = this.mem.u16(at + 14);
      if (!this.isUsed(flags, this.usedWrap)) break;
      const id = this.mem.u16(at + 12);
      const count = this.entries[id] ?? 0;
      assert.ok(count > 0, `used descriptor names buffer ${id}, which is not in flight`);
      out.push([id, (flags & DescFlag.WRITE) !== 0 ? this.mem.u32(at + 8) : 0]);
      this.entries[id] = 0;
      this.outstanding -= count;
      this.usedCount++;
      this.nextUsed += count;
      if (this.nextUsed >= this.ring.size) {
        this.nextUsed -= this.ring.size;
        this.usedWrap ^= 1;
      }
    }
    this.mem.set16(this.ring.avail, this.nextUsed | (this.usedWrap ? EVENT_WRAP : 0));
    return out;
  }
}
