/**
 * A pool whose VMs cannot start, through the SDK against an in-process daemon (the manager and API
 * of `vireo daemon` on a Unix socket) whose memory budget is smaller than one VM: each start is
 * refused, the pool says why, deletes what it defined, retries later, and an acquire times out
 * naming the failure.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildApp } from "../../src/api/app.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { VmManager } from "../../src/manager/manager.js";
import { Vireo, VireoApiError } from "../../src/sdk/index.js";
import { counterSpec, tempDir, toolchainMissing, until } from "../api/support.js";
import { buildBareMetal } from "../support/bare-metal.js";
import { describe, test } from "../support/test.js";

const missing = toolchainMissing();

describe("a pool whose VMs cannot start", { skip: missing !== undefined }, () => {
  test("shows the last failure, leaves no VM behind, and its acquire's 504 names the failure", {
    timeout: 60_000,
  }, async (t) => {
    const dir = tempDir();
    const idle = buildBareMetal("test/guest-daemon/idle.S", join(dir, "idle.elf"));
    const manager = await VmManager.open({
      stateDir: join(dir, "state"),
      log: () => {},
      host: (console) => nodeVmHost({ console, warn: () => {} }),
      memoryBudget: 8 * 2 ** 20,
    });
    const app = buildApp({ manager, log: (m) => assert.fail(`internal error: ${m}`) });
    const socket = join(dir, "vireo.sock");
    await app.listen({ path: socket });
    t.after(async () => {
      await app.close();
      await manager.shutdown(0);
    });
    const vireo = new Vireo({ socket });
    const spec = counterSpec("t", idle, { memoryMode: "reserved" });
    await vireo.createPool({ name: "big", spec, size: 2 });
    const failed = await until(
      () => vireo.getPool("big"),
      (p) => p.lastError !== undefined,
    );
    assert.match(
      failed.lastError as string,
      /^VM 'big-[0-9a-f]{8}' did not start: .*reserved memory would add up/,
    );
    assert.equal(failed.ready, 0);
    // What a failed start defined is deleted again: at most the one a retry is starting now.
    assert.ok((await vireo.listVms({ "vireo.pool": "big" })).length <= 1);
    const waited = await vireo.acquire("big", { timeoutMs: 200 }).catch((e: unknown) => e);
    assert.ok(waited instanceof VireoApiError, String(waited));
    assert.equal(waited.status, 504);
    assert.match(
      waited.message,
      /^pool 'big' had no ready VM within 200 ms \(\d booting; last failure: VM 'big-/,
    );
    // Retried, not given up: a later failure is reported again (the delay grows, from 0.5 s).
    const events: string[] = [];
    const gone = new AbortController();
    for await (const e of vireo.events({ signal: gone.signal })) {
      if (e.type === "pool" && e.change === "failed") events.push(e.vm ?? "");
      if (events.length === 1) gone.abort();
    }
    assert.match(events[0] as string, /^big-[0-9a-f]{8}$/);
    await vireo.deletePool("big");
    assert.deepEqual(await vireo.listVms({ "vireo.pool": "big" }), []);
  });
});
