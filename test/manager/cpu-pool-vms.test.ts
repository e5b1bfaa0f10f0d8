/**
 * The share policy driving real engines: bare-metal riscv64 guests that count for ever
 * (test/guest-daemon/counter.S) share one thread through a CpuPool; what each retires must follow its
 * weight or cap. Shares, never absolute speeds, are asserted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { threadCpuClock } from "../../src/host/thread-cpu.js";
import { CpuPool, hostClock } from "../../src/manager/scheduler/cpu-pool.js";
import type { ShareParams } from "../../src/manager/scheduler/share-policy.js";
import { createVm } from "../../src/vm/create.js";
import type { Vm } from "../../src/vm/vm.js";
import { bareMetalSpec, buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";
import { after, before, describe, it } from "../support/test.js";

const RUN_MS = 3_000;
const missing = crossCompilerMissing();
let dir = "";
let elf = "";

/** Runs one VM per entry of `shares` on a one-CPU pool for RUN_MS; returns instructions per VM. */
async function race(shares: Record<string, Partial<ShareParams>>) {
  const pool = new CpuPool(hostClock, { cpus: 1, cpuMs: threadCpuClock() });
  const vms: Vm[] = [];
  for (const [name, share] of Object.entries(shares)) {
    pool.add(name, { weight: 100, cap: null, reservation: 0, ...share });
    const host = { ...nodeVmHost({ console: { write: () => {} } }), cpuTurns: pool.gate(name) };
    vms.push(await createVm(bareMetalSpec(name, elf, 16 * 2 ** 20), host));
  }
  const started = performance.now();
  for (const vm of vms) vm.start();
  await new Promise((r) => setTimeout(r, RUN_MS));
  for (const vm of vms) vm.pause();
  const elapsedMs = performance.now() - started;
  const counts = Object.fromEntries(vms.map((vm) => [vm.spec.name, vm.stats().instructions ?? 0]));
  for (const vm of vms) vm.kill();
  await Promise.all(vms.map((vm) => vm.wait()));
  const used = Object.keys(shares).map(
    (n) =>
      `${n}: ${counts[n]} insns, ${pool.usage(n).cpuMs.toFixed(0)} ms cpu, ${pool.usage(n).readyMs.toFixed(0)} ms ready`,
  );
  console.log(`pool of 1 CPU over ${RUN_MS} ms: ${used.join("; ")}`);
  return { counts, pool, elapsedMs };
}

describe("CpuPool with real engines", { skip: missing }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vireo-pool-"));
    elf = buildBareMetal("test/guest-daemon/counter.S", join(dir, "counter.elf"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("gives three busy guests with weights 100/200/400 instructions in 1:2:4 (±15 %)", {
    timeout: 60_000,
  }, async () => {
    const { counts: n } = await race({ a: { weight: 100 }, b: { weight: 200 }, c: { weight: 400 } });
    const a = n.a ?? 0;
    assert.ok(a > 0);
    assert.ok(Math.abs((n.b ?? 0) / a / 2 - 1) <= 0.15, `b/a = ${(n.b ?? 0) / a}, want 2`);
    assert.ok(Math.abs((n.c ?? 0) / a / 4 - 1) <= 0.15, `c/a = ${(n.c ?? 0) / a}, want 4`);
  });

  it("holds a guest capped at 0.25 to a quarter of a CPU beside a busy one (±5 points)", {
    timeout: 60_000,
  }, async () => {
    // The share of one host CPU: this thread's CPU time charged to it over the wall time of the run.
    const { pool, elapsedMs } = await race({ capped: { cap: 0.25, weight: 10_000 }, other: {} });
    const share = pool.usage("capped").cpuMs / elapsedMs;
    assert.ok(Math.abs(share - 0.25) <= 0.05, `capped guest's share of a CPU ${share}`);
  });

  it("keeps a 0.5 reservation for a light guest while four others compete (at least 45 % of the pool's CPU)", {
    timeout: 60_000,
  }, async () => {
    // Of the CPU time the pool's thread got (a loaded host may give it less than a whole CPU): by weight
    // alone the guest would get 1/401 of it.
    const { pool } = await race({ r: { reservation: 0.5, weight: 1 }, a: {}, b: {}, c: {}, d: {} });
    const total = ["r", "a", "b", "c", "d"].reduce((s, n) => s + pool.usage(n).cpuMs, 0);
    const share = pool.usage("r").cpuMs / total;
    assert.ok(share >= 0.45, `reserved guest's share of the pool's CPU ${share}`);
  });

  it("pauses and stops a guest that waits for a turn it may never get (a cap too small to run)", {
    timeout: 60_000,
  }, async () => {
    const pool = new CpuPool(hostClock, { cpus: 1, cpuMs: threadCpuClock() });
    pool.add("starved", { weight: 100, cap: 1e-9, reservation: 0 });
    const host = { ...nodeVmHost({ console: { write: () => {} } }), cpuTurns: pool.gate("starved") };
    const vm = await createVm(bareMetalSpec("starved", elf, 16 * 2 ** 20), host);
    vm.start();
    await new Promise((r) => setTimeout(r, 300));
    vm.pause();
    vm.resume();
    await new Promise((r) => setTimeout(r, 300));
    vm.kill();
    assert.deepEqual(await vm.wait(), { reason: "stopped" });
    assert.equal(pool.usage("starved").running, false, "no turn is left held");
  });
});
