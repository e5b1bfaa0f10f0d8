/**
 * Property tests: whatever a driver writes to the registers and the rings, the devices never throw,
 * never touch memory outside guest RAM (guard regions), never write what the driver did not hand them
 * as device-writable, and each request is either completed, failed with an error status, or the
 * device reports DEVICE_NEEDS_RESET.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryBlockBackend } from "../../../src/devices/virtio/blk/backend.js";
import { BlkRequest, BlkStatus, VirtioBlk } from "../../../src/devices/virtio/blk/virtio-blk.js";
import { VirtioConsole } from "../../../src/devices/virtio/console/virtio-console.js";
import type { VirtioDevice } from "../../../src/devices/virtio/device.js";
import { VirtioInput } from "../../../src/devices/virtio/input/virtio-input.js";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { VirtioRng } from "../../../src/devices/virtio/rng/virtio-rng.js";
import { DescFlag } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;
/** RAM layout for the structured tests: rings, indirect tables, readable data, writable data. */
const RINGS = BASE;
const TABLES = BASE + 0x1_0000;
const READABLE = BASE + 0x4_0000;
const WRITABLE = BASE + 0x8_0000;
const DISK = 256 * 1024;
const RUNS = Number(process.env.VIREO_FUZZ_RUNS ?? 150);

type DeviceKind = "blk" | "rng" | "console" | "input";
const KINDS = ["blk", "rng", "console", "input"] as const;

/** The device, and how host input reaches it (console bytes; key presses made of the bytes). */
function makeDevice(
  kind: DeviceKind,
  out: number[] = [],
): { device: VirtioDevice; feed?: (bytes: Uint8Array) => void } {
  switch (kind) {
    case "blk":
      return { device: new VirtioBlk(new MemoryBlockBackend(new Uint8Array(DISK)), { serial: "fuzz" }) };
    case "rng":
      return { device: new VirtioRng({ fill: (d) => d.fill(0x5a) }) };
    case "console": {
      const console = new VirtioConsole({ write: (b) => out.push(b) });
      return { device: console, feed: (bytes) => console.receive(bytes) };
    }
    case "input": {
      const keyboard = new VirtioInput();
      const feed = (bytes: Uint8Array) => {
        if (bytes.length > 0) keyboard.press([...bytes.subarray(0, 3)].map((b) => 1 + (b % 255)));
      };
      return { device: keyboard, feed };
    }
  }
}

/** Addresses the guest might put anywhere: in RAM, at its edges, outside, absurd. */
const wildAddress = fc.oneof(
  fc.integer({ min: BASE, max: BASE + RAM - 1 }),
  fc.constantFrom(
    0,
    BASE - 16,
    BASE - 1,
    BASE + RAM,
    BASE + RAM - 1,
    BASE + RAM - 8,
    2 ** 32,
    2 ** 60,
    2 ** 64 - 16,
  ),
  fc.integer({ min: 0, max: 2 ** 53 }),
);
const wildLength = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 0x2_0000 }),
  fc.constantFrom(0xffff_ffff, 0x8000_0000, RAM, 16),
);

describe("virtio fuzz: register chaos", () => {
  for (const kind of KINDS) {
    it(`${kind}: random register and config accesses, random ring memory`, () => {
      const access = fc.record({
        write: fc.boolean(),
        offset: fc.oneof(
          fc.constantFrom(...Object.values(MmioReg)),
          fc.integer({ min: 0, max: 0x1ff }),
          fc.integer({ min: 0x100, max: 0x180 }),
        ),
        size: fc.constantFrom(1, 2, 4, 4, 4, 8),
        value: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 16 })),
      });
      const step = fc.oneof(
        { weight: 5, arbitrary: access.map((a) => ({ kind: "reg" as const, ...a })) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(fc.integer({ min: 0, max: RAM - 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
            .map(([at, bytes]) => ({ kind: "poke" as const, at, bytes })),
        },
        { weight: 1, arbitrary: fc.constant({ kind: "start" as const }) },
        {
          weight: 1,
          arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ kind: "input" as const, bytes })),
        },
      );
      fc.assert(
        fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
          const mem = new TestMemory(BASE, RAM);
          const { device, feed } = makeDevice(kind);
          const drv = new TestDriver(mem, device);
          const out = new Uint32Array(2);
          for (const s of steps) {
            if (s.kind === "reg") {
              if (s.write) drv.mmio.write(s.offset, s.size, s.value, s.value ^ 0x5555_5555);
              else drv.mmio.read(s.offset, s.size, out);
            } else if (s.kind === "poke") mem.bytes.set(s.bytes, s.at);
            else if (s.kind === "start") {
              try {
                drv.start({ size: 8 });
              } catch (e) {
                // The harness asserts FEATURES_OK; chaos may prevent nothing else.
                if (!(e instanceof assert.AssertionError)) throw e;
              }
            } else feed?.(s.bytes);
          }
          assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
        }),
        { numRuns: RUNS },
      );
    });
  }
});

/** One descriptor as a fuzzer writes it. */
const descriptor = fc.record({
  write: fc.boolean(),
  indirect: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  next: fc.boolean(),
  nextIndex: fc.integer({ min: 0, max: 20 }),
  /** Where the buffer points: the region its direction allows, or anywhere. */
  place: fc.oneof(
    {
      weight: 4,
      arbitrary: fc.integer({ min: 0, max: 0x3_ff00 }).map((o) => ({ region: true as const, offset: o })),
    },
    { weight: 1, arbitrary: wildAddress.map((a) => ({ region: false as const, addr: a })) },
  ),
  len: wildLength,
});

type Desc = typeof descriptor extends fc.Arbitrary<infer T> ? T : never;

/** Writes a descriptor at `at`: writable buffers into WRITABLE, readable into READABLE, tables into TABLES. */
function putDescriptor(mem: TestMemory, at: number, d: Desc): void {
  let addr: number;
  if (!d.place.region) {
    addr = d.place.addr;
    // A driver may hand out any RAM as writable; keep those in WRITABLE so the invariant can be checked.
    if (d.write && addr >= BASE && addr < WRITABLE) addr = WRITABLE + ((addr - BASE) % (WRITABLE - BASE));
  } else if (d.indirect) addr = TABLES + (d.place.offset % 0x2_f000);
  else addr = (d.write ? WRITABLE : READABLE) + (d.place.offset % 0x3_f000);
  const len = d.indirect && d.place.region ? (d.len % 24) * 16 + (d.len % 7 === 0 ? 8 : 0) : d.len;
  mem.set32(at, addr % 2 ** 32);
  mem.set32(at + 4, Math.floor(addr / 2 ** 32) % 2 ** 32);
  mem.set32(at + 8, len);
  const flags =
    (d.write ? DescFlag.WRITE : 0) | (d.indirect ? DescFlag.INDIRECT : 0) | (d.next ? DescFlag.NEXT : 0);
  mem.set16(at + 12, flags);
  mem.set16(at + 14, d.nextIndex);
}

describe("virtio fuzz: malicious rings", () => {
  for (const kind of KINDS) {
    it(`${kind}: never writes what it was not given as device-writable`, () => {
      const scenario = fc.record({
        size: fc.constantFrom(4, 8, 16),
        table: fc.array(descriptor, { minLength: 16, maxLength: 16 }),
        /** Indirect tables: descriptors written at TABLES + 16 * i. */
        indirect: fc.array(descriptor, { minLength: 0, maxLength: 64 }),
        rounds: fc.array(
          fc.record({
            heads: fc.array(fc.integer({ min: 0, max: 18 }), { maxLength: 6 }),
            jump: fc.integer({ min: 0, max: 30 }).map((n) => (n === 0 ? 40 : 0)),
            notify: fc.integer({ min: 0, max: 2 }),
            input: fc.uint8Array({ maxLength: 20 }),
          }),
          { maxLength: 6 },
        ),
        features: fc.subarray([29, 28]),
      });
      fc.assert(
        fc.property(scenario, (sc) => {
          const mem = new TestMemory(BASE, RAM);
          // Readable data and tables hold a known pattern the device must never change.
          for (let i = READABLE - BASE; i < WRITABLE - BASE; i++) mem.bytes[i] = (i * 13) & 0xff;
          const { device, feed } = makeDevice(kind);
          const drv = new TestDriver(mem, device);
          drv.start({ size: sc.size, ringBase: RINGS, features: [32, ...sc.features] });
          sc.indirect.forEach((d, i) => {
            putDescriptor(mem, TABLES + 16 * i, d);
          });
          sc.table.forEach((d, i) => {
            if (i < sc.size) for (const r of drv.rings) putDescriptor(mem, r.ring.desc + 16 * i, d);
          });
          const readOnly = mem.read(TABLES, WRITABLE - TABLES);
          for (const round of sc.rounds) {
            for (const r of drv.rings) {
              for (const h of round.heads) r.publish(h);
              if (round.jump) mem.set16(r.ring.avail + 2, (r.availIdx + round.jump) & 0xffff);
            }
            // The descriptor table and the avail ring are the driver's: the device only reads them.
            const driverArea = (r: (typeof drv.rings)[number]) =>
              mem.read(r.ring.desc, 16 * r.ring.size + 6 + 2 * r.ring.size);
            const before = drv.rings.map(driverArea);
            feed?.(round.input);
            drv.wr(MmioReg.QUEUE_NOTIFY, round.notify);
            drv.rings.forEach((r, i) => {
              assert.deepEqual(driverArea(r), before[i], "descriptor table or avail ring written");
            });
            // Used entries name heads within the queue.
            for (const r of drv.rings) {
              for (const [head] of r.takeUsed()) assert.ok(head < r.ring.size, `used head ${head}`);
            }
          }
          assert.deepEqual(mem.read(TABLES, WRITABLE - TABLES), readOnly, "tables or readable data written");
          assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
        }),
        { numRuns: RUNS },
      );
    });
  }
});

/** A request a (possibly hostile) driver sends, as the model knows it. */
const blkRequest = fc.record({
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(BlkRequest.IN, BlkRequest.OUT) },
    { weight: 1, arbitrary: fc.constantFrom(BlkRequest.FLUSH, BlkRequest.GET_ID, BlkRequest.WRITE_ZEROES) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }).filter((t) => ![0, 1, 4, 8, 11, 13].includes(t)),
    },
  ),
  sector: fc.oneof(fc.integer({ min: 0, max: DISK / 512 - 1 }), fc.integer({ min: 0, max: 2 ** 53 })),
  sectors: fc.integer({ min: 1, max: 8 }),
  split: fc.integer({ min: 1, max: 4 }),
  mutation: fc.oneof(
    { weight: 6, arbitrary: fc.constant("none" as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "partial-sector" as const,
        "data-outside-ram" as const,
        "readable-after-writable" as const,
        "no-status" as const,
        "loop" as const,
        "short-header" as const,
      ),
    },
  ),
});

type BlkFuzzRequest = typeof blkRequest extends fc.Arbitrary<infer T> ? T : never;

/** What the device must answer, derived from the spec's rules (not from the device's code). */
function expectedOutcome(
  rq: BlkFuzzRequest,
  bytes: number,
  writesData: boolean,
  viaIndirect: boolean,
  capacity: number,
): number | "reset" {
  const m = rq.mutation;
  if (m === "no-status") return writesData && bytes > 0 ? BlkStatus.IOERR : "reset";
  if (m === "loop" && !viaIndirect) return "reset";
  if (m === "data-outside-ram" && bytes > 0) return BlkStatus.IOERR;
  if (m === "readable-after-writable" && writesData && bytes > 0) return BlkStatus.IOERR;
  // The readable part must hold the 16-byte header.
  const readable =
    (m === "short-header" ? 12 : 16) + (writesData ? 0 : bytes) + (m === "readable-after-writable" ? 4 : 0);
  if (readable < 16) return BlkStatus.IOERR;
  const payload = readable - 16;
  const inRange = rq.sector + rq.sectors <= capacity;
  switch (rq.type) {
    case BlkRequest.IN:
      return bytes % 512 === 0 && inRange ? BlkStatus.OK : BlkStatus.IOERR;
    case BlkRequest.OUT:
      return payload === 512 * rq.sectors && m !== "short-header" && inRange ? BlkStatus.OK : BlkStatus.IOERR;
    case BlkRequest.FLUSH:
    case BlkRequest.GET_ID:
      return BlkStatus.OK;
    case BlkRequest.WRITE_ZEROES:
      return payload === 16 && m !== "short-header" && inRange ? BlkStatus.OK : BlkStatus.IOERR;
    default:
      return BlkStatus.UNSUPP;
  }
}

describe("virtio fuzz: virtio-blk requests against a model disk", () => {
  for (const format of ["split", "packed"] as const)
    it(`${format} rings: completes valid requests exactly, fails bad ones with IOERR/UNSUPP, or needs a reset`, () => {
      fc.assert(
        fc.property(fc.array(blkRequest, { minLength: 1, maxLength: 12 }), fc.boolean(), (reqs, indirect) => {
          const mem = new TestMemory(BASE, RAM);
          const disk = new Uint8Array(DISK);
          for (let i = 0; i < DISK; i++) disk[i] = (i * 31 + (i >> 9)) & 0xff;
          const model = disk.slice();
          const drv = new TestDriver(mem, new VirtioBlk(new MemoryBlockBackend(disk), { serial: "model" }), {
            format,
          });
          drv.start({ size: 16, ringBase: RINGS, features: indirect ? [32, 28, 29] : [32, 29] });
          const ring = drv.rings[0];
          assert.ok(ring);
          const capacity = DISK / 512;
          for (const [n, rq] of reqs.entries()) {
            const hdr = READABLE + 0x1000 * n;
            const data =
              (rq.type === BlkRequest.IN || rq.type === BlkRequest.GET_ID ? WRITABLE : READABLE + 0x2_0000) +
              0x2000 * n;
            const status = WRITABLE + 0x3_0000 + n;
            mem.set32(hdr, rq.type);
            mem.set32(hdr + 4, 0);
            mem.set64(hdr + 8, rq.sector);
            const writesData = rq.type === BlkRequest.IN || rq.type === BlkRequest.GET_ID;
            let bytes = rq.type === BlkRequest.GET_ID ? 20 : 512 * rq.sectors;
            if (rq.type === BlkRequest.WRITE_ZEROES) {
              mem.set64(data, rq.sector);
              mem.set32(data + 8, rq.sectors);
              mem.set32(data + 12, 0);
              bytes = 16;
            } else if (rq.type === BlkRequest.OUT) {
              for (let i = 0; i < bytes; i++) mem.bytes[data - BASE + i] = (i * 7 + n) & 0xff;
            }
            if (rq.type === BlkRequest.FLUSH) bytes = 0;
            if (rq.mutation === "partial-sector" && bytes >= 512) bytes -= 100;
            const bufs: { addr: number; len: number; write?: boolean }[] = [
              { addr: hdr, len: rq.mutation === "short-header" ? 12 : 16 },
            ];
            const piece = Math.ceil(bytes / rq.split);
            for (let off = 0; off < bytes; off += piece) {
              bufs.push({ addr: data + off, len: Math.min(piece, bytes - off), write: writesData });
            }
            if (rq.mutation === "data-outside-ram" && bufs.length > 1)
              (bufs[1] as { addr: number }).addr = BASE + RAM - 1;
            if (rq.mutation === "readable-after-writable") bufs.push({ addr: hdr, len: 4 });
            mem.write(status, [0xee]);
            if (rq.mutation !== "no-status") bufs.push({ addr: status, len: 1, write: true });
            let head: number;
            if (indirect && n % 2 === 1) head = ring.indirectChain(TABLES + 0x400 * n, bufs);
            else head = ring.chain(bufs);
            if (rq.mutation === "loop" && !(indirect && n % 2 === 1)) ring.loop(head);
            ring.publish(head);
            drv.wr(MmioReg.QUEUE_NOTIFY, 0);

            const done = ring.takeUsed();
            const want = expectedOutcome(rq, bytes, writesData, indirect && n % 2 === 1, capacity);
            if (want === "reset") {
              assert.ok(drv.needsReset(), `needs reset after ${JSON.stringify(rq)}`);
              assert.deepEqual(done, []);
              break;
            }
            assert.equal(drv.needsReset(), false, `no reset for ${JSON.stringify(rq)}`);
            assert.equal(done.length, 1, `request ${n} completed`);
            // Without a status descriptor, the last writable byte (end of the data) is the status.
            const st = mem.u8(rq.mutation === "no-status" ? data + bytes - 1 : status);
            assert.equal(st, want, `status of ${JSON.stringify(rq)}`);
            if (st !== BlkStatus.OK) continue;
            const at = rq.sector * 512;
            if (rq.type === BlkRequest.IN) {
              assert.deepEqual(mem.read(data, bytes), model.subarray(at, at + bytes), "data read");
              assert.equal(done[0]?.[1], bytes + 1);
            } else if (rq.type === BlkRequest.OUT) {
              model.set(mem.read(data, bytes), at);
            } else if (rq.type === BlkRequest.WRITE_ZEROES) {
              model.fill(0, at, at + 512 * rq.sectors);
            }
            assert.deepEqual(disk, model, "disk contents");
          }
          assert.ok(mem.guardsIntact());
        }),
        { numRuns: RUNS },
      );
    });
});
