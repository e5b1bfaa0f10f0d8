/**
 * The warm worker pool: it keeps `size` VM workers started, hands each out once and starts a
 * replacement after the turn; a VM built on a pooled worker (or, with size 0, on one started for it)
 * runs like any other, a spec that cannot be built fails as before, and `vireo daemon --warm-workers`
 * takes a whole number only.
 */
import assert from "node:assert/strict";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { WorkerPool } from "../../src/manager/worker-pool.js";
import { WorkerVm } from "../../src/manager/worker-vm.js";
import { UserError } from "../../src/util/errors.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { counterGuest, counterSpec, tempDir, toolchainMissing } from "../api/support.js";
import { assertUserError, vireo } from "../cli/vireo.js";
import { after, describe, test } from "../support/test.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stderr.write(`skipping the VM runs on pooled workers: ${missing}\n`);

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("WorkerPool", () => {
  const pools: WorkerPool[] = [];
  /** VMs killed after the tests, so that a failed assertion leaves no worker keeping this file alive. */
  const vms: WorkerVm[] = [];
  after(async () => {
    for (const p of pools) await p.close();
    for (const vm of vms) {
      vm.kill();
      await vm.wait().catch(() => {});
    }
  });
  const pool = (size: number) => {
    const p = new WorkerPool(vmWorkerEntry, size);
    pools.push(p);
    return p;
  };

  test("keeps its size started, hands each worker out once, replaces it after the turn", async () => {
    const p = pool(2);
    assert.equal(p.warm, 2);
    const a = p.take();
    const b = p.take();
    assert.notEqual(a, b);
    assert.equal(p.warm, 0);
    await nextTurn();
    assert.equal(p.warm, 2);
    const c = p.take();
    assert.ok(c !== a && c !== b);
    await Promise.all([a, b, c].map((w) => w.terminate()));
    await p.close();
    assert.equal(p.warm, 0);
    // Closed: a take still gives a worker, but nothing waits any more.
    const d = p.take();
    await nextTurn();
    assert.equal(p.warm, 0);
    await d.terminate();
  });

  test("size 0 keeps none and starts a worker per take; a negative size is refused", async () => {
    const p = pool(0);
    const w = p.take();
    await nextTurn();
    assert.equal(p.warm, 0);
    await w.terminate();
    assert.throws(() => new WorkerPool(vmWorkerEntry, -1), RangeError);
  });

  test("VMs run on pooled and on fresh workers; a spec that cannot be built fails, the pool serves on", {
    skip: missing,
    timeout: 120_000,
  }, async () => {
    const kernel = counterGuest(tempDir());
    for (const size of [1, 0]) {
      const p = pool(size);
      await assert.rejects(
        WorkerVm.create(counterSpec(`bad${size}`, "/nonexistent/kernel") as VmSpec, {
          entry: vmWorkerEntry,
          pool: p,
          console: () => {},
        }),
        (e: unknown) => e instanceof UserError && /\/nonexistent\/kernel/.test(e.message),
      );
      for (const name of [`a${size}`, `b${size}`]) {
        let text = "";
        let ticked: () => void = () => {};
        const ticks = new Promise<void>((resolve) => {
          ticked = resolve;
        });
        const vm = await WorkerVm.create(counterSpec(name, kernel) as VmSpec, {
          entry: vmWorkerEntry,
          pool: p,
          console: (bytes) => {
            text += Buffer.from(bytes).toString("latin1");
            if (text.includes("tick 0000000000000002\n")) ticked();
          },
        });
        vms.push(vm);
        vm.start();
        await ticks;
        vm.kill();
        assert.deepEqual(await vm.wait(), { reason: "stopped" });
        assert.equal(vm.state.name, "stopped");
      }
    }
  });

  test("vireo daemon --warm-workers takes a whole number from 0 to 64", () => {
    assertUserError(
      vireo("daemon", "--warm-workers", "two"),
      /--warm-workers must be a whole number from 0 to 64/,
    );
    assertUserError(
      vireo("daemon", "--warm-workers", "65"),
      /--warm-workers must be a whole number from 0 to 64/,
    );
  });
});
