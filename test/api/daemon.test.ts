/**
 * `vireo daemon` end to end, no mocks: a real daemon child process on a temporary socket and state
 * directory, real bare-metal riscv64 guests (test/guest-daemon/counter.S), the real `vireo vm` CLI.
 * One daemon serves the lifecycle, isolation, bad-input and CLI tests; a second run on the same state
 * directory checks the restart.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { guestImages, kvmUnavailable, guest as x86Guest } from "../kvm/support.js";
import { after, before, describe, test } from "../support/test.js";
import {
  api,
  cli,
  counterGuest,
  counterSpec,
  type Daemon,
  sleep,
  startDaemon,
  tempDir,
  toolchainMissing,
  until,
} from "./support.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stdout.write(`# skipping the daemon tests: ${missing}\n`);

interface Info {
  id: string;
  name: string;
  state: string;
  reason?: string;
}

const instructions = async (d: Daemon, name: string) =>
  ((await api(d.socket, "GET", `/vms/${name}/stats`)).json as { instructions: number }).instructions;

describe("vireo daemon", { skip: missing !== undefined }, () => {
  let dir: string;
  let kernel: string;
  let daemon: Daemon;

  before(async () => {
    dir = tempDir();
    kernel = counterGuest(dir);
    daemon = await startDaemon(dir, { VIREO_TEST_HOOKS: "1" });
  });

  after(async () => {
    if (daemon.child.exitCode === null) {
      daemon.child.kill("SIGKILL");
      await daemon.exited;
    }
  });

  test("three VMs run at once; a paused one retires nothing while the others go on", {
    timeout: 60_000,
  }, async () => {
    const names = ["a", "b", "c"];
    for (const name of names) {
      const r = await api(
        daemon.socket,
        "POST",
        "/vms",
        counterSpec(name, kernel, { labels: { group: "abc" } }),
      );
      assert.equal(r.status, 201, r.text);
    }
    const again = await api(
      daemon.socket,
      "POST",
      "/vms",
      counterSpec("a", kernel, { labels: { group: "abc" } }),
    );
    assert.equal(again.status, 200, "the same spec again is idempotent");
    const different = await api(daemon.socket, "POST", "/vms", counterSpec("a", kernel, { cpus: 2 }));
    assert.equal(different.status, 409, different.text);

    for (const name of names) {
      const r = await api(daemon.socket, "POST", `/vms/${name}/actions/start`);
      assert.equal(r.status, 200, r.text);
      assert.equal((r.json as Info).state, "running");
    }
    const again409 = await api(daemon.socket, "POST", "/vms/a/actions/start");
    assert.equal(again409.status, 409, "starting a running VM is a conflict");

    for (const name of names) {
      const text = await until(
        async () => (await api(daemon.socket, "GET", `/vms/${name}/console`)).text,
        (t) => t.includes("tick 0000000000000001"),
      );
      assert.match(text, /^tick 0000000000000000\n/);
    }
    const listed = (await api(daemon.socket, "GET", "/vms?label=group=abc")).json as Info[];
    assert.deepEqual(listed.map((v) => v.name).sort(), names);

    assert.equal((await api(daemon.socket, "POST", "/vms/b/actions/pause")).status, 200);
    const paused1 = await instructions(daemon, "b");
    const a1 = await instructions(daemon, "a");
    const c1 = await instructions(daemon, "c");
    // Compare counts, not times: wait until both others have advanced, then read b again.
    await until(
      async () => [await instructions(daemon, "a"), await instructions(daemon, "c")],
      ([a, c]) => (a as number) > a1 && (c as number) > c1,
    );
    const paused2 = await instructions(daemon, "b");
    assert.ok(paused1 > 0);
    assert.equal(paused2, paused1, "a paused VM retires no instruction");
    assert.equal((await api(daemon.socket, "POST", "/vms/b/actions/pause")).status, 409);

    assert.equal((await api(daemon.socket, "POST", "/vms/b/actions/resume")).status, 200);
    await until(
      () => instructions(daemon, "b"),
      (n) => n > paused2,
    );

    for (const name of names) {
      const r = await api(daemon.socket, "POST", `/vms/${name}/actions/stop?grace_ms=0`);
      assert.equal(r.status, 200, r.text);
      assert.equal((r.json as Info).state, "stopped");
    }
    const files = readdirSync(join(dir, "state", "vms")).sort();
    assert.deepEqual(files, ["a.json", "b.json", "c.json"]);
    const saved = JSON.parse(readFileSync(join(dir, "state", "vms", "a.json"), "utf8"));
    assert.equal(saved.spec.name, "a");
    for (const name of names) assert.equal((await api(daemon.socket, "DELETE", `/vms/${name}`)).status, 204);
    assert.deepEqual(readdirSync(join(dir, "state", "vms")), []);
    assert.equal((await api(daemon.socket, "GET", "/vms/a")).status, 404);
  });

  test("a VM whose device throws ends failed; the daemon and the other VM go on", {
    timeout: 60_000,
  }, async () => {
    const faulty = counterSpec("faulty", kernel, { labels: { "vireo.test/fault": "console" } });
    assert.equal((await api(daemon.socket, "POST", "/vms", faulty)).status, 201);
    assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec("healthy", kernel))).status, 201);
    assert.equal((await api(daemon.socket, "POST", "/vms/healthy/actions/start")).status, 200);
    assert.equal((await api(daemon.socket, "POST", "/vms/faulty/actions/start")).status, 200);
    const failed = await until(
      async () => (await api(daemon.socket, "GET", "/vms/faulty")).json as Info,
      (v) => v.state !== "running",
    );
    assert.equal(failed.state, "failed");
    assert.match(failed.reason ?? "", /test hook/);
    const before = await instructions(daemon, "healthy");
    await until(
      () => instructions(daemon, "healthy"),
      (n) => n > before,
    );
    assert.equal(((await api(daemon.socket, "GET", "/vms/healthy")).json as Info).state, "running");
    assert.equal((await api(daemon.socket, "POST", "/vms/faulty/actions/stop")).status, 409);
    for (const name of ["faulty", "healthy"]) {
      assert.equal((await api(daemon.socket, "DELETE", `/vms/${name}`)).status, 204);
    }
  });

  test("bad input: 400 naming the field or the file, 404, 413, garbage and a stalled client", {
    timeout: 60_000,
  }, async () => {
    const field = await api(daemon.socket, "POST", "/vms", { ...counterSpec("x", kernel), cpus: "two" });
    assert.equal(field.status, 400);
    assert.ok(
      (field.json as { fields: { path: string }[] }).fields.some((f) => f.path === "/cpus"),
      field.text,
    );
    const json = await api(daemon.socket, "POST", "/vms", undefined, {
      bytes: '{"name":',
      type: "application/json",
    });
    assert.equal(json.status, 400);
    assert.equal((json.json as { error: string }).error, "invalid");
    const file = await api(daemon.socket, "POST", "/vms", counterSpec("x", join(dir, "no-such-kernel")));
    assert.equal(file.status, 400);
    assert.match(file.text, /\/boot\/kernel.*no-such-kernel/);
    const notRegular = await api(daemon.socket, "POST", "/vms", counterSpec("x", dir));
    assert.equal(notRegular.status, 400);
    assert.match(notRegular.text, /not a regular file/);
    assert.equal((await api(daemon.socket, "GET", "/vms/nobody")).status, 404);
    assert.equal((await api(daemon.socket, "POST", "/vms/nobody/actions/start")).status, 404);
    assert.equal((await api(daemon.socket, "POST", "/vms/x/actions/reboot-now")).status, 400);
    // A 10 MiB body: refused from its announced length, before it is read.
    const big = await oversized(daemon.socket, 10 * 1024 * 1024);
    assert.match(big, /^HTTP\/1\.1 413 /, big);
    assert.ok(!big.includes("    at "), "no stack trace");

    // Garbage bytes: the daemon answers or closes that connection, and answers the next one.
    await new Promise<void>((done) => {
      const s = connect(daemon.socket, () => s.end(Buffer.from([0, 1, 2, 255, 13, 10, 13, 10, 7, 7])));
      s.on("close", () => done());
      s.on("error", () => done());
      s.resume();
    });
    // Half a request, then silence: the others are served meanwhile.
    const stalled = connect(daemon.socket, () =>
      stalled.write('POST /vms HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"na'),
    );
    stalled.on("error", () => {});
    await sleep(100);
    const health = await api(daemon.socket, "GET", "/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { ok: true });
    stalled.destroy();
    const host = (await api(daemon.socket, "GET", "/host")).json as { cpus: number; damaged: unknown[] };
    assert.ok(host.cpus >= 1);
    assert.equal(daemon.child.exitCode, null);
  });

  test("vireo vm create/list/show/start/stats/stop/rm, tables and --json", { timeout: 60_000 }, async () => {
    const specFile = join(dir, "spec.json");
    writeFileSync(specFile, JSON.stringify(counterSpec("ignored", "counter.elf")));
    const vm = (...args: string[]) => {
      const r = spawnSync(process.execPath, [cli, "vm", ...args, "--socket", daemon.socket], {
        encoding: "utf8",
        timeout: 30_000,
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    // A relative kernel path is taken relative to the spec file.
    const created = vm("create", "--name", "cli1", "--spec", specFile, "--json");
    assert.equal(created.status, 0, created.stderr);
    assert.equal(JSON.parse(created.stdout).name, "cli1");
    assert.equal(JSON.parse(created.stdout).spec.boot.kernel, kernel);
    const list = vm("list");
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^NAME +STATE +ARCH/);
    assert.match(list.stdout, /\ncli1 +created +riscv64 +1 +16 MiB/);
    assert.equal(vm("start", "cli1").stdout, "cli1: running\n");
    const again = vm("start", "cli1");
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^vireo: cannot start VM 'cli1': it is running\n$/);
    await until(
      async () => JSON.parse(vm("stats", "cli1", "--json").stdout).instructions as number,
      (n) => n > 0,
    );
    assert.match(vm("stats", "cli1").stdout, /^instructions: \d+$/m);
    assert.equal(JSON.parse(vm("show", "cli1", "--json").stdout).state, "running");
    assert.match(vm("show", "cli1").stdout, /^state: +running$/m);
    const stopped = vm("stop", "cli1", "--grace-ms", "0", "--json");
    assert.equal(JSON.parse(stopped.stdout).state, "stopped");
    assert.equal(vm("rm", "cli1").stdout, "deleted cli1\n");
    const gone = vm("show", "cli1");
    assert.equal(gone.status, 2);
    assert.equal(gone.stderr, "vireo: no VM 'cli1'\n");
    const badFlag = vm("list", "--colour");
    assert.equal(badFlag.status, 2);
    assert.equal(badFlag.stderr.split("\n").length, 2, "one line");
    const noDaemon = spawnSync(process.execPath, [cli, "vm", "list", "--socket", join(dir, "none.sock")], {
      encoding: "utf8",
    });
    assert.equal(noDaemon.status, 2);
    assert.match(noDaemon.stderr, /no daemon listens on/);
  });

  test("x86_64 VMs on KVM through the same API: pause/resume, stop by Ctrl-Alt-Del", {
    timeout: 60_000,
  }, async (t) => {
    const why = kvmUnavailable();
    const images = why === undefined ? guestImages() : null;
    if (why !== undefined || (images !== null && "error" in images)) {
      const reason = why ?? (images as { error: string }).error;
      process.stdout.write(`# skipping the KVM daemon test: ${reason}\n`);
      t.skip(reason);
      return;
    }
    const x86Spec = (name: string, guest: string) => ({
      ...counterSpec(name, x86Guest(guest)),
      arch: "x86_64",
      boot: { kernel: x86Guest(guest) },
    });
    type Exits = { exits: { total: number; forwarded: number; localPio: number } };
    const exits = async (name: string) =>
      ((await api(daemon.socket, "GET", `/vms/${name}/stats`)).json as Exits).exits;
    // kbd polls the i8042 (an exit per look) until it has read Ctrl-Alt-Del, then resets.
    assert.equal((await api(daemon.socket, "POST", "/vms", x86Spec("kbd", "kbd"))).status, 201);
    assert.equal((await api(daemon.socket, "POST", "/vms/kbd/actions/start")).status, 200);
    await until(
      async () => (await api(daemon.socket, "GET", "/vms/kbd/console")).text,
      (text) => text === "keyboard\n",
    );
    assert.equal((await api(daemon.socket, "POST", "/vms/kbd/actions/pause")).status, 200);
    const paused1 = await exits("kbd");

    const created = await api(daemon.socket, "POST", "/vms", x86Spec("x86", "hello"));
    assert.equal(created.status, 201, created.text);
    assert.equal((await api(daemon.socket, "POST", "/vms/x86/actions/start")).status, 200);
    const ended = await until(
      async () => (await api(daemon.socket, "GET", "/vms/x86")).json as Info & { exit?: { reason: string } },
      (v) => v.state !== "running",
    );
    assert.equal(ended.state, "stopped", JSON.stringify(ended));
    assert.ok((await api(daemon.socket, "GET", "/vms/x86/console")).text.length > 0);
    const stats = (await api(daemon.socket, "GET", "/vms/x86/stats")).json as {
      arch: string;
      exits?: { total: number };
    };
    assert.equal(stats.arch, "x86_64");
    assert.ok((stats.exits?.total ?? 0) > 0);
    assert.equal((await api(daemon.socket, "DELETE", "/vms/x86")).status, 204);

    // Another VM ran from start to end meanwhile; the paused one did not exit once.
    assert.deepEqual(await exits("kbd"), paused1);
    assert.equal((await api(daemon.socket, "POST", "/vms/kbd/actions/resume")).status, 200);
    await until(
      () => exits("kbd"),
      (e) => e.total > paused1.total,
    );
    // stop presses Ctrl-Alt-Del; the guest reads it and resets itself well within the grace period.
    const stopped = await api(daemon.socket, "POST", "/vms/kbd/actions/stop?grace_ms=60000");
    assert.equal(stopped.status, 200, stopped.text);
    assert.deepEqual((stopped.json as Info & { exit?: unknown }).exit, { reason: "reboot" });
    assert.equal(
      (await api(daemon.socket, "GET", "/vms/kbd/console")).text,
      "keyboard\n1d 38 e0 53 e0 d3 b8 9d \n",
    );
    assert.equal((await api(daemon.socket, "DELETE", "/vms/kbd")).status, 204);
  });

  test("SIGTERM stops the VMs and exits 0; a restart brings definitions and autostart back", {
    timeout: 60_000,
  }, async () => {
    assert.equal(
      (await api(daemon.socket, "POST", "/vms", counterSpec("auto", kernel, { autostart: true }))).status,
      201,
    );
    assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec("manual", kernel))).status, 201);
    assert.equal((await api(daemon.socket, "POST", "/vms/auto/actions/start")).status, 200);
    writeFileSync(join(dir, "state", "vms", "broken.json"), "{ not json");
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0, daemon.log());
    assert.match(daemon.log(), /VM 'auto' stopped/);
    assert.equal(existsSync(daemon.socket), false, "the socket is removed");

    daemon = await startDaemon(dir, { VIREO_TEST_HOOKS: "1" });
    assert.equal(statSync(daemon.socket).mode & 0o777, 0o600);
    const vms = (await api(daemon.socket, "GET", "/vms")).json as Info[];
    const byName = Object.fromEntries(vms.map((v) => [v.name, v.state]));
    assert.deepEqual(byName, { auto: "running", manual: "created" });
    const host = (await api(daemon.socket, "GET", "/host")).json as { damaged: { file: string }[] };
    assert.deepEqual(
      host.damaged.map((d) => d.file),
      [join(dir, "state", "vms", "broken.json")],
    );
    assert.match(daemon.log(), /skipping damaged definition .*broken\.json/);
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0, daemon.log());
  });
});

/**
 * Starts a POST that announces a body of `size` bytes over a raw connection and returns the daemon's
 * answer. It must come from the announced length alone: sending any of the bytes would race the
 * daemon's close (a write meeting EPIPE discards the unread answer), and a daemon that waited for them
 * would never answer here.
 */
async function oversized(socket: string, size: number): Promise<string> {
  const s = connect(socket);
  let answer = "";
  let closed = false;
  s.on("data", (d: Buffer) => {
    answer += d.toString("latin1");
  });
  s.on("error", () => {});
  const done = new Promise<void>((resolve) =>
    s.on("close", () => {
      closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve) => s.once("connect", () => resolve()));
  s.write(
    `POST /vms HTTP/1.1\r\nHost: vireo\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
  );
  await until(
    async () => answer,
    (a) => closed || /\r\n\r\n/.test(a),
  );
  s.destroy();
  await done;
  return answer;
}
