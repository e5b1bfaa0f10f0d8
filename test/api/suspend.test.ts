/**
 * `vireo daemon --suspend-on-exit`: SIGTERM saves a running riscv64 VM as a snapshot in the state
 * directory instead of stopping it, and the next daemon continues it: its counter goes on from where it
 * was (no restart from zero), while a VM that was not running stays as it was. The snapshot is used once.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "../support/test.js";
import {
  api,
  counterGuest,
  counterSpec,
  type Daemon,
  startDaemon,
  tempDir,
  toolchainMissing,
  until,
} from "./support.js";

const missing = toolchainMissing();

/** The counters of every complete "tick N" line, in order. */
function ticks(text: string): number[] {
  return [...text.matchAll(/^tick ([0-9a-f]{16})$/gm)].map((m) => Number.parseInt(m[1] as string, 16));
}

describe("the daemon's --suspend-on-exit", { skip: missing }, () => {
  const daemons: Daemon[] = [];
  after(async () => {
    for (const d of daemons) {
      if (d.child.exitCode === null) {
        d.child.kill("SIGKILL");
        await d.exited;
      }
    }
  });

  test("suspends a running VM at SIGTERM and continues it in the next daemon", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const kernel = counterGuest(dir);
    const first = await startDaemon(dir, {}, ["--suspend-on-exit"]);
    daemons.push(first);
    const run = await api(first.socket, "POST", "/vms", counterSpec("sus", kernel));
    assert.equal(run.status, 201, run.text);
    const id = (run.json as { id: string }).id;
    assert.equal((await api(first.socket, "POST", "/vms", counterSpec("idle", kernel))).status, 201);
    assert.equal((await api(first.socket, "POST", "/vms/sus/actions/start")).status, 200);
    const before = await until(
      async () => ticks((await api(first.socket, "GET", "/vms/sus/console")).text),
      (t) => t.length >= 3,
    );
    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0, first.log());
    assert.match(first.log(), /VM 'sus' suspended to /);
    const saved = join(dir, "state", "suspended", id);
    assert.ok(existsSync(join(saved, "suspended")), `a complete snapshot in ${saved}`);

    const second = await startDaemon(dir, {}, ["--suspend-on-exit"]);
    daemons.push(second);
    assert.match(second.log(), /VM 'sus' resumed where the last daemon suspended it/);
    assert.equal(((await api(second.socket, "GET", "/vms/sus")).json as { state: string }).state, "running");
    assert.equal(((await api(second.socket, "GET", "/vms/idle")).json as { state: string }).state, "created");
    const after = await until(
      async () => ticks((await api(second.socket, "GET", "/vms/sus/console")).text),
      (t) => t.length >= 2,
    );
    // The guest went on: its first line in this daemon counts past the last one the first daemon showed.
    const last = before[before.length - 1] as number;
    assert.ok((after[0] as number) >= last, `resumed at tick ${after[0]}, had reached ${last}`);
    assert.deepEqual(after.slice(0, 2), [after[0], (after[0] as number) + 1], "counting on, one by one");
    // Used once: the snapshot is gone.
    assert.deepEqual(readdirSync(join(dir, "state", "suspended")), []);
  });
});
