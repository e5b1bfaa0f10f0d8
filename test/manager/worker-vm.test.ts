/**
 * WorkerVm: riscv64 VMs in worker threads of their own, driven through the Vm interface, and the
 * manager's failure isolation with them: a VM whose console device throws, whose worker dies of an
 * uncaught exception, or whose worker exits ends `failed` while another worker VM runs on. The guest is
 * test/guest-daemon/counter.S (prints "tick N" for ever), so nothing ends unless the test ends it.
 */
import assert from "node:assert/strict";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { FAULT_LABEL, VmManager } from "../../src/manager/manager.js";
import { WorkerVm } from "../../src/manager/worker-vm.js";
import { UserError } from "../../src/util/errors.js";
import type { VmSpec } from "../../src/vm/spec.js";
import type { VmStateName } from "../../src/vm/vm.js";
import { counterGuest, counterSpec, sleep, tempDir, toolchainMissing, until } from "../api/support.js";
import { after, describe, test } from "../support/test.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stderr.write(`skipping the WorkerVm tests: ${missing}\n`);

/** Console output of one VM, as text. */
class Output {
  private readonly chunks: Uint8Array[] = [];
  length = 0;
  readonly take = (bytes: Uint8Array) => {
    this.chunks.push(bytes);
    this.length += bytes.length;
  };
  text(): string {
    return Buffer.concat(this.chunks).toString("latin1");
  }
}

describe("WorkerVm", { skip: missing !== undefined }, () => {
  let kernel = "";
  /** Killed after the tests, so that a failed assertion leaves no worker keeping this file alive. */
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });
  const create = async (s: VmSpec, console: (bytes: Uint8Array) => void = () => {}) => {
    const vm = await WorkerVm.create(s, { entry: vmWorkerEntry, console });
    cleanup.push(() => {
      vm.kill();
      return vm.wait().catch(() => {});
    });
    return vm;
  };
  const spec = (name: string, extra: Record<string, unknown> = {}) =>
    counterSpec(name, kernel, extra) as VmSpec;

  test("output, pause holds the instruction count, resume, stop after grace, kill, states in order", {
    timeout: 120_000,
  }, async () => {
    kernel = counterGuest(tempDir());
    const out = new Output();
    const vm = await create(spec("w1", { rng: true }), out.take);
    const seen: VmStateName[] = [];
    vm.on("state", (s) => seen.push(s.name));
    assert.equal(vm.state.name, "created");
    const names = vm.devices().map((d) => `${d.name}:${d.kind}`);
    assert.ok(names.includes("uart0:uart16550") && names.includes("virtio0:virtio-rng"), names.join(" "));
    vm.start();
    await until(
      async () => out.length,
      (n) => n >= 3 * "tick 0000000000000000\n".length,
    );
    assert.match(out.text(), /^tick 0000000000000000\ntick 0000000000000001\n/);
    vm.pause();
    assert.equal(vm.state.name, "paused");
    assert.throws(() => vm.pause(), /paused/);
    // Answered after the worker took the pause: from here on nothing may retire.
    const paused = (await vm.refreshStats()).instructions ?? 0;
    const bytes = out.length;
    await sleep(300);
    assert.equal((await vm.refreshStats()).instructions, paused, "instructions retired while paused");
    assert.equal(out.length, bytes, "output while paused");
    vm.resume();
    await until(
      async () => (await vm.refreshStats()).instructions ?? 0,
      (n) => n > paused,
    );
    assert.ok((vm.stats().instructions ?? 0) > paused, "stats() follows the snapshots");
    // The guest never ends by itself: the grace period ends in a hard stop.
    assert.deepEqual(await vm.stop({ graceMs: 50 }), { reason: "stopped" });
    assert.deepEqual(seen, ["running", "paused", "running", "stopped"]);
    assert.throws(() => vm.start(), /stopped/);
    assert.equal(vm.stats().arch, "riscv64");

    const busy = await create(spec("w2"));
    const seenBusy: VmStateName[] = [];
    busy.on("state", (s) => seenBusy.push(s.name));
    busy.start();
    busy.kill();
    assert.deepEqual(await busy.wait(), { reason: "stopped" });
    assert.deepEqual(seenBusy, ["running", "stopped"]);

    const never = await create(spec("w3"));
    const seenNever: VmStateName[] = [];
    never.on("state", (s) => seenNever.push(s.name));
    never.kill();
    assert.deepEqual(await never.wait(), { reason: "stopped" });
    assert.deepEqual(seenNever, ["stopped"]);

    await assert.rejects(
      WorkerVm.create(counterSpec("w4", "/nonexistent/kernel") as VmSpec, {
        entry: vmWorkerEntry,
        console: () => {},
      }),
      (e) => e instanceof UserError && /nonexistent/.test(e.message),
    );
  });

  test("a throwing device, an uncaught exception and an exiting worker each fail only their VM", {
    timeout: 120_000,
  }, async () => {
    if (kernel === "") kernel = counterGuest(tempDir());
    const logs: string[] = [];
    const manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      testHooks: true,
      host: (console) => nodeVmHost({ console }),
      vmWorker: vmWorkerEntry,
    });
    cleanup.push(() => manager.shutdown(0));
    manager.create(spec("healthy"));
    await manager.act("healthy", "start");
    const reasons: Record<string, RegExp> = {
      console: /test hook: the console device threw/,
      uncaught: /outside the run loop/,
      exit: /worker thread exited with code 3/,
    };
    for (const [fault, reason] of Object.entries(reasons)) {
      manager.create(spec(fault, { labels: { [FAULT_LABEL]: fault } }));
      await manager.act(fault, "start");
      const failed = await until(
        async () => manager.get(fault),
        (v) => v.state !== "running",
      );
      assert.equal(failed.state, "failed", fault);
      assert.match(failed.reason ?? "", reason);
      // What it printed before it failed reached its ring.
      assert.match(Buffer.from(manager.console(fault).contents()).toString("latin1"), /^tick 0/, fault);
      const before = manager.stats("healthy").instructions ?? 0;
      await until(
        async () => manager.stats("healthy").instructions ?? 0,
        (n) => n > before,
      );
      assert.equal(manager.get("healthy").state, "running");
    }
    await manager.act("healthy", "kill");
    assert.equal(manager.get("healthy").state, "stopped");
    assert.ok(
      logs.some((l) => /VM 'exit' failed/.test(l)),
      logs.join("\n"),
    );
  });
});
