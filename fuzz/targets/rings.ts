/**
 * The generic virtio device fuzzer: a driver (test/devices/virtio/harness.ts) brings the device up on
 * split or packed rings, then submits requests the device's model makes valid, some of them mutated
 * (bad lengths and addresses, wrong directions, loops, links past the ring, indirect tables of odd
 * sizes), interleaved with notifications, host-side events, ring noise and resets. After every step
 * that lets the device run, the invariants are checked:
 *  - nothing outside guest RAM changed (guard regions), nor the driver's own areas (descriptor ring,
 *    avail ring, indirect tables, readable buffers): the device wrote only what it was offered writable;
 *  - used entries name heads inside the ring, report no more bytes than the chain offered writable, and
 *    the used index never moves by more than the ring size (so never backwards);
 *  - the interrupt line follows INTERRUPT_STATUS.
 * Any exception is a crash: a device answers garbage with a status, never with a throw.
 */
import fc from "fast-check";
import type { VirtioDevice } from "../../src/devices/virtio/device.js";
import { MmioReg } from "../../src/devices/virtio/mmio.js";
import { DescFlag, Feature, Status } from "../../src/devices/virtio/spec.js";
import { type Buf, TestDriver, TestMemory, type TestRing } from "../../test/devices/virtio/harness.js";
import { invariant } from "../target.js";

export const BASE = 0x8000_0000;
export const RAM = 1 << 20;
const RINGS = BASE;
const TABLES = BASE + 0x1_0000;
const READABLE = BASE + 0x2_0000;
const WRITABLE = BASE + 0x8_0000;
const READABLE_SIZE = WRITABLE - READABLE;
const WRITABLE_SIZE = BASE + RAM - WRITABLE;

/** One buffer of a request, as a device model describes it (placed in RAM by the fuzzer). */
export interface Seg {
  write: boolean;
  len: number;
  /** Contents of a device-readable buffer (zero-filled up to `len` if shorter). */
  data?: Uint8Array;
}

export interface Req {
  queue: number;
  segs: Seg[];
}

/** A device under test, with its host side. */
export interface DeviceUnderTest {
  device: VirtioDevice;
  /** Applies one host-side event (a frame arrives, input is typed, ...). */
  host(event: number, bytes: Uint8Array): void;
  /** Device-specific invariants, checked with the generic ones. */
  check(): void;
}

export interface DeviceModel {
  /** `variant` picks among device options (read-only disk, small backlog, ...). */
  make(variant: number): DeviceUnderTest;
  /** Valid-looking requests. */
  request: fc.Arbitrary<Req>;
  /** Features the driver may accept besides VERSION_1, EVENT_IDX and INDIRECT_DESC. */
  extraFeatures?: number[];
}

const MUTATIONS = [
  "len",
  "addr",
  "direction",
  "loop",
  "next",
  "drop",
  "zero-len",
  "indirect-len",
  "indirect-nested",
  "outside-ram",
] as const;

type Mutation = "none" | "indirect" | (typeof MUTATIONS)[number];

const wildAddress = fc.oneof(
  fc.integer({ min: BASE, max: BASE + RAM - 1 }),
  fc.constantFrom(0, BASE - 16, BASE - 1, BASE + RAM, BASE + RAM - 1, BASE + RAM - 8, 2 ** 32, 2 ** 53 - 1),
  fc.integer({ min: 0, max: 2 ** 53 - 1 }),
);
const wildLength = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 0x2_0000 }),
  fc.constantFrom(0xffff_ffff, 0x8000_0000, RAM, 16, 1),
);

function step(model: DeviceModel, queues: number) {
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 12, arbitrary: fc.constant("none" as const) },
    { weight: 3, arbitrary: fc.constant("indirect" as const) },
    { weight: 5, arbitrary: fc.constantFrom(...MUTATIONS) },
  );
  return fc.oneof(
    {
      weight: 10,
      arbitrary: fc.record({
        kind: fc.constant("req" as const),
        req: model.request,
        mutation,
        pick: fc.nat(),
        addr: wildAddress,
        len: wildLength,
        notify: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("notify" as const),
        queue: fc.integer({ min: 0, max: queues }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("host" as const),
        event: fc.nat(15),
        bytes: fc.oneof(
          { weight: 4, arbitrary: fc.uint8Array({ maxLength: 128 }) },
          fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("noise" as const),
        queue: fc.nat(queues),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("ack" as const) }) },
  );
}

export function ringScenario(model: DeviceModel, queues: number) {
  return fc.record({
    packed: fc.boolean(),
    variant: fc.nat(255),
    size: fc.constantFrom(2, 4, 8, 16),
    features: fc.subarray([
      Feature.RING_EVENT_IDX,
      Feature.RING_INDIRECT_DESC,
      ...(model.extraFeatures ?? []),
    ]),
    steps: fc.array(step(model, queues), { maxLength: 40 }),
  });
}

export type RingScenario = ReturnType<typeof ringScenario> extends fc.Arbitrary<infer T> ? T : never;

/** Bump allocators over the readable and writable regions (wrapping; old buffers may be overwritten). */
class Space {
  private next = 0;
  constructor(
    private readonly base: number,
    private readonly size: number,
  ) {}
  take(len: number): number {
    const n = Math.min(Math.max(len, 1), this.size);
    if (this.next + n > this.size) this.next = 0;
    const at = this.base + this.next;
    this.next = (this.next + n + 15) & ~15;
    return at;
  }
}

export function runRingScenario(model: DeviceModel, sc: RingScenario): void {
  const mem = new TestMemory(BASE, RAM);
  const dut = model.make(sc.variant);
  const drv = new TestDriver(mem, dut.device, { format: sc.packed ? "packed" : "split" });
  const features = [Feature.VERSION_1, ...sc.features];
  const start = () => drv.start({ size: sc.size, ringBase: RINGS, features });
  start();
  const readable = new Space(READABLE, READABLE_SIZE);
  const writable = new Space(WRITABLE, WRITABLE_SIZE);
  let tables = 0;
  /** Per queue: head -> writable bytes of a valid chain in flight (-1: a mutated one). */
  let offered = drv.rings.map(() => new Map<number, number>());
  let usedIdx = drv.rings.map(() => 0);
  /** Split rings: descriptors of chains in flight, which a new chain must not overwrite. */
  let busy = drv.rings.map((r) => new Uint8Array(r.ring.size));
  let chains = drv.rings.map(() => new Map<number, number[]>());
  const out = new Uint32Array(2);

  const driverAreas = (): Uint8Array[] => {
    const areas = [mem.read(TABLES, WRITABLE - TABLES)];
    for (const r of drv.rings) {
      // Split: descriptor table and avail ring; packed: only the driver event area is the driver's
      // alone (the device writes used descriptors into the descriptor ring).
      if (r.ring.packed) areas.push(mem.read(r.ring.avail, 4));
      else areas.push(mem.read(r.ring.desc, 16 * r.ring.size + 6 + 2 * r.ring.size));
    }
    return areas;
  };

  /** Lets the device run (`act`), then checks every invariant. */
  const interact = (what: string, act: () => void): void => {
    const before = driverAreas();
    act();
    invariant(mem.guardsIntact(), `${what}: memory outside guest RAM was written`);
    const after = driverAreas();
    before.forEach((b, i) => {
      invariant(
        Buffer.compare(b, after[i] as Uint8Array) === 0,
        `${what}: driver-owned memory written (area ${i})`,
      );
    });
    invariant(drv.mmio.read(MmioReg.INTERRUPT_STATUS, 4, out), "INTERRUPT_STATUS readable");
    invariant(
      (out[0] !== 0) === drv.line.level,
      `${what}: interrupt line ${drv.line.level} vs status ${out[0]}`,
    );
    drv.rings.forEach((r, q) => {
      if (!r.ring.packed) {
        const idx = r.usedIdx();
        const delta = (idx - (usedIdx[q] as number)) & 0xffff;
        invariant(
          delta <= r.ring.size,
          `${what}: queue ${q} used index moved by ${delta} (ring of ${r.ring.size})`,
        );
        usedIdx[q] = idx;
      }
      for (const [head, len] of r.takeUsed()) {
        invariant(head < r.ring.size, `${what}: queue ${q} used head ${head} outside the ring`);
        const max = offered[q]?.get(head);
        if (max !== undefined && max >= 0) invariant(len <= max, `${what}: used len ${len} > ${max} offered`);
        offered[q]?.delete(head);
        for (const d of chains[q]?.get(head) ?? []) (busy[q] as Uint8Array)[d] = 0;
        chains[q]?.delete(head);
      }
    });
    dut.check();
  };

  const restart = (): void => {
    // A driver zeroes its rings before handing them to a reset device (stale indexes would be read).
    mem.bytes.fill(0, RINGS - BASE, TABLES - BASE);
    start();
    offered = drv.rings.map(() => new Map<number, number>());
    usedIdx = drv.rings.map(() => 0);
    busy = drv.rings.map((r) => new Uint8Array(r.ring.size));
    chains = drv.rings.map(() => new Map<number, number[]>());
  };

  for (const s of sc.steps) {
    if ((drv.status() & Status.DEVICE_NEEDS_RESET) !== 0 || s.kind === "reset") {
      // The bring-up rewrites the driver's areas, so only the guard regions are checked across it.
      restart();
      invariant(mem.guardsIntact(), "reset: memory outside guest RAM was written");
      if (s.kind === "reset") continue;
    }
    switch (s.kind) {
      case "req": {
        const ring = drv.rings[s.req.queue % drv.rings.length] as TestRing;
        const q = drv.rings.indexOf(ring);
        const bufs: Buf[] = s.req.segs.map((g) => {
          if (g.write) return { addr: writable.take(g.len), len: g.len, write: true };
          const at = readable.take(g.len);
          if (g.data) mem.write(at, g.data.subarray(0, Math.min(g.data.length, g.len)));
          return { addr: at, len: g.len };
        });
        const indirect = s.mutation.startsWith("indirect");
        // The split test ring hands out descriptors in order: skip a chain that would overwrite one
        // still in flight (a driver would wait), as the device may rightly read the new contents.
        const descs = Array.from(
          { length: indirect ? 1 : Math.max(1, bufs.length) },
          (_, k) => (ring.nextDesc + k) % ring.ring.size,
        );
        if (!ring.ring.packed && (descs.length > ring.ring.size || descs.some((d) => busy[q]?.[d] === 1)))
          break;
        const head = submit(mem, ring, bufs, s, () => {
          const at = TABLES + ((tables++ * 0x400) % (READABLE - TABLES - 0x400));
          return at;
        });
        if (head === null) break;
        if (!ring.ring.packed) {
          for (const d of descs) (busy[q] as Uint8Array)[d] = 1;
          chains[q]?.set(head, descs);
        }
        const valid = s.mutation === "none" || s.mutation === "indirect";
        offered[q]?.set(head, valid ? bufs.reduce((n, b) => n + (b.write ? b.len : 0), 0) : -1);
        if (s.notify || (ring.ring.packed && s.mutation === "loop")) {
          interact(`notify ${q}`, () => drv.mmio.write(MmioReg.QUEUE_NOTIFY, 4, q, 0));
        }
        // A packed chain that runs on into entries the driver has not made available yet would swallow
        // the next buffer published: the driver model cannot follow that, so it starts over.
        if (ring.ring.packed && s.mutation === "loop") restart();
        break;
      }
      case "notify":
        interact(`notify ${s.queue}`, () => drv.mmio.write(MmioReg.QUEUE_NOTIFY, 4, s.queue, 0));
        break;
      case "host":
        interact(`host event ${s.event}`, () => dut.host(s.event, s.bytes));
        break;
      case "noise": {
        // Random bytes in a split avail ring (packed rings are checked by a harness that trusts them).
        const r = drv.rings[s.queue % drv.rings.length] as TestRing;
        if (r.ring.packed) break;
        const span = 4 + 2 * r.ring.size;
        mem.write(r.ring.avail + (s.at % span), s.bytes.subarray(0, Math.max(0, span - (s.at % span))));
        break;
      }
      case "ack":
        interact("ack", () => drv.ack());
        break;
    }
  }
}

/** Writes one request as a chain (mutated as the step says) and publishes it; returns its head. */
function submit(
  mem: TestMemory,
  ring: TestRing,
  bufs: Buf[],
  s: { mutation: Mutation; pick: number; addr: number; len: number },
  table: () => number,
): number | null {
  if (bufs.length === 0) bufs.push({ addr: READABLE, len: 0 });
  const k = s.pick % bufs.length;
  const b = bufs[k] as Buf;
  switch (s.mutation) {
    case "len":
      b.len = s.len;
      break;
    case "addr":
      // A wild address for a writable buffer is kept out of the driver's areas (a driver may offer any
      // RAM as writable, and then the device may write it, which the invariants could not tell apart).
      b.addr = b.write && s.addr >= BASE && s.addr < WRITABLE ? WRITABLE + (s.addr % WRITABLE_SIZE) : s.addr;
      break;
    case "direction":
      b.write = !b.write;
      if (b.write) b.addr = WRITABLE + ((b.addr - BASE) % WRITABLE_SIZE);
      break;
    case "drop":
      bufs.splice(k, 1);
      if (bufs.length === 0) return null;
      break;
    case "zero-len":
      b.len = 0;
      break;
    case "outside-ram":
      b.addr = BASE + RAM - (s.len % 8);
      b.len = Math.max(b.len, 16);
      break;
  }
  const free = ring.ring.size - ((ring.availIdx - ring.usedSeen) & 0xffff);
  const indirect =
    s.mutation === "indirect" || s.mutation === "indirect-len" || s.mutation === "indirect-nested";
  if (!indirect && bufs.length > free && ring.ring.packed) return null;
  if (bufs.length > 64) bufs.length = 64;
  let head: number;
  try {
    head = indirect ? ring.indirectChain(table(), bufs) : ring.chain(bufs);
  } catch (e) {
    // The packed test ring refuses more buffers than it has free entries (a driver would wait).
    if (e instanceof Error && e.message.startsWith("packed test ring")) return null;
    throw e;
  }
  const headDesc = ring.ring.desc + 16 * head;
  if (ring.ring.packed) {
    // (A packed buffer ID is not its ring position, so the table-length mutations are split-only.)
    if (s.mutation === "loop") ring.loop(head);
  } else {
    if (s.mutation === "loop") ring.loop(head);
    if (s.mutation === "next") {
      mem.set16(headDesc + 12, mem.u16(headDesc + 12) | DescFlag.NEXT);
      mem.set16(headDesc + 14, ring.ring.size + (s.pick % 4));
    }
    if (s.mutation === "indirect-len")
      mem.set32(headDesc + 8, (mem.u32(headDesc + 8) + 8 + (s.pick % 3) * 16) >>> 0);
    if (s.mutation === "indirect-nested") {
      const at = mem.u32(headDesc);
      mem.set16(at + 12, mem.u16(at + 12) | DescFlag.INDIRECT);
    }
  }
  ring.publish(head);
  return head;
}
