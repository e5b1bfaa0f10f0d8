import assert from "node:assert/strict";
import { CpuPool, type PoolClock } from "../../src/manager/scheduler/cpu-pool.js";
import { describe, it } from "../support/test.js";

/** A clock tests move by hand: timers fire when `advance` passes them. */
class FakeClock implements PoolClock {
  t = 0;
  private timers: { at: number; fn: () => void }[] = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
  /** The earliest timer, or null. */
  nextTimer(): number | null {
    return this.timers.length === 0 ? null : Math.min(...this.timers.map((x) => x.at));
  }
  fireDue(): void {
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fn();
  }
}

/**
 * Engines as the interpreter's run loop uses the pool: ask for a turn, "run" the slice (the fake clock
 * moves), ask again with what was used; an engine with `idleAfter` goes idle after that many turns.
 */
async function runEngines(pool: CpuPool, clock: FakeClock, ids: string[], untilMs: number) {
  const granted: string[] = [];
  const pending = new Map<string, number>();
  for (const id of ids) void pool.turn(id).then((s) => pending.set(id, s));
  for (;;) {
    await new Promise((r) => setImmediate(r));
    const [id, slice] = [...pending][0] ?? [];
    if (id === undefined || slice === undefined) {
      const t = clock.nextTimer();
      if (t === null || t >= untilMs) break;
      clock.t = t;
      clock.fireDue();
      continue;
    }
    pending.delete(id);
    if (clock.t >= untilMs) break;
    granted.push(id);
    clock.t += slice;
    void pool.turn(id, slice).then((s) => pending.set(id, s));
  }
  return granted;
}

describe("CpuPool", () => {
  it("grants one turn at a time on one CPU, in weight proportion", async () => {
    const clock = new FakeClock();
    const pool = new CpuPool(clock);
    pool.add("a", { weight: 100, cap: null, reservation: 0 });
    pool.add("b", { weight: 300, cap: null, reservation: 0 });
    await runEngines(pool, clock, ["a", "b"], 10_000);
    const a = pool.usage("a").cpuMs;
    const b = pool.usage("b").cpuMs;
    assert.ok(Math.abs(b / (a + b) - 0.75) < 0.01, `b's share ${b / (a + b)}`);
    assert.ok(pool.meanQueueLength() > 0);
  });

  it("keeps the run queue's length per second for the last minute", async () => {
    const clock = new FakeClock();
    const pool = new CpuPool(clock);
    for (const id of ["a", "b", "c"]) pool.add(id, { weight: 100, cap: null, reservation: 0 });
    await runEngines(pool, clock, ["a", "b", "c"], 70_000);
    const history = pool.queueHistory();
    assert.equal(history.length, 60, "one entry per second of the last minute");
    const first = history[0]?.second ?? 0;
    assert.ok(first >= 10, `older seconds dropped (first kept: ${first})`);
    assert.deepEqual(
      history.map((h) => h.second),
      Array.from({ length: 60 }, (_, i) => first + i),
    );
    // Three busy VMs on one CPU: at each decision the other two are waiting (one more at the very start).
    for (const h of history) {
      assert.ok(h.decisions > 0 && h.max >= 2 && h.mean >= 1.5 && h.mean <= 3, JSON.stringify(h));
    }
  });

  it("sleeps through a capped VM's rest of period on its timer, then runs it again", async () => {
    const clock = new FakeClock();
    const pool = new CpuPool(clock, { periodMs: 100, sliceMs: 10 });
    pool.add("c", { weight: 100, cap: 0.3, reservation: 0 });
    const granted = await runEngines(pool, clock, ["c"], 1_000);
    assert.ok(Math.abs(pool.usage("c").cpuMs - 300) < 1e-6, `cpu ${pool.usage("c").cpuMs}`);
    assert.equal(granted.length, 30);
  });

  it("keeps an idle VM out of the queue until it asks again", async () => {
    const clock = new FakeClock();
    const pool = new CpuPool(clock);
    pool.add("busy", { weight: 100, cap: null, reservation: 0 });
    pool.add("idle", { weight: 100, cap: null, reservation: 0 });
    const first = await pool.turn("idle");
    clock.t += first;
    pool.end("idle", first);
    assert.equal(pool.usage("idle").runnable, false);
    await runEngines(pool, clock, ["busy"], 1_000);
    assert.equal(pool.usage("idle").cpuMs, first, "no CPU while idle");
    assert.equal(pool.usage("idle").readyMs, 0, "no ready time while idle");
    assert.ok(pool.usage("busy").cpuMs >= 1_000 - first - 10);
  });

  it("forgets a removed VM's pending turn and lets the others run", async () => {
    const clock = new FakeClock();
    const pool = new CpuPool(clock);
    pool.add("a", { weight: 100, cap: null, reservation: 0 });
    pool.add("b", { weight: 100, cap: null, reservation: 0 });
    const a = await pool.turn("a");
    let bGranted = false;
    void pool.turn("b").then(() => {
      bGranted = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(bGranted, false, "one CPU: b waits while a runs");
    clock.t += a;
    pool.remove("a");
    await new Promise((r) => setImmediate(r));
    assert.equal(bGranted, true);
    assert.equal(pool.policy.has("a"), false);
  });
});
