/**
 * Live migration between two daemons on this machine: the target waits (POST /vms/migrate-in), `vireo
 * vm migrate NAME --to SOCKET` moves a counting riscv64 VM (each side in its worker thread), the count
 * goes on on the target, the source no longer has the VM, and passes, bytes and downtime are reported.
 * A target that is not there or hangs up mid-way fails the request, and the VM runs on at the source; a
 * writable disk is handed over to the target daemon (and taken back when the migration fails late).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { FileBlockBackend } from "../../src/host/block-file.js";
import { encodeFrame, FrameReader, FrameType } from "../../src/snapshot/migration-wire.js";
import { buildBareMetal } from "../support/bare-metal.js";
import { after, before, describe, test } from "../support/test.js";
import {
  api,
  cli,
  counterSpec,
  type Daemon,
  killDaemons,
  toolchainMissing,
  twoDaemons,
  until,
} from "./support.js";

const missing = toolchainMissing();

/** The counters of the complete "tick N" lines (a line cut by the move may open the target's console). */
function ticks(text: string): number[] {
  return text
    .split("\n")
    .slice(0, -1)
    .map((l) => /^tick ([0-9a-f]{16})$/.exec(l)?.[1])
    .filter((m): m is string => m !== undefined)
    .map((m) => Number.parseInt(m, 16));
}

describe("live migration between two daemons", { skip: missing }, () => {
  let dir: string;
  let kernel: string;
  let source: Daemon;
  let target: Daemon;
  before(async () => {
    ({ dir, kernel, source, target } = await twoDaemons());
  });
  after(() => killDaemons(source, target));

  const consoleOf = async (d: Daemon, name: string) =>
    (await api(d.socket, "GET", `/vms/${name}/console`)).text;

  test("vireo vm migrate moves a counting VM: it counts on at the target and is gone here", {
    timeout: 120_000,
  }, async () => {
    const created = await api(source.socket, "POST", "/vms", counterSpec("orig", kernel));
    assert.equal(created.status, 201, created.text);
    assert.equal((await api(source.socket, "POST", "/vms/orig/actions/start")).status, 200);
    await until(
      () => consoleOf(source, "orig"),
      (t) => ticks(t).length >= 10,
    );
    const listen = join(dir, "b", "migrate.sock");
    const relative = await api(target.socket, "POST", "/vms/migrate-in", { name: "moved", listen: "x.sock" });
    assert.equal(relative.status, 400, relative.text);
    const open = await api(target.socket, "POST", "/vms/migrate-in", {
      name: "moved",
      listen: "0.0.0.0:7777",
    });
    assert.equal(open.status, 400, open.text);
    assert.match(open.text, /loopback only/);
    const waiting = await api(target.socket, "POST", "/vms/migrate-in", { name: "moved", listen });
    assert.equal(waiting.status, 201, waiting.text);
    const twice = await api(target.socket, "POST", "/vms/migrate-in", { name: "moved", listen });
    assert.equal(twice.status, 409, twice.text);
    const seen = ticks(await consoleOf(source, "orig"));
    const r = spawnSync(
      process.execPath,
      [cli, "vm", "migrate", "orig", "--to", listen, "--socket", source.socket, "--json"],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      passes: number;
      bytes: number;
      totalMs: number;
      downtimeMs: number;
    };
    assert.ok(result.passes >= 2, `${result.passes} passes`);
    assert.ok(result.bytes > 0);
    assert.ok(result.downtimeMs > 0 && result.downtimeMs <= result.totalMs, JSON.stringify(result));
    assert.equal((await api(source.socket, "GET", "/vms/orig")).status, 404, "the source VM is gone");
    const moved = await api(target.socket, "GET", "/vms/moved");
    assert.equal(moved.status, 200, moved.text);
    assert.equal((moved.json as { state: string }).state, "running");
    const there = await until(
      async () => ticks(await consoleOf(target, "moved")),
      (t) => t.length >= 5,
    );
    const last = seen[seen.length - 1] as number;
    assert.ok((there[0] as number) > last, `the count goes on (${last} here, then ${there[0]} there)`);
    assert.deepEqual(
      there,
      there.map((_, i) => (there[0] as number) + i),
      "no number lost or doubled on the target",
    );
    console.log(`daemon to daemon: ${JSON.stringify(result)}`);
  });

  test("a guest busy writing memory moves between the daemons and counts on, no page lost", {
    timeout: 120_000,
  }, async () => {
    const busy = buildBareMetal("test/guest-daemon/scribbler.S", join(dir, "scribbler.elf"));
    assert.equal((await api(source.socket, "POST", "/vms", counterSpec("busy", busy))).status, 201);
    assert.equal((await api(source.socket, "POST", "/vms/busy/actions/start")).status, 200);
    await until(
      () => consoleOf(source, "busy"),
      (t) => ticks(t).length >= 10,
    );
    const listen = join(dir, "b", "busy.sock");
    const waits = spawnSync(
      process.execPath,
      [cli, "vm", "migrate-in", "busy", "--listen", listen, "--socket", target.socket],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.equal(waits.status, 0, waits.stderr);
    assert.match(waits.stdout, /waiting for busy at /);
    const moved = await api(source.socket, "POST", "/vms/busy/migrate", { to: listen });
    assert.equal(moved.status, 200, moved.text);
    const result = moved.json as { passes: number; pages: number; downtimeMs: number };
    assert.ok(result.passes >= 2 && result.pages >= 2 * 512, JSON.stringify(result));
    const there = await until(
      async () => await consoleOf(target, "busy"),
      (t) => ticks(t).length >= 10,
    );
    assert.doesNotMatch(there, /^bad$/m, "every page the guest wrote arrived");
    const n = ticks(there);
    assert.deepEqual(
      n,
      n.map((_, i) => (n[0] as number) + i),
    );
    console.log(`busy guest, daemon to daemon: ${moved.text}`);
  });

  test("a target that is not there or hangs up: the request fails and the VM runs on", {
    timeout: 60_000,
  }, async () => {
    const created = await api(source.socket, "POST", "/vms", counterSpec("stays", kernel));
    assert.equal(created.status, 201, created.text);
    assert.equal((await api(source.socket, "POST", "/vms/stays/actions/start")).status, 200);
    const nobody = await api(source.socket, "POST", "/vms/stays/migrate", { to: join(dir, "nobody.sock") });
    assert.equal(nobody.status, 409, nobody.text);
    assert.match(nobody.text, /runs on here.*cannot reach/);
    const hangUp = join(dir, "hangup.sock");
    // Accepts START, then hangs up as the first pass arrives.
    const server = createServer((s) => {
      let chunks = 0;
      s.on("data", () => {
        if (chunks++ === 0)
          s.write(Buffer.from([16, 0, 0, 0, 0])); // ACCEPT
        else s.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(hangUp, resolve));
    const broken = await api(source.socket, "POST", "/vms/stays/migrate", { to: hangUp });
    server.close();
    assert.equal(broken.status, 409, broken.text);
    assert.match(broken.text, /runs on here/);
    const info = await api(source.socket, "GET", "/vms/stays");
    assert.equal((info.json as { state: string }).state, "running");
    const before = ticks(await consoleOf(source, "stays")).length;
    await until(
      async () => ticks(await consoleOf(source, "stays")).length,
      (n) => n >= before + 3,
    );
    // A VM with a writable disk: a target that takes everything and then hangs up before RUNNING leaves
    // the source running with its disk locked again; then the real target takes the disk over.
    const disk = join(dir, "disk.img");
    writeFileSync(disk, new Uint8Array(1 << 20));
    const withDisk = counterSpec("disked", kernel, { drives: [{ id: "data", path: disk, readOnly: false }] });
    assert.equal((await api(source.socket, "POST", "/vms", withDisk)).status, 201);
    assert.equal((await api(source.socket, "POST", "/vms/disked/actions/start")).status, 200);
    const silent = join(dir, "silent.sock");
    const taker = createServer((s) => {
      const reader = new FrameReader();
      s.on("data", (chunk: Buffer) => {
        reader.push(new Uint8Array(chunk));
        for (let f = reader.take(); f !== undefined; f = reader.take()) {
          if (f.type === FrameType.START) s.write(encodeFrame(FrameType.ACCEPT));
          if (f.type === FrameType.COMPLETE) s.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => taker.listen(silent, resolve));
    const lost = await api(source.socket, "POST", "/vms/disked/migrate", { to: silent });
    taker.close();
    assert.equal(lost.status, 409, lost.text);
    assert.match(lost.text, /runs on here.*closed/);
    assert.equal(
      ((await api(source.socket, "GET", "/vms/disked")).json as { state: string }).state,
      "running",
    );
    await assert.rejects(FileBlockBackend.open(disk), /locked/, "the source holds its disk again");
    const listen = join(dir, "b", "disked.sock");
    assert.equal(
      (await api(target.socket, "POST", "/vms/migrate-in", { name: "disked", listen })).status,
      201,
    );
    const moved = await api(source.socket, "POST", "/vms/disked/migrate", { to: listen });
    assert.equal(moved.status, 200, moved.text);
    assert.equal((await api(source.socket, "GET", "/vms/disked")).status, 404);
    assert.equal(
      ((await api(target.socket, "GET", "/vms/disked")).json as { state: string }).state,
      "running",
    );
    await assert.rejects(FileBlockBackend.open(disk), /locked/, "the target holds the disk now");
    const r = spawnSync(process.execPath, [cli, "vm", "migrate", "stays", "--socket", source.socket], {
      encoding: "utf8",
    });
    assert.equal(r.status, 2, "no --to: a usage error");
    assert.match(r.stderr, /needs --to SOCKET/);
  });
});
