/**
 * Test scaffolding for virtio devices: guest RAM with guard regions around it, and a minimal driver
 * that builds split rings by hand and programs the virtio-mmio registers.
 */
import assert from "node:assert/strict";
import type { GuestMemory, InterruptLine } from "../../../src/devices/device.js";
import type { VirtioDevice } from "../../../src/devices/virtio/device.js";
import { MmioReg, VirtioMmio } from "../../../src/devices/virtio/mmio.js";
import { DescFlag, Feature, featureMask, featureWord, Status } from "../../../src/devices/virtio/spec.js";

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

/** Where a queue's rings live in test RAM. */
export interface RingLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
}

/** Lays out `size`-entry rings at `at` (16-byte aligned), returns the layout and the next free address. */
export function layoutRing(at: number, size: number): RingLayout {
  const desc = at;
  const avail = desc + 16 * size;
  const used = align(avail + 6 + 2 * size, 4);
  return { size, desc, avail, used };
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

  constructor(
    readonly mem: TestMemory,
    readonly device: VirtioDevice,
  ) {
    this.mmio = new VirtioMmio(device, mem, this.line);
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
   * The Linux-like bring-up: reset, ACK, DRIVER, features (all offered unless `features` says which),
   * FEATURES_OK, queues (laid out from `ringBase`, each with `size` entries or its maximum), DRIVER_OK.
   */
  start(options: { features?: Iterable<number>; ringBase?: number; size?: number } = {}): void {
    this.wr(MmioReg.STATUS, 0);
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE);
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    this.accept(options.features ?? this.offered());
    this.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    assert.ok(this.status() & Status.FEATURES_OK, "FEATURES_OK accepted");
    let at = options.ringBase ?? this.mem.base;
    this.rings.length = 0;
    for (let q = 0; q < this.device.queueSizes.length; q++) {
      this.wr(MmioReg.QUEUE_SEL, q);
      const max = this.rd(MmioReg.QUEUE_SIZE_MAX);
      const ring = layoutRing(align(at, 4096), Math.min(options.size ?? max, max));
      this.setupQueue(q, ring);
      this.rings.push(new TestRing(this.mem, ring));
      at = ring.used + 6 + 8 * ring.size;
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
    return last === undefined ? this.mem.base : align(last.ring.used + 6 + 8 * last.ring.size, 4096);
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
