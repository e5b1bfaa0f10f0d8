import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BALLOON_PAGE,
  CountingReclaimer,
  type PageReclaimer,
} from "../../../src/devices/virtio/balloon/reclaimer.js";
import {
  BalloonConfig,
  BalloonFeature,
  BalloonQueue,
  MAX_PFNS_PER_REQUEST,
  VirtioBalloon,
} from "../../../src/devices/virtio/balloon/virtio-balloon.js";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { DescFlag, Feature, Interrupt, Status } from "../../../src/devices/virtio/spec.js";
import { VirtBoard } from "../../../src/machine/riscv-virt/board.js";
import { describe, it } from "../../support/test.js";
import { align, driverRing, layoutRing, ringEnd, TestDriver, TestMemory, type TestRing } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 4 << 20;
const PAGES = RAM / BALLOON_PAGE;
const FIRST_PFN = BASE / BALLOON_PAGE;
/** Where PFN arrays and statistics buffers go; pages from PAGE0 on are what the tests inflate. */
const DATA = BASE + 0x10_0000;
const PAGE0 = (0x20_0000 / BALLOON_PAGE) | 0;
const RUNS = Number(process.env.VIREO_FUZZ_RUNS ?? 150);

/** Records every range it is given and zero-fills it, as madvise(MADV_DONTNEED) leaves it. */
class RecordingReclaimer implements PageReclaimer {
  readonly kind = "test";
  readonly ranges: [number, number][] = [];
  constructor(
    private readonly mem: TestMemory | null = null,
    private readonly zero = true,
  ) {}
  reclaim(offset: number, length: number): number {
    assert.equal(offset % BALLOON_PAGE, 0, "page-aligned offset");
    assert.equal(length % BALLOON_PAGE, 0, "whole pages");
    assert.ok(length > 0 && offset >= 0 && offset + length <= RAM, `[${offset}, +${length}) inside RAM`);
    this.ranges.push([offset, length]);
    if (this.zero) this.mem?.bytes.fill(0, offset, offset + length);
    return length;
  }
  /** Released page indexes, in call order. */
  pages(): number[] {
    return this.ranges.flatMap(([o, l]) =>
      Array.from({ length: l / BALLOON_PAGE }, (_, i) => o / BALLOON_PAGE + i),
    );
  }
}

function setup(options: { features?: number[]; zero?: boolean } = {}) {
  const mem = new TestMemory(BASE, RAM);
  const reclaimer = new RecordingReclaimer(mem, options.zero ?? true);
  const balloon = new VirtioBalloon(reclaimer);
  const drv = new TestDriver(mem, balloon);
  drv.start(options.features ? { features: options.features } : {});
  return { mem, reclaimer, balloon, drv };
}

/** Writes `pfns` (le32) at `at` and submits them on queue q as one buffer (or `pieces` buffers). */
function sendPfns(drv: TestDriver, q: number, pfns: number[], at = DATA, pieces = 1): number {
  pfns.forEach((p, i) => {
    drv.mem.set32(at + 4 * i, p);
  });
  const bytes = 4 * pfns.length;
  const step = Math.max(1, Math.ceil(bytes / pieces));
  const bufs = [];
  for (let off = 0; off < bytes || bufs.length === 0; off += step)
    bufs.push({ addr: at + off, len: Math.min(step, bytes - off) });
  return drv.submit(q, bufs);
}

const pfn = (page: number) => FIRST_PFN + page;

/** One statistics buffer: [tag, value] entries. */
function writeStats(mem: TestMemory, at: number, entries: [number, number][]): number {
  entries.forEach(([tag, value], i) => {
    mem.set16(at + 10 * i, tag);
    mem.set32(at + 10 * i + 2, value % 2 ** 32);
    mem.set32(at + 10 * i + 6, Math.floor(value / 2 ** 32));
  });
  return 10 * entries.length;
}

describe("virtio-balloon: identity and config", () => {
  it("is device 5 with three queues; offers STATS_VQ, not DEFLATE_ON_OOM or MUST_TELL_HOST", () => {
    const { drv } = setup();
    assert.equal(drv.rd(MmioReg.DEVICE_ID), 5);
    const bits = drv.offered();
    assert.ok(bits.has(BalloonFeature.STATS_VQ));
    for (const b of [0, 2, 3, 4, 5]) assert.ok(!bits.has(b), `feature ${b} not offered`);
    for (let q = 0; q < 3; q++) {
      drv.wr(MmioReg.QUEUE_SEL, q);
      assert.ok(drv.rd(MmioReg.QUEUE_SIZE_MAX) > 0, `queue ${q}`);
    }
    drv.wr(MmioReg.QUEUE_SEL, 3);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE_MAX), 0, "no free-page or reporting queue");
  });

  it("setTarget sets num_pages and sends a configuration change interrupt once the driver is up", () => {
    const mem = new TestMemory(BASE, RAM);
    const balloon = new VirtioBalloon(new CountingReclaimer());
    balloon.setTarget(5);
    const drv = new TestDriver(mem, balloon);
    assert.equal(drv.config(BalloonConfig.NUM_PAGES, 4), 5, "a target set before attach");
    const gen = drv.rd(MmioReg.CONFIG_GENERATION);
    balloon.setTarget(7);
    assert.equal(drv.line.level, false, "no interrupt before DRIVER_OK");
    assert.notEqual(drv.rd(MmioReg.CONFIG_GENERATION), gen);
    drv.start();
    balloon.setTargetBytes(64 * BALLOON_PAGE + 1);
    assert.equal(balloon.target, 65, "bytes round up to pages");
    assert.equal(balloon.targetBytes, 65 * BALLOON_PAGE);
    assert.equal(drv.config(BalloonConfig.NUM_PAGES, 4), 65);
    assert.equal(drv.ack(), Interrupt.CONFIG_CHANGE);
    balloon.setTarget(65);
    assert.equal(drv.line.level, false, "the same target: no interrupt");
    for (const bad of [-1, 1.5, PAGES + 1, Number.NaN])
      assert.throws(() => balloon.setTarget(bad), RangeError);
    balloon.setTarget(PAGES);
    assert.throws(() => balloon.setTargetBytes(-4096), RangeError);
  });

  it("the driver writes actual (any access size); writes to num_pages are ignored", () => {
    const { drv, balloon } = setup();
    balloon.setTarget(300);
    assert.ok(drv.mmio.write(0x100 + BalloonConfig.ACTUAL, 4, 0x0001_0203, 0));
    assert.equal(balloon.actual, 0x0001_0203);
    assert.ok(drv.mmio.write(0x100 + BalloonConfig.ACTUAL + 2, 2, 0, 0));
    assert.equal(balloon.actual, 0x203);
    assert.ok(drv.mmio.write(0x100 + BalloonConfig.ACTUAL, 1, 0x99, 0));
    assert.equal(balloon.actual, 0x299);
    assert.equal(balloon.actualBytes, 0x299 * BALLOON_PAGE);
    assert.ok(drv.mmio.write(0x100 + BalloonConfig.NUM_PAGES, 4, 1, 0));
    assert.ok(drv.mmio.write(0x100, 8, 2, 17));
    assert.equal(balloon.target, 300, "num_pages is the host's");
    assert.equal(balloon.actual, 17, "the upper half of an 8-byte write is actual");
    assert.equal(drv.config(BalloonConfig.ACTUAL, 4), 17);
    assert.equal(drv.config(8, 4), 0, "nothing beyond actual");
  });

  it("onActivate runs when the driver sets DRIVER_OK", () => {
    const mem = new TestMemory(BASE, RAM);
    const balloon = new VirtioBalloon(new CountingReclaimer());
    let calls = 0;
    balloon.onActivate = () => {
      calls++;
      balloon.setTarget(10);
    };
    const drv = new TestDriver(mem, balloon);
    drv.start();
    assert.equal(calls, 1);
    assert.equal(balloon.target, 10);
    assert.equal(drv.ack(), Interrupt.CONFIG_CHANGE);
  });
});

describe("virtio-balloon: inflate and deflate", () => {
  it("inflated pages go to the reclaimer in runs, read zero, and count; the buffer is used with length 0", () => {
    const { drv, balloon, reclaimer, mem } = setup();
    mem.bytes.fill(0x77, PAGE0 * BALLOON_PAGE, (PAGE0 + 8) * BALLOON_PAGE);
    const pages = [PAGE0 + 3, PAGE0, PAGE0 + 1, PAGE0 + 5, PAGE0 + 2, PAGE0 + 1];
    const head = sendPfns(drv, BalloonQueue.INFLATE, pages.map(pfn));
    assert.deepEqual(drv.rings[0]?.takeUsed(), [[head, 0]]);
    assert.equal(drv.ack(), Interrupt.USED_BUFFER);
    assert.deepEqual(reclaimer.ranges, [
      [PAGE0 * BALLOON_PAGE, 4 * BALLOON_PAGE],
      [(PAGE0 + 5) * BALLOON_PAGE, BALLOON_PAGE],
    ]);
    assert.equal(balloon.inflatedPages, 5, "a page given twice counts once");
    const at = (p: number) => p * BALLOON_PAGE;
    assert.ok(mem.bytes.subarray(at(PAGE0), at(PAGE0 + 4)).every((b) => b === 0));
    assert.ok(
      mem.bytes.subarray(at(PAGE0 + 4), at(PAGE0 + 5)).every((b) => b === 0x77),
      "page 4 untouched",
    );
    // Inflating pages already in the balloon releases nothing more.
    sendPfns(drv, BalloonQueue.INFLATE, [pfn(PAGE0), pfn(PAGE0 + 6)]);
    assert.deepEqual(reclaimer.ranges.at(-1), [at(PAGE0 + 6), BALLOON_PAGE]);
    const c = balloon.counters;
    assert.equal(c.inflateRequests, 2);
    assert.equal(c.inflatedPages, 6);
    assert.equal(c.reclaimedBytes, 6 * BALLOON_PAGE);
    assert.equal(c.ignoredPfns, 0);
  });

  it("PFNs outside RAM are ignored and counted; a trailing partial PFN is ignored", () => {
    const { drv, balloon, reclaimer, mem } = setup();
    const bad = [0, FIRST_PFN - 1, FIRST_PFN + PAGES, 0xffff_ffff, FIRST_PFN * 2];
    sendPfns(drv, BalloonQueue.INFLATE, [...bad, pfn(PAGE0), pfn(PAGES - 1)]);
    assert.equal(balloon.counters.ignoredPfns, bad.length);
    assert.equal(balloon.inflatedPages, 2);
    assert.deepEqual(reclaimer.pages(), [PAGE0, PAGES - 1]);
    // Seven bytes: one PFN and three stray bytes.
    mem.set32(DATA, pfn(PAGE0 + 1));
    drv.submit(BalloonQueue.INFLATE, [{ addr: DATA, len: 7 }]);
    assert.equal(balloon.inflatedPages, 3);
    assert.equal(balloon.counters.ignoredPfns, bad.length);
    assert.ok(mem.guardsIntact());
  });

  it("a PFN array split across buffers, even mid-PFN, reads as one", () => {
    const { drv, balloon, reclaimer } = setup();
    const pages = Array.from({ length: 40 }, (_, i) => PAGE0 + 2 * i);
    sendPfns(drv, BalloonQueue.INFLATE, pages.map(pfn), DATA, 7);
    assert.equal(balloon.inflatedPages, 40);
    assert.deepEqual(reclaimer.pages(), pages);
  });

  it("at most MAX_PFNS_PER_REQUEST PFNs of one buffer are used; the rest are counted as ignored", () => {
    const mem = new TestMemory(BASE, 128 << 20);
    const reclaimer = new CountingReclaimer();
    const balloon = new VirtioBalloon(reclaimer);
    const drv = new TestDriver(mem, balloon);
    drv.start();
    const n = MAX_PFNS_PER_REQUEST + 10;
    for (let i = 0; i < n; i++) mem.set32(DATA + 4 * i, FIRST_PFN + 0x1000 + i);
    drv.submit(BalloonQueue.INFLATE, [{ addr: DATA, len: 4 * n }]);
    assert.equal(balloon.inflatedPages, MAX_PFNS_PER_REQUEST);
    assert.equal(balloon.counters.ignoredPfns, 10);
    assert.equal(reclaimer.pages, MAX_PFNS_PER_REQUEST);
    assert.equal(reclaimer.calls, 1, "one contiguous run, one call");
  });

  it("deflate takes pages out of the balloon; pages not in it and invalid PFNs change nothing", () => {
    const { drv, balloon, reclaimer } = setup();
    sendPfns(drv, BalloonQueue.INFLATE, [PAGE0, PAGE0 + 1, PAGE0 + 2].map(pfn));
    const head = sendPfns(drv, BalloonQueue.DEFLATE, [pfn(PAGE0 + 1), pfn(PAGE0 + 9), 3, pfn(PAGE0 + 1)]);
    assert.deepEqual(drv.rings[1]?.takeUsed(), [[head, 0]]);
    assert.equal(balloon.inflatedPages, 2);
    const c = balloon.counters;
    assert.equal(c.deflatedPages, 1);
    assert.equal(c.deflateRequests, 1);
    assert.equal(c.ignoredPfns, 1);
    // A deflated page can be inflated (and released) again.
    sendPfns(drv, BalloonQueue.INFLATE, [pfn(PAGE0 + 1)]);
    assert.equal(balloon.inflatedPages, 3);
    assert.deepEqual(reclaimer.pages(), [PAGE0, PAGE0 + 1, PAGE0 + 2, PAGE0 + 1]);
  });

  it("a buffer outside RAM or a device-writable one before readable data stops the queue", () => {
    for (const bufs of [
      [{ addr: BASE + RAM - 4, len: 8 }],
      [
        { addr: DATA, len: 4, write: true },
        { addr: DATA + 64, len: 4 },
      ],
    ]) {
      const { drv, balloon, mem } = setup();
      drv.submit(BalloonQueue.INFLATE, bufs);
      assert.ok(drv.needsReset());
      assert.equal(balloon.inflatedPages, 0);
      assert.ok(mem.guardsIntact());
    }
  });

  it("a device reset empties the balloon and zeroes actual; the target stays; the peaks remain", () => {
    const { drv, balloon } = setup();
    balloon.setTarget(3);
    sendPfns(drv, BalloonQueue.INFLATE, [PAGE0, PAGE0 + 1, PAGE0 + 2].map(pfn));
    drv.mmio.write(0x100 + BalloonConfig.ACTUAL, 4, 3, 0);
    const resets = balloon.counters.resets;
    drv.wr(MmioReg.STATUS, 0);
    assert.equal(balloon.inflatedPages, 0);
    assert.equal(balloon.actual, 0);
    assert.equal(balloon.target, 3);
    // What happened during the run survives the reset (a guest powering off resets its devices).
    const c = balloon.counters;
    assert.equal(c.peakInflatedPages, 3);
    assert.equal(c.peakActual, 3);
    assert.equal(c.resets, resets + 1);
  });

  it("peak actual counts whole writes only: a byte-wise write passes through no false peak", () => {
    const { drv, balloon } = setup();
    drv.mmio.write(0x100 + BalloonConfig.ACTUAL, 4, 0x4000, 0);
    // 0x4000 -> 0x3fff a byte at a time passes through 0x40ff on the way.
    for (let i = 0; i < 4; i++)
      drv.mmio.write(0x100 + BalloonConfig.ACTUAL + i, 1, (0x3fff >> (8 * i)) & 0xff, 0);
    assert.equal(balloon.actual, 0x3fff);
    assert.equal(balloon.counters.peakActual, 0x4000);
    // Deflating lowers the current count, not the peak.
    sendPfns(drv, BalloonQueue.INFLATE, [PAGE0, PAGE0 + 1].map(pfn));
    sendPfns(drv, BalloonQueue.DEFLATE, [PAGE0].map(pfn));
    assert.equal(balloon.inflatedPages, 1);
    assert.equal(balloon.counters.peakInflatedPages, 2);
  });
});

describe("virtio-balloon: statistics", () => {
  /** Bring-up as Linux does it: queues ready and the first stats buffer posted before DRIVER_OK. */
  function linuxLikeStart(mem: TestMemory, balloon: VirtioBalloon, stats: [number, number][]) {
    const drv = new TestDriver(mem, balloon);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    drv.negotiate([Feature.VERSION_1, Feature.RING_EVENT_IDX, BalloonFeature.STATS_VQ]);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    let at = BASE;
    for (let q = 0; q < 3; q++) {
      const ring = layoutRing(align(at, 4096), 16, drv.negotiated);
      drv.setupQueue(q, ring);
      drv.rings.push(driverRing(mem, ring, true));
      at = ringEnd(ring);
    }
    const len = writeStats(mem, DATA, stats);
    const statsq = drv.rings[2] as TestRing;
    const head = statsq.chain([{ addr: DATA, len }]);
    statsq.publish(head);
    drv.wr(MmioReg.QUEUE_NOTIFY, 2);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    return { drv, statsq, head };
  }

  it("reads the first buffer at DRIVER_OK, returns it on request, and reads the refilled one", () => {
    const mem = new TestMemory(BASE, RAM);
    const balloon = new VirtioBalloon(new CountingReclaimer());
    let updates = 0;
    balloon.onStats = () => updates++;
    assert.deepEqual(balloon.stats(), { updates: 0 });
    assert.equal(balloon.requestStats(), false, "nothing held yet");
    const { drv, statsq, head } = linuxLikeStart(mem, balloon, [
      [5, 256 * 2 ** 20],
      [4, 100 * 2 ** 20],
      [2, 7],
      [99, 1234],
      [6, 2 ** 40 + 5],
    ]);
    assert.deepEqual(balloon.stats(), {
      updates: 1,
      totalMemory: 256 * 2 ** 20,
      freeMemory: 100 * 2 ** 20,
      majorFaults: 7,
      availableMemory: 2 ** 40 + 5,
    });
    assert.equal(updates, 1);
    assert.deepEqual(statsq.takeUsed(), [], "the device holds the buffer");
    drv.ack();
    assert.equal(balloon.requestStats(), true);
    assert.deepEqual(statsq.takeUsed(), [[head, 0]]);
    assert.equal(drv.ack(), Interrupt.USED_BUFFER);
    assert.equal(balloon.requestStats(), false, "one request at a time");
    // The driver answers with fresh values (same tags, any order) and a stray partial entry.
    const len = writeStats(mem, DATA + 0x100, [
      [4, 90 * 2 ** 20],
      [5, 256 * 2 ** 20],
      [2, 8],
      [6, 3],
    ]);
    drv.submit(2, [{ addr: DATA + 0x100, len: len + 4 }]);
    assert.deepEqual(balloon.stats(), {
      updates: 2,
      freeMemory: 90 * 2 ** 20,
      totalMemory: 256 * 2 ** 20,
      majorFaults: 8,
      availableMemory: 3,
    });
    assert.equal(updates, 2);
    assert.equal(balloon.requestStats(), true);
  });

  it("every tag Linux sends (0..15) has a name", () => {
    const { drv, balloon, mem } = setup();
    const entries: [number, number][] = Array.from({ length: 16 }, (_, t) => [t, t + 1]);
    drv.submit(2, [{ addr: DATA, len: writeStats(mem, DATA, entries) }]);
    const s = balloon.stats();
    assert.equal(Object.keys(s).length, 17);
    assert.equal(s.swapIn, 1);
    assert.equal(s.directReclaims, 16);
    assert.equal(s.oomKills, 11);
  });

  it("a second buffer while one is held sends the older one back", () => {
    const { drv, balloon, mem } = setup();
    const a = drv.submit(2, [{ addr: DATA, len: writeStats(mem, DATA, [[4, 1]]) }]);
    const b = drv.submit(2, [{ addr: DATA + 0x100, len: writeStats(mem, DATA + 0x100, [[4, 2]]) }]);
    assert.deepEqual(drv.rings[2]?.takeUsed(), [[a, 0]]);
    assert.equal(balloon.stats().freeMemory, 2);
    assert.equal(balloon.requestStats(), true);
    assert.deepEqual(drv.rings[2]?.takeUsed(), [[b, 0]]);
  });

  it("without STATS_VQ the statistics queue is not used", () => {
    const { drv, balloon, mem } = setup({ features: [Feature.VERSION_1] });
    drv.submit(2, [{ addr: DATA, len: writeStats(mem, DATA, [[4, 1]]) }]);
    assert.deepEqual(balloon.stats(), { updates: 0 });
    assert.equal(balloon.requestStats(), false);
  });

  it("a reset or a queue reset drops the held buffer", () => {
    const { drv, balloon, mem } = setup();
    drv.submit(2, [{ addr: DATA, len: writeStats(mem, DATA, [[4, 1]]) }]);
    drv.wr(MmioReg.QUEUE_SEL, 2);
    drv.wr(MmioReg.QUEUE_RESET, 1);
    assert.equal(balloon.requestStats(), false);
    assert.equal(balloon.stats().freeMemory, 1, "the last values stay readable");
  });
});

describe("virtio-balloon: snapshots and the board", () => {
  it("round-trips through JSON: target, actual, pages, statistics, the held buffer", () => {
    const { drv, balloon, mem } = setup();
    balloon.setTarget(9);
    sendPfns(drv, BalloonQueue.INFLATE, [PAGE0, PAGE0 + 1, PAGE0 + 7, 5].map(pfn));
    drv.mmio.write(0x100 + BalloonConfig.ACTUAL, 4, 3, 0);
    const statsHead = drv.submit(2, [{ addr: DATA + 0x200, len: writeStats(mem, DATA + 0x200, [[5, 42]]) }]);
    const state = JSON.parse(JSON.stringify(drv.mmio.snapshot()));
    const reclaimer2 = new RecordingReclaimer(null);
    const balloon2 = new VirtioBalloon(reclaimer2);
    const drv2 = new TestDriver(mem, balloon2);
    drv2.mmio.restore(state);
    assert.equal(balloon2.target, 9);
    assert.equal(balloon2.actual, 3);
    assert.equal(balloon2.inflatedPages, 4);
    assert.deepEqual(reclaimer2.pages(), [5, PAGE0, PAGE0 + 1, PAGE0 + 7], "released again");
    assert.deepEqual(balloon2.stats(), { updates: 1, totalMemory: 42 });
    // The counters carry over; releasing the pages again adds to reclaimedBytes.
    assert.deepEqual(balloon2.counters, { ...balloon.counters, reclaimedBytes: 8 * BALLOON_PAGE });
    assert.equal(balloon2.requestStats(), true, "the held buffer was found again");
    assert.deepEqual(drv.rings[2]?.takeUsed(), [[statsHead, 0]]);
    const device = (state as { device: Record<string, unknown> }).device;
    for (const bad of [
      { ...device, version: 2 },
      { ...device, inflated: [PAGES - 1, 2] },
      { ...device, inflated: [1] },
      { ...device, numPages: -1 },
      { ...device, stats: { nonsense: 1 } },
      { ...device, counters: {} },
    ]) {
      assert.throws(() => balloon2.restore(bad), /virtio-balloon snapshot/);
    }
    // A version-1 record written before the peak counters existed still loads; they start at 0.
    const counters = { ...(device.counters as Record<string, number>) };
    delete counters.peakActual;
    delete counters.peakInflatedPages;
    delete counters.resets;
    balloon2.restore({ ...device, counters });
    assert.equal(balloon2.counters.peakActual, 0);
    assert.equal(balloon2.counters.resets, 0);
    assert.throws(
      () => balloon2.restore({ ...device, counters: { ...counters, resets: -1 } }),
      /bad counters/,
    );
  });

  it("VirtBoard.balloon finds the attached balloon", () => {
    const board = new VirtBoard({ memory: 16 << 20, cpus: 1, console: { write() {} } });
    assert.equal(board.balloon, null);
    const balloon = new VirtioBalloon(new CountingReclaimer());
    board.virtio.attach(balloon);
    assert.equal(board.balloon, balloon);
    assert.throws(() => balloon.setTarget((16 << 20) / BALLOON_PAGE + 1), RangeError);
  });
});

describe("virtio-balloon fuzz", () => {
  it("random register accesses, ring memory and host calls: no throw, nothing outside RAM", () => {
    const step = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant("reg" as const),
          write: fc.boolean(),
          offset: fc.oneof(
            fc.constantFrom(...Object.values(MmioReg)),
            fc.integer({ min: 0x100, max: 0x10c }),
          ),
          size: fc.constantFrom(1, 2, 4, 4, 8),
          value: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 8 })),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("poke" as const),
          at: fc.integer({ min: 0, max: 0x1_0000 }),
          words: fc.array(
            fc.oneof(
              fc.integer({ min: 0, max: 0xffff_ffff }),
              fc.integer({ min: FIRST_PFN, max: FIRST_PFN + PAGES + 2 }),
            ),
            { minLength: 1, maxLength: 16 },
          ),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("start" as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant("target" as const),
          pages: fc.integer({ min: 0, max: PAGES }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("stats" as const) }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const mem = new TestMemory(BASE, RAM);
        const balloon = new VirtioBalloon(new RecordingReclaimer(mem));
        const drv = new TestDriver(mem, balloon);
        const out = new Uint32Array(2);
        for (const s of steps) {
          if (s.kind === "reg") {
            if (s.write) drv.mmio.write(s.offset, s.size, s.value, s.value ^ 0x5555_5555);
            else drv.mmio.read(s.offset, s.size, out);
          } else if (s.kind === "poke") {
            s.words.forEach((w, i) => {
              mem.set32(BASE + ((s.at + 4 * i) & ~3), w);
            });
          } else if (s.kind === "start") {
            try {
              drv.start({ size: 8 });
            } catch (e) {
              // The harness asserts FEATURES_OK; chaos may prevent nothing else.
              if (!(e instanceof assert.AssertionError)) throw e;
            }
          } else if (s.kind === "target") balloon.setTarget(s.pages);
          else balloon.requestStats();
          assert.ok(balloon.inflatedPages >= 0 && balloon.inflatedPages <= PAGES);
        }
        assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
      }),
      { numRuns: RUNS },
    );
  });

  it("malicious rings: never writes the rings' driver side or readable data, reclaims only inside RAM", () => {
    const desc = fc.record({
      addr: fc.oneof(
        fc.integer({ min: DATA, max: DATA + 0x1000 }),
        fc.constantFrom(0, BASE - 4, BASE + RAM - 4, BASE + RAM, 2 ** 40),
        fc.integer({ min: BASE, max: BASE + RAM }),
      ),
      len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(0xffff_ffff, 4096, RAM)),
      flags: fc.integer({ min: 0, max: 7 }),
      next: fc.integer({ min: 0, max: 10 }),
    });
    const scenario = fc.record({
      table: fc.array(desc, { minLength: 8, maxLength: 8 }),
      pfns: fc.array(
        fc.oneof(
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.integer({ min: FIRST_PFN, max: FIRST_PFN + PAGES }),
        ),
        { maxLength: 64 },
      ),
      rounds: fc.array(
        fc.record({
          heads: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 4 }),
          queue: fc.integer({ min: 0, max: 3 }),
          ask: fc.boolean(),
        }),
        { maxLength: 8 },
      ),
      features: fc.subarray([Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX, BalloonFeature.STATS_VQ]),
    });
    fc.assert(
      fc.property(scenario, (sc) => {
        const mem = new TestMemory(BASE, RAM);
        // The device may zero released pages (the spec allows it), so check rings with a reclaimer that does not.
        const reclaimer = new RecordingReclaimer(mem, false);
        const balloon = new VirtioBalloon(reclaimer);
        // Split rings written by hand (the packed ring fuzz test is packed-fuzz.test.ts).
        const drv = new TestDriver(mem, balloon, { format: "split" });
        drv.start({ size: 8, features: [Feature.VERSION_1, ...sc.features] });
        sc.pfns.forEach((p, i) => {
          mem.set32(DATA + 4 * i, p);
        });
        for (const r of drv.rings) {
          sc.table.forEach((d, i) => {
            r.desc(i, d.addr, d.len, d.flags & (DescFlag.NEXT | DescFlag.WRITE | DescFlag.INDIRECT), d.next);
          });
        }
        const before = mem.read(DATA, 0x2000);
        for (const round of sc.rounds) {
          const r = drv.rings[round.queue % 3] as TestRing;
          for (const h of round.heads) r.publish(h);
          const driverSide = drv.rings.map((x) => mem.read(x.ring.desc, 16 * 8 + 6 + 2 * 8));
          drv.wr(MmioReg.QUEUE_NOTIFY, round.queue);
          if (round.ask) balloon.requestStats();
          drv.rings.forEach((x, i) => {
            assert.deepEqual(mem.read(x.ring.desc, 16 * 8 + 6 + 2 * 8), driverSide[i]);
            for (const [head, len] of x.takeUsed()) {
              assert.ok(head < 8);
              assert.equal(len, 0, "the balloon never writes into buffers");
            }
          });
        }
        assert.deepEqual(mem.read(DATA, 0x2000), before, "buffers are only read");
        assert.ok(balloon.inflatedPages <= PAGES);
        assert.ok(mem.guardsIntact());
      }),
      { numRuns: RUNS },
    );
  });

  it("inflate/deflate sequences match a model set; exactly the newly inflated pages are released", () => {
    const request = fc.record({
      inflate: fc.boolean(),
      pfns: fc.array(
        fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 0, max: 63 }).map((i) => FIRST_PFN + PAGE0 + i) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
          {
            weight: 1,
            arbitrary: fc.constantFrom(FIRST_PFN - 1, FIRST_PFN + PAGES, FIRST_PFN + PAGES - 1, FIRST_PFN),
          },
        ),
        { maxLength: 40 },
      ),
      pieces: fc.integer({ min: 1, max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 12 }), (reqs) => {
        // Not zeroing: PFNs may name the rings' own pages.
        const { drv, balloon, reclaimer, mem } = setup({ zero: false });
        const model = new Set<number>();
        let ignored = 0;
        const released: number[] = [];
        for (const rq of reqs) {
          for (const p of rq.pfns) {
            const page = p - FIRST_PFN;
            if (page < 0 || page >= PAGES) ignored++;
            else if (rq.inflate && !model.has(page)) {
              model.add(page);
              released.push(page);
            } else if (!rq.inflate) model.delete(page);
          }
          sendPfns(drv, rq.inflate ? 0 : 1, rq.pfns, DATA, rq.pieces);
          assert.equal(balloon.inflatedPages, model.size);
          assert.equal(balloon.counters.ignoredPfns, ignored);
        }
        assert.deepEqual(
          reclaimer.pages().sort((a, b) => a - b),
          released.sort((a, b) => a - b),
        );
        assert.equal(drv.needsReset(), false);
        assert.ok(mem.guardsIntact());
      }),
      { numRuns: RUNS },
    );
  });
});
