/**
 * stop()'s power-off request reaches the keyboard, in process and through a WorkerVm's thread, without
 * a Linux guest: the guest is a bare-metal program (test/guest-daemon/counter.S) with no virtio driver,
 * so the Ctrl-Alt-Del press waits in the keyboard's queue (the stats show it) and the grace period ends
 * in a hard stop. test/linux/poweroff.test.ts has a guest that acts on it.
 */
import assert from "node:assert/strict";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { WorkerVm } from "../../src/manager/worker-vm.js";
import { createVm } from "../../src/vm/create.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { counterGuest, counterSpec, tempDir, toolchainMissing, until } from "../api/support.js";
import { describe, test } from "../support/test.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stderr.write(`skipping the stop-request tests: ${missing}\n`);

describe("stop()'s power-off request", { skip: missing !== undefined }, () => {
  let kernel = "";
  const spec = (name: string, keyboard: boolean) => counterSpec(name, kernel, { keyboard }) as VmSpec;
  const ticking = (out: () => string) =>
    until(
      async () => out(),
      (text) => text.includes("tick 0000000000000002"),
    );

  test("in process: one Ctrl-Alt-Del per stop, none without a keyboard, none once stopped", {
    timeout: 60_000,
  }, async () => {
    kernel = counterGuest(tempDir());
    let out = "";
    const host = nodeVmHost({ console: { write: (b) => (out += String.fromCharCode(b)) } });
    const vm = await createVm(spec("kbd", true), host);
    assert.equal(vm.requestPowerOff(), false, "not while created");
    vm.start();
    await ticking(() => out);
    assert.deepEqual(await vm.stop({ graceMs: 50 }), { reason: "stopped" });
    assert.deepEqual(vm.stats().keyboard, { delivered: 0, dropped: 0, statusEvents: 0, pending: 12 });
    assert.equal(vm.requestPowerOff(), false, "not once stopped");

    out = "";
    const bare = await createVm(spec("nokbd", false), host);
    assert.ok(!bare.devices().some((d) => d.kind === "virtio-input"));
    bare.start();
    await ticking(() => out);
    assert.equal(bare.requestPowerOff(), false);
    assert.deepEqual(await bare.stop({ graceMs: 0 }), { reason: "stopped" });
    assert.equal(bare.stats().keyboard, undefined);
  });

  test("a WorkerVm posts the request to its thread before the grace period", {
    timeout: 60_000,
  }, async () => {
    if (kernel === "") kernel = counterGuest(tempDir());
    let out = "";
    const vm = await WorkerVm.create(spec("worker-kbd", true), {
      entry: vmWorkerEntry,
      console: (bytes) => (out += Buffer.from(bytes).toString("latin1")),
    });
    try {
      assert.ok(vm.devices().some((d) => d.kind === "virtio-input"));
      vm.start();
      await ticking(() => out);
      assert.deepEqual(await vm.stop({ graceMs: 200 }), { reason: "stopped" });
      // The last stats come with the worker's final state: the press is in the keyboard's queue.
      assert.equal(vm.stats().keyboard?.pending, 12);
      assert.equal(vm.requestPowerOff(), false, "not once stopped");
    } finally {
      vm.kill();
      await vm.wait().catch(() => {});
    }
  });
});
