/**
 * The guest agent after a VM moved: one Linux guest of the default Debian image (its agent wired by
 * default through a vsock device and a Unix socket the daemon makes) boots in one daemon, is
 * live-migrated to a second, then snapshotted there, restored and cloned from the snapshot. Each time the VM's
 * vsock device gets a host socket of the daemon it now runs in (the saved spec names the first
 * daemon's), the guest's connections of before get an RST each (qemu-ga's client among them: without
 * it, qemu-ga waits on that dead client for ever and refuses every new one), and
 * POST /vms/{id}/exec answers.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/api/app.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { VmManager } from "../../src/manager/manager.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import { debianVmBody, riscv64Image } from "../support/guest-image.js";
import { after, describe, test } from "../support/test.js";
import { sleep } from "./support.js";

// A loaded 2-core machine has taken 2 minutes to the agent's first answer.
const BOOT_TIMEOUT_MS = 300_000;
/** After a move the agent answers within seconds; this only bounds a broken one. */
const MOVED_TIMEOUT_MS = 90_000;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), "vireo-agent-move-"));

interface ExecAnswer {
  exitCode: number | null;
  stdout: string;
  message?: string;
}

describe("the guest agent of a migrated, a restored and a cloned VM", () => {
  const daemons: { manager: VmManager; app: FastifyInstance; logs: string[] }[] = [];
  after(async () => {
    for (const d of daemons) {
      await d.app.close();
      await d.manager.shutdown(0);
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  async function daemon() {
    const logs: string[] = [];
    const switches = new SwitchRegistry();
    const manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      host: (console) => nodeVmHost({ console, switches }),
      vmWorker: vmWorkerEntry,
    });
    const app = buildApp({ manager, log: (m) => logs.push(m) });
    const d = { manager, app, logs };
    daemons.push(d);
    return d;
  }

  test("exec answers after a live migration to another daemon, a restore and a clone", {
    timeout: BOOT_TIMEOUT_MS + 4 * MOVED_TIMEOUT_MS + 60_000,
  }, async (t) => {
    if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
    const { kernel, initrd } = await riscv64Image();
    const a = await daemon();
    const b = await daemon();
    const call = async (d: typeof a, method: "GET" | "POST", url: string, payload?: object) => {
      const r = await d.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      return { status: r.statusCode, text: r.body, json: r.json() as ExecAnswer };
    };
    /** The VM's console tail (where it is still there) and the daemon's log, for failure messages. */
    const context = (d: typeof a, vm: string) => {
      let tail = "(gone)";
      try {
        tail = Buffer.from(d.manager.console(vm).contents()).toString("latin1").slice(-1500);
      } catch {}
      return `--- console of ${vm} (tail)\n${tail}\n--- log\n${d.logs.join("\n")}`;
    };
    /** Polls exec until the agent answers (409 while it has not), within `ms`. */
    const execUntil = async (d: typeof a, vm: string, ms: number) => {
      const started = performance.now();
      const body = { argv: ["sh", "-c", "echo agent-here-$((6*7))"] };
      let r = await call(d, "POST", `/vms/${vm}/exec`, body);
      while (r.status === 409 && performance.now() - started < ms) {
        await sleep(1000);
        r = await call(d, "POST", `/vms/${vm}/exec`, body);
      }
      assert.equal(r.status, 200, `${vm}: ${r.text}\n${context(d, vm)}`);
      assert.equal(r.json.exitCode, 0);
      assert.equal(r.json.stdout, "agent-here-42\n");
      return (performance.now() - started) / 1000;
    };

    const created = await call(a, "POST", "/vms", debianVmBody({ kernel, initrd }, "g"));
    assert.equal(created.status, 201, created.text);
    assert.equal((await call(a, "POST", "/vms/g/actions/start")).status, 200);
    const booted = await execUntil(a, "g", BOOT_TIMEOUT_MS);

    // Live migration: the target's VM gets a socket of the target daemon's, the agent answers there.
    const listen = join(scratch, "migrate.sock");
    const waiting = await call(b, "POST", "/vms/migrate-in", { name: "moved", listen });
    assert.equal(waiting.status, 201, waiting.text);
    const moved = await call(a, "POST", "/vms/g/migrate", { to: listen });
    assert.equal(moved.status, 200, `${moved.text}\n${context(a, "g")}`);
    assert.equal((await call(a, "GET", "/vms/g")).status, 404);
    const afterMigration = await execUntil(b, "moved", MOVED_TIMEOUT_MS);

    // A snapshot of the migrated VM, restored beside it (it runs at once): each agent answers on its own.
    const snap = join(scratch, "snap");
    const saved = await call(b, "POST", "/vms/moved/snapshot", { path: snap, resume: true });
    assert.equal(saved.status, 200, saved.text);
    const afterSnapshot = await execUntil(b, "moved", MOVED_TIMEOUT_MS);
    const restored = await call(b, "POST", "/vms", { name: "back", restore: snap });
    assert.equal(restored.status, 201, restored.text);
    const afterRestore = await execUntil(b, "back", MOVED_TIMEOUT_MS);
    // A clone in the first daemon, which has no VM left: it keeps the saved CID (the lowest free one).
    const cloned = await call(a, "POST", "/vms", { name: "copy", clone: snap });
    assert.equal(cloned.status, 201, cloned.text);
    assert.equal((cloned.json as unknown as { spec: { vsock?: { cid: number } } }).spec.vsock?.cid, 3);
    const afterClone = await execUntil(a, "copy", MOVED_TIMEOUT_MS);
    // Each is its own guest: a file made in one is not in the others.
    const touch = await call(b, "POST", "/vms/back/exec", {
      argv: ["sh", "-c", "echo only-back > /tmp/mark"],
    });
    assert.equal(touch.json.exitCode, 0, touch.text);
    for (const [d, other] of [
      [b, "moved"],
      [a, "copy"],
    ] as const) {
      const look = await call(d, "POST", `/vms/${other}/exec`, { argv: ["cat", "/tmp/mark"] });
      assert.notEqual(look.json.exitCode, 0, look.text);
    }
    t.diagnostic(
      `agent answered: ${booted.toFixed(1)} s after boot, ${afterMigration.toFixed(1)} s after the migration, ` +
        `${afterSnapshot.toFixed(1)} s after the snapshot, ${afterRestore.toFixed(1)} s after the restore, ` +
        `${afterClone.toFixed(1)} s after the clone`,
    );
  });
});
