import assert from "node:assert/strict";
import fc from "fast-check";
import { type ShareParams, SharePolicy } from "../../src/manager/scheduler/share-policy.js";
import { describe, it } from "../support/test.js";

/**
 * Runs the policy on a fake clock: `cpus` CPUs each pick, run the whole slice they were given, and
 * charge it; an idle CPU waits until the policy says something may run. Returns CPU time per VM.
 */
function simulate(
  policy: SharePolicy,
  vms: Record<string, Partial<ShareParams>>,
  durationMs: number,
  options: { cpus?: number; sleeper?: { id: string; awakeFrom: number } } = {},
): Map<string, number> {
  const cpus = options.cpus ?? 1;
  for (const [id, p] of Object.entries(vms)) {
    policy.add(id, { weight: 100, cap: null, reservation: 0, ...p }, 0);
    if (options.sleeper?.id !== id) policy.setRunnable(id, true, 0);
  }
  // Each CPU's next free time and what it runs.
  const free = Array.from({ length: cpus }, () => ({ at: 0, id: null as string | null, slice: 0 }));
  for (;;) {
    const cpu = free.reduce((a, b) => (b.at < a.at ? b : a));
    const now = cpu.at;
    if (now >= durationMs) break;
    if (cpu.id !== null) {
      policy.charge(cpu.id, cpu.slice, now);
      cpu.id = null;
    }
    const sleeper = options.sleeper;
    if (sleeper !== undefined && now >= sleeper.awakeFrom) policy.setRunnable(sleeper.id, true, now);
    const pick = policy.pick(now);
    if ("idle" in pick) {
      const next = pick.until ?? Math.min(...free.filter((f) => f !== cpu).map((f) => f.at), durationMs);
      cpu.at = next > now ? next : now + 1;
      if (sleeper !== undefined && now < sleeper.awakeFrom) cpu.at = Math.min(cpu.at, sleeper.awakeFrom);
      continue;
    }
    const slice = Math.min(pick.sliceMs, durationMs - now);
    cpu.id = pick.id;
    cpu.slice = slice;
    cpu.at = now + slice;
  }
  for (const f of free) if (f.id !== null) policy.charge(f.id, f.slice, f.at);
  return new Map(Object.keys(vms).map((id) => [id, policy.usage(id).cpuMs]));
}

const share = (used: Map<string, number>, id: string, total: number) => (used.get(id) ?? 0) / total;

describe("SharePolicy", () => {
  it("divides one CPU 1:2:4 among weights 100/200/400", () => {
    const used = simulate(
      new SharePolicy(),
      { a: { weight: 100 }, b: { weight: 200 }, c: { weight: 400 } },
      10_000,
    );
    const a = used.get("a") ?? 0;
    assert.ok(Math.abs((used.get("b") ?? 0) / a - 2) < 0.05, `b/a = ${(used.get("b") ?? 0) / a}`);
    assert.ok(Math.abs((used.get("c") ?? 0) / a - 4) < 0.1, `c/a = ${(used.get("c") ?? 0) / a}`);
    assert.ok(
      Math.abs(a + (used.get("b") ?? 0) + (used.get("c") ?? 0) - 10_000) < 1e-6,
      "the CPU never idles",
    );
  });

  it("holds a capped VM to its cap, with competitors and alone", () => {
    const used = simulate(new SharePolicy(), { capped: { cap: 0.25, weight: 10_000 }, other: {} }, 10_000);
    assert.ok(
      Math.abs(share(used, "capped", 10_000) - 0.25) < 0.005,
      `capped ${share(used, "capped", 10_000)}`,
    );
    assert.ok(Math.abs(share(used, "other", 10_000) - 0.75) < 0.005);
    const alone = simulate(new SharePolicy(), { capped: { cap: 0.25 } }, 10_000);
    assert.ok(
      Math.abs(share(alone, "capped", 10_000) - 0.25) < 0.005,
      `alone ${share(alone, "capped", 10_000)}`,
    );
  });

  it("keeps a reservation while four heavier VMs compete", () => {
    const vms = {
      r: { reservation: 0.5, weight: 1 },
      a: { weight: 1000 },
      b: { weight: 1000 },
      c: {},
      d: {},
    };
    const used = simulate(new SharePolicy(), vms, 10_000);
    assert.ok(share(used, "r", 10_000) >= 0.499, `reserved VM got ${share(used, "r", 10_000)}`);
  });

  it("gives a VM the larger of its reservation and its weighted share", () => {
    const used = simulate(
      new SharePolicy(),
      { r: { reservation: 0.2, weight: 300 }, o: { weight: 100 } },
      10_000,
    );
    assert.ok(Math.abs(share(used, "r", 10_000) - 0.75) < 0.01, `r ${share(used, "r", 10_000)}`);
  });

  it("gives a VM that slept no burst of credit when it wakes", () => {
    const policy = new SharePolicy();
    const used = simulate(policy, { a: {}, late: {} }, 10_000, { sleeper: { id: "late", awakeFrom: 5_000 } });
    // Asleep for the first half, then an equal share of the second: a quarter in all, not a catch-up.
    assert.ok(Math.abs(share(used, "late", 10_000) - 0.25) < 0.01, `late ${share(used, "late", 10_000)}`);
    assert.equal(policy.usage("late").readyMs > 0, true);
  });

  it("counts ready time: two equal VMs on one CPU each wait half the time", () => {
    const policy = new SharePolicy();
    simulate(policy, { a: {}, b: {} }, 10_000);
    for (const id of ["a", "b"]) {
      const { readyMs, cpuMs } = policy.usage(id);
      assert.ok(Math.abs(readyMs + cpuMs - 10_000) <= 10 + 1e-6, `${id}: ready ${readyMs} + cpu ${cpuMs}`);
      assert.ok(Math.abs(readyMs - 5_000) <= 20, `${id}: ready ${readyMs}`);
    }
  });

  it("shares two CPUs by weight, one VM per CPU at a time", () => {
    const used = simulate(new SharePolicy({ cpus: 2 }), { a: {}, b: {}, c: { weight: 200 } }, 10_000, {
      cpus: 2,
    });
    // c wants half of two CPUs' time but can use only one CPU at a time: it gets a whole CPU.
    assert.ok(Math.abs(share(used, "c", 10_000) - 1) < 0.01, `c ${share(used, "c", 10_000)}`);
    assert.ok(Math.abs(share(used, "a", 10_000) - 0.5) < 0.01);
  });

  it("never picks a VM with no work, and idles until a capped VM may run again", () => {
    const policy = new SharePolicy({ periodMs: 100 });
    policy.add("x", { weight: 100, cap: 0.1, reservation: 0 }, 0);
    assert.deepEqual(policy.pick(0), { idle: true, until: null });
    policy.setRunnable("x", true, 0);
    const first = policy.pick(0);
    assert.deepEqual(first, { id: "x", sliceMs: 10 });
    policy.charge("x", 10, 10);
    assert.deepEqual(policy.pick(10), { idle: true, until: 100 });
    assert.equal(policy.queueLength(), 1);
    assert.equal("id" in policy.pick(100), true);
  });

  it("refuses reservations the pool cannot hold, and bad parameters", () => {
    const policy = new SharePolicy({ cpus: 1 });
    policy.add("a", { weight: 100, cap: null, reservation: 0.7 }, 0);
    assert.match(policy.refusal({ weight: 100, cap: null, reservation: 0.5 }) ?? "", /cannot hold/);
    assert.throws(() => policy.add("b", { weight: 100, cap: null, reservation: 0.5 }, 0), /cannot hold/);
    assert.equal(policy.refusal({ weight: 100, cap: null, reservation: 0.9 }, "a"), null);
    assert.match(policy.refusal({ weight: 0, cap: null, reservation: 0 }) ?? "", /weight/);
    assert.match(policy.refusal({ weight: 100, cap: 1.5, reservation: 0 }) ?? "", /cap/);
    assert.match(policy.refusal({ weight: 100, cap: 0.2, reservation: 0.3 }) ?? "", /exceed cap/);
    assert.throws(() => policy.charge("a", 1, 0), /not running/);
  });

  it("changes shares at run time", () => {
    const policy = new SharePolicy();
    simulate(policy, { a: {}, b: {} }, 5_000);
    const before = { a: policy.usage("a").cpuMs, b: policy.usage("b").cpuMs };
    policy.update("b", { weight: 300, cap: null, reservation: 0 });
    // Continue the same run for 4 s more: b gets three quarters of it.
    let now = 5_000;
    while (now < 9_000) {
      const pick = policy.pick(now);
      assert.ok("id" in pick);
      now += pick.sliceMs;
      policy.charge(pick.id, pick.sliceMs, now);
    }
    const b = policy.usage("b").cpuMs - before.b;
    const a = policy.usage("a").cpuMs - before.a;
    assert.ok(Math.abs(b / (a + b) - 0.75) < 0.02, `b's share after the change ${b / (a + b)}`);
  });

  it("matches weights for any mix of VMs (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 2, maxLength: 8 }),
        (weights) => {
          const vms = Object.fromEntries(weights.map((w, i) => [`vm${i}`, { weight: w }]));
          const total = 20_000;
          const used = simulate(new SharePolicy({ sliceMs: 1 }), vms, total);
          const sum = weights.reduce((s, w) => s + w, 0);
          weights.forEach((w, i) => {
            const got = share(used, `vm${i}`, total);
            // One slice of slack per VM over the run, in share terms.
            assert.ok(
              Math.abs(got - w / sum) < 0.01 + weights.length / total,
              `vm${i} w=${w}: ${got} vs ${w / sum}`,
            );
          });
        },
      ),
      { numRuns: 40 },
    );
  });
});
