/**
 * Property tests for packed rings: a driver that mixes proper buffers with arbitrary ring entries
 * (any flags, wrap bits, buffer IDs, addresses, lengths, indirect tables), random event suppression
 * and queue sizes that are not powers of two. Whatever it writes, the devices never throw, never touch
 * memory outside guest RAM (guard regions), and change nothing but the descriptor rings (only the
 * len/ID/flags of used descriptors, with in-range IDs and AVAIL = USED), the device event areas and
 * memory the driver gave as device-writable.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryBlockBackend } from "../../../src/devices/virtio/blk/backend.js";
import { VirtioBlk } from "../../../src/devices/virtio/blk/virtio-blk.js";
import { VirtioConsole } from "../../../src/devices/virtio/console/virtio-console.js";
import type { VirtioDevice } from "../../../src/devices/virtio/device.js";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { RecordingNetBackend } from "../../../src/devices/virtio/net/backend.js";
import { VirtioNet } from "../../../src/devices/virtio/net/virtio-net.js";
import { VirtioRng } from "../../../src/devices/virtio/rng/virtio-rng.js";
import { DescFlag, Feature, PackedFlag } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { type PackedTestRing, TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const RINGS = BASE;
const TABLES = BASE + 0x1_0000;
const READABLE = BASE + 0x4_0000;
const WRITABLE = BASE + 0x8_0000;
const RUNS = Number(process.env.VIREO_FUZZ_RUNS ?? 150);
const BOTH = PackedFlag.AVAIL | PackedFlag.USED;

type Kind = "blk" | "rng" | "console" | "net";

function makeDevice(kind: Kind) {
  switch (kind) {
    case "blk":
      return { device: new VirtioBlk(new MemoryBlockBackend(new Uint8Array(256 * 1024)), { serial: "fz" }) };
    case "rng":
      return { device: new VirtioRng({ fill: (d) => d.fill(0x5a) }) };
    case "console": {
      const console = new VirtioConsole({ write: () => {} });
      return { device: console, input: (b: Uint8Array) => console.receive(b) };
    }
    case "net": {
      const backend = new RecordingNetBackend();
      const net = new VirtioNet(backend, { mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], rxBacklog: 4 });
      return { device: net, input: (b: Uint8Array) => backend.inject(b) };
    }
  }
}

/** Addresses anywhere: the region the direction allows, RAM edges, outside, absurd. */
const wildAddress = fc.oneof(
  fc.integer({ min: BASE, max: BASE + RAM - 1 }),
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      BASE - 16,
      BASE - 1,
      BASE + RAM,
      BASE + RAM - 1,
      BASE + RAM - 8,
      BASE + RAM - 16,
      2 ** 32,
      2 ** 60,
    ),
  },
  fc.integer({ min: 0, max: 2 ** 53 }),
);
const wildLength = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 0x2_0000 }),
  fc.constantFrom(0xffff_ffff, 0x8000_0000, RAM, 16),
);

/** A descriptor as the fuzzer writes it (ring entry or indirect table entry). */
const descriptor = fc.record({
  write: fc.boolean(),
  next: fc.boolean(),
  indirect: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
  /** AVAIL/USED bits: 0 = available for wrap 1, 1 = for wrap 0, 2 = both, 3 = neither. */
  wrapBits: fc.integer({ min: 0, max: 3 }),
  extraFlags: fc.integer({ min: 0, max: 0xffff }).map((f) => (f % 5 === 0 ? f & 0x7f78 : 0)),
  id: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 0xffff })),
  place: fc.oneof(
    {
      weight: 4,
      arbitrary: fc.integer({ min: 0, max: 0x3_ff00 }).map((o) => ({ region: true as const, o })),
    },
    { weight: 1, arbitrary: wildAddress.map((a) => ({ region: false as const, a })) },
  ),
  len: wildLength,
});

type Desc = typeof descriptor extends fc.Arbitrary<infer T> ? T : never;

const WRAP_BITS = [PackedFlag.AVAIL, PackedFlag.USED, BOTH, 0];

type Place = Desc["place"];

/** An element's address: its region (tables, readable or writable data), or anywhere. */
function placeAddress(place: Place, write: boolean, indirect: boolean): number {
  if (!place.region) {
    // Writable buffers anywhere in RAM must land in WRITABLE, so the invariant can be checked.
    const a = place.a;
    return write && !indirect && a >= BASE && a < WRITABLE ? WRITABLE + ((a - BASE) % (WRITABLE - BASE)) : a;
  }
  if (indirect) return TABLES + (place.o % 0x2_f000);
  return (write ? WRITABLE : READABLE) + (place.o % 0x3_f000);
}

/** Indirect table lengths: mostly whole descriptors, sometimes not. */
function tableLength(len: number): number {
  return (len % 24) * 16 + (len % 7 === 0 ? 8 : 0);
}

function putDescriptor(mem: TestMemory, at: number, d: Desc): void {
  const addr = placeAddress(d.place, d.write, d.indirect);
  const len = d.indirect ? tableLength(d.len) : d.len;
  const flags =
    (d.write ? DescFlag.WRITE : 0) |
    (d.indirect ? DescFlag.INDIRECT : 0) |
    (d.next ? DescFlag.NEXT : 0) |
    (WRAP_BITS[d.wrapBits] as number) |
    d.extraFlags;
  mem.set64(at, addr);
  mem.set32(at + 8, len);
  mem.set16(at + 12, d.id);
  mem.set16(at + 14, flags);
}

/** A well-formed buffer: 1-3 elements (readable first), maybe through an indirect table. */
const properBuffer = fc.record({
  readable: fc.integer({ min: 0, max: 2 }),
  writable: fc.integer({ min: 0, max: 5 }).map((n) => (n === 0 ? 0 : 1 + (n % 2))),
  offset: fc.integer({ min: 0, max: 0x3_0000 }),
  len: fc.integer({ min: 1, max: 2048 }),
  indirect: fc.boolean(),
});

/** A buffer whose ring entries are well formed but whose elements are anything (indirect included). */
const hostileBuffer = fc.array(
  fc.record({
    place: descriptor.map((d) => d.place),
    len: wildLength,
    write: fc.boolean(),
    indirect: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  }),
  { minLength: 1, maxLength: 4 },
);

const round = fc.record({
  /** Arbitrary entries written over the ring (position modulo the size). */
  raw: fc.array(fc.tuple(fc.integer({ min: 0, max: 31 }), descriptor), { maxLength: 3 }),
  proper: fc.array(properBuffer, { maxLength: 5 }),
  hostile: fc.array(hostileBuffer, { maxLength: 3 }),
  /** Driver event suppression: offset/wrap word and flags (any value). */
  event: fc.option(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))),
  notify: fc.integer({ min: 0, max: 2 }),
  input: fc.uint8Array({ maxLength: 80 }),
});

describe("packed ring fuzz: malicious drivers", () => {
  for (const kind of ["blk", "rng", "console", "net"] as const) {
    it(`${kind}: writes only used descriptors, the device event area and device-writable memory`, () => {
      const scenario = fc.record({
        size: fc.integer({ min: 1, max: 16 }),
        features: fc.subarray([Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX]),
        indirect: fc.array(descriptor, { maxLength: 48 }),
        rounds: fc.array(round, { minLength: 1, maxLength: 8 }),
      });
      /** Over all runs: used descriptors seen, runs ending in DEVICE_NEEDS_RESET, and runs without. */
      const seen = { used: 0, resets: 0, clean: 0 };
      fc.assert(
        fc.property(scenario, (sc) => {
          const mem = new TestMemory(BASE, RAM);
          for (let i = READABLE - BASE; i < WRITABLE - BASE; i++) mem.bytes[i] = (i * 13) & 0xff;
          const { device, input } = makeDevice(kind) as {
            device: VirtioDevice;
            input?: (b: Uint8Array) => void;
          };
          const drv = new TestDriver(mem, device, { format: "packed" });
          const base = kind === "net" ? [Feature.VERSION_1, 5] : [Feature.VERSION_1];
          drv.start({ size: sc.size, ringBase: RINGS, features: [...base, ...sc.features] });
          assert.equal(drv.mmio.queue(0).format, "packed");
          sc.indirect.forEach((d, i) => {
            putDescriptor(mem, TABLES + 16 * i, d);
          });
          const rings = drv.rings as PackedTestRing[];
          // What the device may write: each descriptor ring, each device event area, WRITABLE.
          const allowed: [number, number][] = [[WRITABLE - BASE, RAM]];
          for (const r of rings) {
            allowed.push([r.ring.desc - BASE, r.ring.desc - BASE + 16 * r.ring.size]);
            allowed.push([r.ring.used - BASE, r.ring.used - BASE + 4]);
          }
          for (const rd of sc.rounds) {
            for (const r of rings) {
              for (const [pos, d] of rd.raw) putDescriptor(mem, r.ring.desc + 16 * (pos % r.ring.size), d);
              for (const b of rd.proper) {
                const bufs = [
                  ...Array.from({ length: b.readable }, (_, k) => ({
                    addr: READABLE + b.offset + 4096 * k,
                    len: b.len,
                  })),
                  ...Array.from({ length: b.writable }, (_, k) => ({
                    addr: WRITABLE + b.offset + 4096 * k,
                    len: b.len,
                    write: true,
                  })),
                ];
                if (bufs.length === 0) continue;
                try {
                  const useIndirect = b.indirect && sc.features.includes(Feature.RING_INDIRECT_DESC);
                  r.publish(
                    useIndirect
                      ? r.indirectChain(TABLES + 0x3_0000 + 0x100 * (b.offset % 64), bufs)
                      : r.chain(bufs),
                  );
                } catch (e) {
                  // The test driver has no free entries or IDs (the device holds them): skip.
                  if (!(e instanceof Error && e.message.startsWith("packed test ring"))) throw e;
                }
              }
              for (const h of rd.hostile) {
                const elems = h.map(
                  (e) =>
                    [
                      placeAddress(e.place, e.write, e.indirect),
                      e.indirect ? tableLength(e.len) : e.len,
                      (e.write ? DescFlag.WRITE : 0) | (e.indirect ? DescFlag.INDIRECT : 0),
                    ] as [number, number, number],
                );
                try {
                  r.publish(r.write(elems));
                } catch (e) {
                  if (!(e instanceof Error && e.message.startsWith("packed test ring"))) throw e;
                }
              }
              if (rd.event !== null) {
                mem.set16(r.ring.avail, rd.event[0]);
                mem.set16(r.ring.avail + 2, rd.event[1]);
              }
            }
            const before = mem.bytes.slice();
            input?.(rd.input);
            drv.wr(MmioReg.QUEUE_NOTIFY, rd.notify);
            drv.wr(MmioReg.INTERRUPT_ACK, drv.rd(MmioReg.INTERRUPT_STATUS));
            // Used descriptors: only len/ID/flags change, IDs within the queue, AVAIL = USED.
            for (const r of rings) {
              for (let i = 0; i < r.ring.size; i++) {
                const at = r.ring.desc - BASE + 16 * i;
                const now = mem.bytes.subarray(at, at + 16);
                if (Buffer.compare(now, before.subarray(at, at + 16)) === 0) continue;
                assert.deepEqual(
                  now.subarray(0, 8),
                  before.subarray(at, at + 8),
                  "a used descriptor's address",
                );
                const id = mem.u16(BASE + at + 12);
                const flags = mem.u16(BASE + at + 14);
                assert.ok(id < r.ring.size, `used buffer ID ${id} in a ring of ${r.ring.size}`);
                assert.ok(
                  (flags & BOTH) === 0 || (flags & BOTH) === BOTH,
                  `used flags ${flags.toString(16)}`,
                );
                assert.equal(flags & ~(BOTH | DescFlag.WRITE), 0, "used flags beyond AVAIL/USED/WRITE");
                seen.used++;
              }
            }
            // Nothing else changed: copy the allowed parts over and compare all of RAM.
            for (const [a, b] of allowed) before.set(mem.bytes.subarray(a, b), a);
            assert.equal(Buffer.compare(before, mem.bytes), 0, "memory the device may not write changed");
            assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
            for (const r of rings) {
              try {
                r.takeUsed();
              } catch (e) {
                // Raw entries can make the test driver's own bookkeeping inconsistent: not the device's.
                if (!(e instanceof assert.AssertionError)) throw e;
              }
            }
          }
          if (drv.needsReset()) seen.resets++;
          else seen.clean++;
        }),
        { numRuns: RUNS },
      );
      // The runs exercised both completions and broken rings (not a vacuous property).
      assert.ok(
        seen.used > RUNS / 2 && seen.resets > RUNS / 10 && seen.clean > RUNS / 10,
        JSON.stringify(seen),
      );
    });
  }
});
