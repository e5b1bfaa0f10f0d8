/**
 * Snapshots through the daemon: a riscv64 VM (in its worker thread) saved by POST /vms/{id}/snapshot,
 * restored under a new name and cloned three times by POST /vms; each goes on counting from where the
 * snapshot was taken, the clones with MACs, vsock CIDs and disks of their own; `vireo vm snapshot`,
 * `restore` and `clone`; a snapshot that cannot be read leaves nothing defined.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "../support/test.js";
import {
  api,
  cli,
  counterGuest,
  counterSpec,
  type Daemon,
  startDaemon,
  tempDir,
  toolchainMissing,
  until,
} from "./support.js";

const missing = toolchainMissing();

interface Info {
  name: string;
  state: string;
  spec: { nics: { mac?: string }[]; vsock?: { cid: number }; drives: { id: string; path: string }[] };
}

/** The counters of every complete "tick N" line, in order. */
function ticks(text: string): number[] {
  return text
    .split("\n")
    .slice(0, -1)
    .map((l) => Number.parseInt(/^tick ([0-9a-f]{16})$/.exec(l)?.[1] ?? "NaN", 16));
}

describe("snapshots through the daemon", { skip: missing }, () => {
  let dir: string;
  let daemon: Daemon;
  before(async () => {
    dir = tempDir();
    const kernel = counterGuest(dir);
    writeFileSync(join(dir, "disk.img"), new Uint8Array(1 << 20));
    daemon = await startDaemon(dir);
    const spec = counterSpec("orig", kernel, {
      drives: [{ id: "data", path: join(dir, "disk.img"), readOnly: false }],
      nics: [{ backend: "switch:snap", mac: "52:54:00:12:34:56" }],
      vsock: { cid: 7 },
    });
    const created = await api(daemon.socket, "POST", "/vms", spec);
    assert.equal(created.status, 201, created.text);
  });
  after(async () => {
    if (daemon.child.exitCode === null) {
      daemon.child.kill("SIGKILL");
      await daemon.exited;
    }
  });

  const consoleOf = async (name: string) => (await api(daemon.socket, "GET", `/vms/${name}/console`)).text;

  test("snapshot, restore and three clones each count on from the snapshot", {
    timeout: 120_000,
  }, async () => {
    const s = daemon.socket;
    assert.equal((await api(s, "POST", "/vms/orig/actions/start")).status, 200);
    await until(
      () => consoleOf("orig"),
      (t) => ticks(t).length >= 20,
    );
    const snap = join(dir, "snap");
    const bad = await api(s, "POST", "/vms/orig/snapshot", { path: "relative/dir" });
    assert.equal(bad.status, 400, bad.text);
    const saved = await api(s, "POST", "/vms/orig/snapshot", { path: snap, resume: false });
    assert.equal(saved.status, 200, saved.text);
    assert.ok((saved.json as { pages: number }).pages > 0);
    assert.equal(((await api(s, "GET", "/vms/orig")).json as Info).state, "paused");
    const before = await consoleOf("orig");
    // The original holds its disk's lock while it exists: a restore of the same disk is refused.
    const locked = await api(s, "POST", "/vms", { name: "again", restore: snap });
    assert.equal(locked.status, 400, locked.text);
    assert.match((locked.json as { message: string }).message, /locked/);
    assert.equal((await api(s, "GET", "/vms/again")).status, 404);
    assert.equal((await api(s, "POST", "/vms/orig/actions/kill")).status, 200);

    const restored = await api(s, "POST", "/vms", { name: "again", restore: snap });
    assert.equal(restored.status, 201, restored.text);
    assert.equal((restored.json as Info).state, "running");
    const clones: Info[] = [];
    for (const name of ["c1", "c2", "c3"]) {
      const r = await api(s, "POST", "/vms", { name, clone: snap });
      assert.equal(r.status, 201, r.text);
      clones.push(r.json as Info);
    }
    for (const name of ["again", "c1", "c2", "c3"]) {
      const after = await until(
        () => consoleOf(name),
        (t) => ticks(t).length >= 10,
      );
      const all = ticks(before + after);
      assert.deepEqual(
        all,
        all.map((_, i) => i),
        `${name} goes on from the snapshot`,
      );
    }
    // The clones are VMs of their own: MACs, CIDs and disks differ from the original's and each other's.
    const macs = clones.map((c) => c.spec.nics[0]?.mac);
    const cids = clones.map((c) => c.spec.vsock?.cid);
    const disks = clones.map((c) => c.spec.drives[0]?.path as string);
    assert.equal(new Set([...macs, "52:54:00:12:34:56"]).size, 4, `MACs ${macs}`);
    assert.equal(new Set([...cids, 7]).size, 4, `CIDs ${cids}`);
    assert.equal(new Set([...disks, join(dir, "disk.img")]).size, 4);
    for (const d of disks) assert.ok(existsSync(d) && d.startsWith(join(snap, "clones")), d);
    // The restored VM keeps the original's identity (it is the same machine, continued).
    const again = (restored.json as Info).spec;
    assert.equal(again.nics[0]?.mac, "52:54:00:12:34:56");
    assert.equal(again.vsock?.cid, 7);
    // Fewer guests spinning on this machine's cores for the tests that follow.
    for (const name of ["again", "c2", "c3"]) {
      assert.equal((await api(s, "POST", `/vms/${name}/actions/kill`)).status, 200);
    }
  });

  test("a snapshot that cannot be read defines nothing", { timeout: 60_000 }, async () => {
    const s = daemon.socket;
    const gone = await api(s, "POST", "/vms", { name: "ghost", restore: join(dir, "no-such-snapshot") });
    assert.equal(gone.status, 400, gone.text);
    assert.match((gone.json as { message: string }).message, /cannot read the snapshot/);
    const corrupt = join(dir, "corrupt");
    spawnSync("cp", ["-r", join(dir, "snap"), corrupt]);
    const state = readFileSync(join(corrupt, "state.vsnap"));
    state[100] = (state[100] as number) ^ 0xff;
    writeFileSync(join(corrupt, "state.vsnap"), state);
    const flipped = await api(s, "POST", "/vms", { name: "ghost", clone: corrupt });
    assert.equal(flipped.status, 400, flipped.text);
    assert.match((flipped.json as { message: string }).message, /CRC-64 mismatch/);
    assert.equal((await api(s, "GET", "/vms/ghost")).status, 404);
    const relative = await api(s, "POST", "/vms", { name: "ghost", restore: "snap" });
    assert.equal(relative.status, 400);
  });

  test("vireo vm snapshot, restore and clone", { timeout: 60_000 }, async () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [cli, "vm", ...args, "--socket", daemon.socket], { encoding: "utf8" });
    const snap = join(dir, "cli-snap");
    const saved = run("snapshot", "c1", snap, "--zlib");
    assert.equal(saved.status, 0, saved.stderr);
    assert.match(saved.stdout, /^c1: saved to .*cli-snap/);
    assert.equal(((await api(daemon.socket, "GET", "/vms/c1")).json as Info).state, "running");
    // c1's disk goes to the restored VM.
    assert.equal((await api(daemon.socket, "POST", "/vms/c1/actions/kill")).status, 200);
    const restored = run("restore", snap, "--name", "cli-restored");
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, /^restored cli-restored .*: running/);
    const cloned = run("clone", snap, "--name", "cli-clone");
    assert.equal(cloned.status, 0, cloned.stderr);
    assert.match(cloned.stdout, /^cloned cli-clone .*: running/);
    const missingName = run("clone", snap);
    assert.equal(missingName.status, 2);
    assert.match(missingName.stderr, /needs --name NEW/);
  });
});
