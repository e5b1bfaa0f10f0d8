/**
 * Snapshot `restore` of every device that has one: the virtio-mmio transport with each of the six
 * virtio devices (queues, held chains and the device's own record), the PLIC, the UART and the RTC.
 * Inputs are real snapshots (taken after some traffic) with random edits (values replaced by other
 * types or boundary numbers, keys deleted, arrays grown or cut), and a few arbitrary values. restore
 * may only throw its documented TypeError/RangeError; after it (thrown or not) the device must keep
 * running: registers read, queues notified, host events delivered, nothing outside RAM written. The
 * board devices must also be unchanged after a refused restore, as they document.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { GoldfishRtc } from "../../src/devices/goldfish-rtc/goldfish-rtc.js";
import { Plic } from "../../src/devices/plic/plic.js";
import { Uart16550 } from "../../src/devices/uart16550/uart16550.js";
import { MmioReg } from "../../src/devices/virtio/mmio.js";
import { type Buf, TestDriver, TestMemory } from "../../test/devices/virtio/harness.js";
import { allowing, defineTarget, invariant, isValidationError, type Target } from "../target.js";
import { balloonModel, blkModel, consoleModel, netModel, rngModel, vsockModel } from "./devices.js";
import type { DeviceModel } from "./rings.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;

const edgeValue = fc.oneof(
  fc.constantFrom(
    -1,
    0,
    1,
    2,
    3,
    255,
    256,
    0xffff,
    0x1_0000,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53,
    1.5,
    Number.NaN,
  ),
  fc.constantFrom(Number.POSITIVE_INFINITY, -0, null, true, false, "", "split", "packed", "x"),
  fc.constantFrom([], {}, [0], [0, 0], { version: 1 }),
  fc.integer(),
  fc.nat(),
);

const edit = fc.record({
  op: fc.constantFrom("set", "set", "set", "delete", "grow", "cut", "swap"),
  path: fc.nat(),
  other: fc.nat(),
  value: edgeValue,
});

type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;
type Json = unknown;

/** Every [container, key] in `root`, depth first. */
function slots(root: Json): [Record<string | number, Json>, string | number][] {
  const out: [Record<string | number, Json>, string | number][] = [];
  const walk = (v: Json): void => {
    if (typeof v !== "object" || v === null) return;
    const c = v as Record<string | number, Json>;
    for (const k of Array.isArray(v) ? v.keys() : Object.keys(v)) {
      out.push([c, k]);
      walk(c[k]);
    }
  };
  walk(root);
  return out;
}

function applyEdits(base: Json, edits: Edit[]): Json {
  const root = structuredClone(base);
  for (const e of edits) {
    const all = slots(root);
    if (all.length === 0) break;
    const [c, k] = all[e.path % all.length] as [Record<string | number, Json>, string | number];
    const v = c[k];
    switch (e.op) {
      case "set":
        c[k] = structuredClone(e.value);
        break;
      case "delete":
        if (Array.isArray(c)) c.splice(Number(k), 1);
        else delete c[k];
        break;
      case "grow":
        if (Array.isArray(v)) v.push(structuredClone(v[0] ?? e.value));
        else if (typeof v === "number") c[k] = v + 1 + (e.other % 4096);
        break;
      case "cut":
        if (Array.isArray(v)) v.length = e.other % (v.length + 1);
        else if (typeof v === "number") c[k] = v - 1 - (e.other % 4096);
        break;
      case "swap": {
        const [c2, k2] = all[e.other % all.length] as [Record<string | number, Json>, string | number];
        c[k] = structuredClone(c2[k2]);
        break;
      }
    }
  }
  return root;
}

function snapshotInput(corpusSize: number) {
  return fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        from: fc.nat(corpusSize - 1),
        edits: fc.array(edit, { minLength: 1, maxLength: 4 }),
        events: fc.uint8Array({ maxLength: 8 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ noise: fc.anything(), events: fc.uint8Array({ maxLength: 8 }) }) },
  );
}

type SnapshotInput =
  | { from: number; edits: Edit[]; events: Uint8Array }
  | { noise: unknown; events: Uint8Array };

interface VirtioSnapshot {
  state: Json;
  ram: Uint8Array;
}

/** Real snapshots of a device: before and after bring-up, with chains completed and still held. */
function virtioCorpus(model: DeviceModel): VirtioSnapshot[] {
  const out: VirtioSnapshot[] = [];
  const requests = fc.sample(model.request, { seed: 1, numRuns: 12 });
  for (const format of ["split", "packed"] as const) {
    for (let n = 0; n <= 12; n += 4) {
      const mem = new TestMemory(BASE, RAM);
      const dut = model.make(1);
      const drv = new TestDriver(mem, dut.device, { format });
      if (n > 0) {
        drv.start({ size: 8 });
        let data = drv.ringsEnd();
        for (const rq of requests.slice(0, n)) {
          const bufs: Buf[] = rq.segs.map((g) => {
            const b = { addr: data, len: g.len, write: g.write };
            if (g.data) mem.write(data, g.data.subarray(0, Math.min(g.data.length, g.len)));
            data += (g.len + 15) & ~15;
            return b;
          });
          const ring = drv.rings[rq.queue % drv.rings.length];
          if (ring === undefined || data > BASE + RAM) break;
          try {
            ring.publish(ring.chain(bufs));
          } catch {
            break; // the packed test ring is full
          }
          // Half the requests are left unnotified: they are held in the snapshot.
          if (out.length % 2 === 0) drv.wr(MmioReg.QUEUE_NOTIFY, rq.queue % drv.rings.length);
        }
        dut.host(
          1,
          Uint8Array.from({ length: 60 }, (_, i) => i),
        );
      }
      out.push({ state: structuredClone(drv.mmio.snapshot()), ram: mem.bytes.slice() });
    }
  }
  return out;
}

function virtioSnapshotTarget(name: string, model: DeviceModel): Target<unknown> {
  let corpus: VirtioSnapshot[] | null = null;
  return defineTarget({
    name: `snapshot-${name}`,
    about: `virtio-mmio + virtio-${name} restore of edited real snapshots, then the device keeps running`,
    input: snapshotInput(8),
    run(input: SnapshotInput) {
      corpus ??= virtioCorpus(model);
      const base = "from" in input ? (corpus[input.from % corpus.length] as VirtioSnapshot) : undefined;
      const state = "from" in input ? applyEdits(base?.state, input.edits) : input.noise;
      const mem = new TestMemory(BASE, RAM);
      if (base) mem.bytes.set(base.ram);
      const dut = model.make(1);
      const drv = new TestDriver(mem, dut.device);
      allowing(isValidationError, () => drv.mmio.restore(state));
      const out = new Uint32Array(2);
      for (const e of input.events) {
        if (e < 64) drv.mmio.write(MmioReg.QUEUE_NOTIFY, 4, e % 4, 0);
        else if (e < 128) dut.host(e % 16, new Uint8Array(e));
        else drv.mmio.read(Object.values(MmioReg)[e % Object.values(MmioReg).length] as number, 4, out);
      }
      for (let q = 0; q < 4; q++) drv.mmio.write(MmioReg.QUEUE_NOTIFY, 4, q, 0);
      invariant(mem.guardsIntact(), "memory outside guest RAM was written");
      dut.check();
    },
  });
}

export const virtioSnapshotTargets = [
  virtioSnapshotTarget("blk", blkModel),
  virtioSnapshotTarget("net", netModel),
  virtioSnapshotTarget("rng", rngModel),
  virtioSnapshotTarget("console", consoleModel),
  virtioSnapshotTarget("balloon", balloonModel),
  virtioSnapshotTarget("vsock", vsockModel),
];

interface Restorable {
  snapshot(): unknown;
  restore(state: unknown): void;
  read(offset: number, size: number, out: Uint32Array): boolean;
  write(offset: number, size: number, lo: number, hi: number): boolean;
}

/** A board device's restore: documented errors only, nothing changed when refused, still working after. */
function boardSnapshotTarget(
  name: string,
  make: () => Restorable,
  /** Register writes that give its snapshots some state. */
  activity: [number, number][][],
): Target<unknown> {
  let corpus: unknown[] | null = null;
  return defineTarget({
    name: `snapshot-${name}`,
    about: `${name} restore of edited real snapshots; a refused one changes nothing`,
    input: snapshotInput(activity.length),
    run(input: SnapshotInput) {
      corpus ??= activity.map((writes) => {
        const d = make();
        for (const [offset, v] of writes) d.write(offset, 4, v, 0);
        return structuredClone(d.snapshot());
      });
      const state =
        "from" in input ? applyEdits(corpus[input.from % corpus.length], input.edits) : input.noise;
      const dev = make();
      for (const [offset, v] of activity[activity.length - 1] ?? []) dev.write(offset, 4, v, 0);
      const before = dev.snapshot();
      if (!allowing(isValidationError, () => dev.restore(state)))
        invariant(isDeepStrictEqual(dev.snapshot(), before), "a refused restore changed the device");
      const out = new Uint32Array(2);
      for (const e of input.events) {
        if (e & 1) dev.write((e >> 1) * 4, 4, e, 0);
        else dev.read((e >> 1) * 4, 4, out);
      }
    },
  });
}

const noLine = { set() {} };

export const boardSnapshotTargets = [
  boardSnapshotTarget("plic", () => new Plic({ sources: 96, contexts: 2, lines: [noLine, noLine] }), [
    [],
    [
      [4, 7],
      [8, 3],
      [0x2000, 0xffff_fffe],
      [0x20_0000, 1],
    ],
  ]),
  boardSnapshotTarget("uart16550", () => new Uart16550(noLine, { write() {} }), [
    [],
    [
      [3, 0x80],
      [0, 1],
      [3, 3],
      [2, 0xc7],
      [1, 0x0f],
      [4, 0x10],
      [0, 0x41],
    ],
  ]),
  boardSnapshotTarget("goldfish-rtc", () => new GoldfishRtc({ nowNanos: () => 1.7e18 }, noLine), [
    [],
    [
      [0x0c, 0x17a0_0000],
      [0x08, 0x1234],
      [0x10, 1],
    ],
  ]),
];
