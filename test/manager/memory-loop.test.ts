/**
 * The memory governor's loop against fake guests and a fake host: a guest's balloon follows its target
 * when the test lets it (`follow`), its free memory shrinks by what the balloon holds, and the host gets
 * back what the balloons hold (available = base − pressure + Σ actual), as a host whose ballooned pages
 * were resident does.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parseWatermark } from "../../src/cli/daemon.js";
import type { BalloonPoll } from "../../src/manager/balloon.js";
import type { MemoryMode } from "../../src/manager/scheduler/memory-governor.js";
import {
  GIVE_BACK_MARGIN,
  type GovernedVm,
  GUEST_FREE_KEPT,
  hostMemAvailable,
  type MemoryDecision,
  MemoryLoop,
} from "../../src/manager/scheduler/memory-loop.js";
import { UserError } from "../../src/util/errors.js";
import { cli } from "../api/support.js";
import { describe, it } from "../support/test.js";

const MiB = 2 ** 20;

class FakeGuest implements GovernedVm {
  target = 0;
  actual = 0;
  polls = 0;
  /** A client's target: the balloon starts there and the governor never goes below it. */
  floor = 0;
  constructor(
    readonly name: string,
    readonly memory: number,
    /** What the guest's programs use (never free). */
    readonly used: number,
    readonly mode: MemoryMode = "overcommit",
    readonly weight = 100,
    /** False: the guest sends no statistics. */
    readonly reports = true,
    readonly reservation = 0,
  ) {}
  async poll(): Promise<BalloonPoll> {
    this.polls++;
    const figures = {
      targetBytes: this.target,
      actualBytes: this.actual,
      inflatedBytes: this.actual,
      peakActualBytes: 0,
      peakInflatedBytes: 0,
      reclaimedBytes: 0,
      resets: 0,
      reclaimer: "counting",
    };
    const free = this.memory - this.used - this.actual;
    return { figures, guest: this.reports ? { updates: 1, freeMemory: free } : { updates: 0 } };
  }
  async setTarget(bytes: number): Promise<void> {
    this.target = bytes;
  }
  follow(): void {
    this.actual = this.target;
  }
}

function setup(guests: FakeGuest[], base: number, low = 200 * MiB, high = 300 * MiB) {
  const host = { pressure: 0 };
  const decisions: MemoryDecision[] = [];
  const loop = new MemoryLoop({
    intervalMs: 1000,
    hostAvailable: () => base - host.pressure + guests.reduce((s, g) => s + g.actual, 0),
    low,
    high,
    vms: () => guests,
    onDecision: (d) => decisions.push(d),
    log: (m) => assert.fail(m),
  });
  /** Rounds, the guests following after each, until a round decides nothing. */
  const settle = async () => {
    for (let i = 0; i < 100; i++) {
      const before = decisions.length;
      await loop.round();
      for (const g of guests) g.follow();
      if (decisions.length === before) return;
    }
    assert.fail("the loop did not settle in 100 rounds");
  };
  return { host, decisions, loop, settle };
}

describe("the memory governor's loop", () => {
  it("takes from guests with free memory under pressure, never a reserved or silent one, and gives it back", async () => {
    const idle = new FakeGuest("idle", 512 * MiB, 64 * MiB);
    const busy = new FakeGuest("busy", 512 * MiB, 400 * MiB);
    const reserved = new FakeGuest("reserved", 512 * MiB, 0, "reserved");
    const silent = new FakeGuest("silent", 512 * MiB, 0, "overcommit", 100, false);
    const guests = [idle, busy, reserved, silent];
    const { host, decisions, loop, settle } = setup(guests, 1024 * MiB);

    await settle();
    assert.equal(decisions.length, 0, "no pressure, nothing to do");

    host.pressure = 900 * MiB; // available 124 MiB < low 200 MiB
    await settle();
    assert.equal(reserved.polls, 0, "a reserved VM is never polled");
    assert.equal(reserved.target, 0);
    assert.equal(silent.target, 0, "a guest that reports nothing gives nothing");
    assert.ok(idle.target > busy.target, "the guest with more free memory gives more");
    const available = 1024 * MiB - host.pressure + idle.actual + busy.actual;
    assert.ok(available >= 300 * MiB - 4096, `back at the high watermark (${available / MiB} MiB)`);
    assert.ok(available <= 300 * MiB + 100 * MiB * GIVE_BACK_MARGIN, "and not far past it");
    for (const g of [idle, busy]) {
      assert.ok(g.memory - g.used - g.actual >= g.memory * GUEST_FREE_KEPT - 4096, "some free memory stays");
    }
    const taken = decisions.filter((d) => d.target > d.from);
    assert.ok(taken.length > 0);
    for (const d of taken) assert.match(d.reason, /low watermark/);
    assert.deepEqual(loop.lastDecision("idle")?.target, idle.target);
    assert.equal(loop.state().balloons.idle?.targetBytes, idle.target);

    const before = decisions.length;
    host.pressure = 0;
    await settle();
    assert.equal(idle.target, 0, "all given back once the pressure went");
    assert.equal(busy.target, 0);
    const back = decisions.slice(before);
    assert.ok(back.length > 0);
    for (const d of back) assert.ok(d.target < d.from && /high watermark/.test(d.reason), d.reason);
  });

  it("inflates above a client's target and gives back down to it, never below", async () => {
    const g = new FakeGuest("g", 512 * MiB, 64 * MiB);
    g.floor = g.target = g.actual = 128 * MiB;
    const { host, decisions, settle } = setup([g], 1024 * MiB);
    await settle();
    assert.equal(g.target, 128 * MiB, "no pressure: the client's target stays");
    assert.equal(decisions.length, 0);
    host.pressure = 1000 * MiB;
    await settle();
    assert.ok(g.target > 128 * MiB, "the governor takes more on top");
    host.pressure = 0;
    await settle();
    assert.equal(g.target, 128 * MiB, "and gives back only its own part");
  });

  it("gives back only past a margin above the high watermark", async () => {
    const g = new FakeGuest("g", 512 * MiB, 0);
    g.target = g.actual = 100 * MiB;
    // Without the balloon the host would have 200 MiB: with it, 300 MiB, exactly high.
    const { host, decisions, settle } = setup([g], 200 * MiB);
    await settle();
    assert.equal(decisions.length, 0, "at high: nothing");
    host.pressure = -20 * MiB; // 20 MiB above high, less than the 25 MiB margin
    await settle();
    assert.equal(decisions.length, 0, "within the margin: nothing");
    host.pressure = -30 * MiB;
    await settle();
    assert.equal(g.target, 70 * MiB, "past it: what is above high goes back");
  });

  it("counts what a guest still inflates: rounds do not ask again for what is on its way", async () => {
    const slow = new FakeGuest("slow", 1024 * MiB, 0);
    const { host, decisions, loop } = setup([slow], 1024 * MiB);
    host.pressure = 1000 * MiB;
    await loop.round();
    const first = slow.target;
    assert.ok(first > 0);
    for (let i = 0; i < 5; i++) await loop.round();
    assert.equal(slow.target, first, "the guest has not followed: no more is asked");
    assert.equal(decisions.length, 1);
  });

  it("property: targets stay within what guests can spare; reserved untouched; all back without pressure", async () => {
    const guest = fc.record({
      memory: fc.integer({ min: 16, max: 1024 }),
      usedPart: fc.double({ min: 0, max: 1, noNaN: true }),
      weight: fc.integer({ min: 1, max: 10_000 }),
      reserved: fc.boolean(),
      reservationPart: fc.double({ min: 0, max: 1, noNaN: true }),
      floorPart: fc.double({ min: 0, max: 0.5, noNaN: true }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(guest, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 4096 }),
        async (specs, pressure) => {
          const guests = specs.map(
            (s, i) =>
              new FakeGuest(
                `g${i}`,
                s.memory * MiB,
                Math.floor(s.memory * s.usedPart) * MiB,
                s.reserved ? "reserved" : "overcommit",
                s.weight,
                true,
                Math.floor(s.memory * s.reservationPart) * MiB,
              ),
          );
          specs.forEach((s, i) => {
            const g = guests[i] as FakeGuest;
            g.floor = g.target = g.actual = Math.floor(s.memory * s.floorPart) * MiB;
          });
          const { host, settle } = setup(guests, 2048 * MiB, 512 * MiB, 1024 * MiB);
          host.pressure = pressure * MiB;
          await settle();
          for (const g of guests) {
            if (g.mode === "reserved") assert.equal(g.target, g.floor);
            assert.ok(g.target % 4096 === 0 && g.target >= g.floor);
            const taken = g.target - g.floor;
            assert.ok(taken === 0 || g.target <= g.memory - g.reservation, "never below the reservation");
            // What the guest had free once its client's balloon was in, less what it keeps free.
            const spare = Math.max(0, g.memory - g.used - g.floor - g.memory * GUEST_FREE_KEPT);
            assert.ok(taken <= spare + 4096, `${g.name}: took ${taken} > spare ${spare}`);
          }
          host.pressure = 0;
          await settle();
          for (const g of guests) assert.equal(g.target, g.floor, "all given back, down to the floor");
        },
      ),
      { numRuns: 60 },
    );
  });

  it("runs rounds on its own once started, until stopped", async () => {
    const g = new FakeGuest("g", 256 * MiB, 0);
    let reads = 0;
    const loop = new MemoryLoop({
      intervalMs: 10,
      hostAvailable: () => {
        reads++;
        return 2 ** 40;
      },
      low: 1,
      high: 2,
      vms: () => [g],
      onDecision: () => assert.fail("nothing to decide"),
      log: (m) => assert.fail(m),
    });
    loop.start();
    while (loop.state().rounds < 3) await new Promise((r) => setTimeout(r, 10));
    await loop.stop();
    const after = reads;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(reads, after, "no round after stop");
    assert.ok(g.polls >= 3);
  });

  it("refuses a low watermark above the high one; a failing host read is logged, not thrown", async () => {
    const base = { intervalMs: 1000, vms: () => [], onDecision: () => {} };
    assert.throws(
      () => new MemoryLoop({ ...base, hostAvailable: () => 0, low: 2, high: 1, log: () => {} }),
      RangeError,
    );
    const logs: string[] = [];
    const loop = new MemoryLoop({
      ...base,
      hostAvailable: () => {
        throw new Error("no meminfo");
      },
      low: 1,
      high: 2,
      log: (m) => logs.push(m),
    });
    await loop.round();
    assert.deepEqual(logs, ["memory governor: no meminfo"]);
  });

  it("reads the host's available memory", () => {
    const bytes = hostMemAvailable();
    assert.ok(Number.isSafeInteger(bytes) && bytes > 0);
  });
});

describe("vireo daemon --memory-low/--memory-high", () => {
  it("a bad watermark is one line on stderr and exit 2, before the daemon starts", () => {
    const dir = mkdtempSync(join(tmpdir(), "vireo-gov-"));
    const socket = join(dir, "vireo.sock");
    for (const flags of [
      ["--memory-low", "abc"],
      ["--memory-low", "30%", "--memory-high", "0.2"],
      // Mixed forms are compared once the fraction is bytes: 1 PiB is above 20 % of any host here.
      ["--memory-low", "1P"],
    ]) {
      const r = spawnSync(
        process.execPath,
        [cli, "daemon", "--socket", socket, "--state-dir", dir, ...flags],
        {
          encoding: "utf8",
        },
      );
      assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /memory|watermark/);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes fractions and sizes; refuses the rest with a UserError", () => {
    assert.equal(parseWatermark("10%", "memory-low"), 0.1);
    assert.equal(parseWatermark("0.25", "memory-low"), 0.25);
    assert.equal(parseWatermark(".5", "memory-low"), 0.5);
    assert.equal(parseWatermark("512M", "memory-high"), 512 * MiB);
    assert.equal(parseWatermark(undefined, "memory-high"), undefined);
    for (const bad of ["abc", "0", "1", "150%", "0%", "-1", "1.5"]) {
      assert.throws(() => parseWatermark(bad, "memory-low"), UserError, bad);
    }
  });
});
