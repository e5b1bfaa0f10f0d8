/**
 * The daemon's operations surface end to end (a real daemon child process, the counter guest):
 * GET /events, GET /metrics, the TCP listener and its token, the reboot action, the balloon of a VM in
 * a worker thread through the API and `vireo vm balloon`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { WebSocket } from "ws";
import { after, before, describe, test } from "../support/test.js";
import {
  type FlagDaemon,
  openConsole,
  openEvents,
  startDaemonWith,
  stopDaemon,
  tcpGet,
} from "./console-support.js";
import { api, cli, counterGuest, counterSpec, tempDir, toolchainMissing, until } from "./support.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stdout.write(`# skipping the daemon operations tests: ${missing}\n`);

interface Event {
  type: string;
  vm: { name: string; state: string };
}

/** `vireo_vm_instructions_total{vm="NAME"} N` from Prometheus text, or undefined. */
function sample(text: string, metric: string, labels: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${metric}{${labels}} `))
      return Number(line.slice(metric.length + labels.length + 3));
  }
  return undefined;
}

describe("daemon events, metrics, TCP, reboot", { skip: missing !== undefined }, () => {
  let dir: string;
  let daemon: FlagDaemon;
  let kernel: string;
  let port: number;

  before(async () => {
    dir = tempDir();
    kernel = counterGuest(dir);
    daemon = await startDaemonWith(dir, ["--listen", "127.0.0.1:0"]);
    const m = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(daemon.log());
    assert.ok(m !== null, daemon.log());
    port = Number(m[1]);
  });

  after(() => stopDaemon(daemon));

  test("create, start, stop, delete produce events in order", { timeout: 30_000 }, async () => {
    const stream = await openEvents(daemon.socket);
    try {
      assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec("ev", kernel))).status, 201);
      assert.equal((await api(daemon.socket, "POST", "/vms/ev/actions/start")).status, 200);
      assert.equal((await api(daemon.socket, "POST", "/vms/ev/actions/stop?grace_ms=0")).status, 200);
      assert.equal((await api(daemon.socket, "DELETE", "/vms/ev")).status, 204);
      const seen = await until(
        async () => (stream.events as Event[]).filter((e) => e.vm.name === "ev"),
        (evs) => evs.some((e) => e.type === "deleted"),
      );
      assert.deepEqual(
        seen.map((e) => `${e.type}:${e.vm.state}`),
        ["created:created", "state:running", "state:stopped", "deleted:stopped"],
      );
    } finally {
      stream.close();
    }
  });

  test("metrics: the VM's gauges, its growing instructions counter, the daemon process", {
    timeout: 30_000,
  }, async () => {
    assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec("met", kernel))).status, 201);
    assert.equal((await api(daemon.socket, "POST", "/vms/met/actions/start")).status, 200);
    const scrape = async () => {
      const r = await api(daemon.socket, "GET", "/metrics");
      assert.equal(r.status, 200);
      assert.match(r.type, /^text\/plain/);
      return r.text;
    };
    const first = await until(scrape, (t) => (sample(t, "vireo_vm_instructions_total", 'vm="met"') ?? 0) > 0);
    const n = sample(first, "vireo_vm_instructions_total", 'vm="met"') as number;
    const later = await until(scrape, (t) => (sample(t, "vireo_vm_instructions_total", 'vm="met"') ?? 0) > n);
    assert.equal(sample(later, "vireo_vm_state", 'vm="met",state="running"'), 1);
    assert.equal(sample(later, "vireo_vm_state", 'vm="met",state="stopped"'), 0);
    assert.equal(sample(later, "vireo_vm_vcpus", 'vm="met"'), 1);
    assert.equal(sample(later, "vireo_vm_memory_bytes", 'vm="met"'), 16 * 2 ** 20);
    assert.ok((sample(later, "vireo_vm_console_bytes_total", 'vm="met"') ?? 0) > 0, later);
    assert.match(later, /^vireo_daemon_process_cpu_user_seconds_total \d/m);
    await api(daemon.socket, "POST", "/vms/met/actions/kill");
  });

  test("TCP: 401 without or with a wrong token, 200 with the stored one (0600)", {
    timeout: 20_000,
  }, async () => {
    const file = join(daemon.stateDir, "api-token");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, "utf8").trim();
    assert.ok(daemon.log().includes(token), "the token is printed at first start");
    const none = await tcpGet(port, "/healthz");
    assert.equal(none.status, 401, none.text);
    assert.equal((JSON.parse(none.text) as { error: string }).error, "unauthorized");
    assert.equal(
      (await tcpGet(port, "/healthz", `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`)).status,
      401,
    );
    assert.equal((await tcpGet(port, "/vms", "not-the-token")).status, 401);
    const ok = await tcpGet(port, "/vms", token);
    assert.equal(ok.status, 200, ok.text);
    assert.ok(Array.isArray(JSON.parse(ok.text)));
    assert.equal((await api(daemon.socket, "GET", "/healthz")).status, 200, "the Unix socket needs no token");
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((done, fail) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/vms/nobody/console`, { headers });
        ws.on("unexpected-response", (_req, res) => {
          done(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("close", (code) => done(code));
        ws.on("error", fail);
      });
    assert.equal(await upgrade({}), 401, "the console WebSocket needs the token too");
    assert.equal(await upgrade({ authorization: `Bearer ${token}` }), 4404);
  });

  test("a second start keeps the token unprinted; SIGTERM ends open event streams and consoles", {
    timeout: 30_000,
  }, async () => {
    const token = readFileSync(join(daemon.stateDir, "api-token"), "utf8").trim();
    const other = tempDir();
    const second = await startDaemonWith(other, ["--listen", "127.0.0.1:0"], daemon.stateDir);
    try {
      assert.ok(!second.log().includes(token), second.log());
      const m = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(second.log());
      assert.equal((await tcpGet(Number(m?.[1]), "/healthz", token)).status, 200);
      const stream = await openEvents(second.socket);
      const console = await openConsole(second.socket, "met");
      second.child.kill("SIGTERM");
      assert.equal(await second.exited, 0, second.log());
      assert.equal((await console.closed).code, 1001);
      stream.close();
    } finally {
      await stopDaemon(second);
    }
  });

  test("a non-loopback --listen is refused without --listen-any", { timeout: 20_000 }, () => {
    const other = tempDir();
    for (const listen of ["192.0.2.7:8470", "0.0.0.0:8470", "[2001:db8::1]:8470"]) {
      const r = spawnSync(
        process.execPath,
        [cli, "daemon", "--socket", join(other, "s.sock"), "--state-dir", other, "--listen", listen],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /not a loopback address; add --listen-any/);
    }
    const bad = spawnSync(
      process.execPath,
      [cli, "daemon", "--socket", join(other, "s.sock"), "--listen", "nope"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /expected HOST:PORT/);
  });

  test("reboot: a running VM is stopped and started again; a stopped one is refused", {
    timeout: 30_000,
  }, async () => {
    assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec("rb", kernel))).status, 201);
    const refused = await api(daemon.socket, "POST", "/vms/rb/actions/reboot");
    assert.equal(refused.status, 409, refused.text);
    assert.equal((await api(daemon.socket, "POST", "/vms/rb/actions/start")).status, 200);
    await until(
      () => api(daemon.socket, "GET", "/vms/rb/console"),
      (c) => c.text.includes("tick 0000000000000001"),
    );
    const stream = await openEvents(daemon.socket);
    try {
      const r = await api(daemon.socket, "POST", "/vms/rb/actions/reboot");
      assert.equal(r.status, 200, r.text);
      assert.equal((r.json as { state: string }).state, "running");
      const seen = await until(
        async () => (stream.events as Event[]).filter((e) => e.vm.name === "rb"),
        (evs) => evs.length >= 2,
      );
      assert.deepEqual(
        seen.map((e) => e.vm.state),
        ["stopped", "running"],
      );
      // The fresh VM runs the guest from its start: after a later tick of the first run (the ring may
      // have dropped its beginning), the counter begins again.
      await until(
        () => api(daemon.socket, "GET", "/vms/rb/console"),
        (c) => {
          const again = c.text.lastIndexOf("tick 0000000000000000");
          return again > 0 && /tick (?!0{16})[0-9a-f]{16}\n/.test(c.text.slice(0, again));
        },
      );
    } finally {
      stream.close();
      await api(daemon.socket, "POST", "/vms/rb/actions/kill");
    }
  });

  test("balloon of a worker VM: PATCH/GET and vireo vm balloon; 400, 409 and a bad SIZE", {
    timeout: 30_000,
  }, async () => {
    const vm = (...args: string[]) => {
      const r = spawnSync(process.execPath, [cli, "vm", ...args, "--socket", daemon.socket], {
        encoding: "utf8",
        timeout: 20_000,
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const spec = counterSpec("bw", kernel, { balloon: {} });
    assert.equal((await api(daemon.socket, "POST", "/vms", spec)).status, 201);
    assert.equal((await api(daemon.socket, "PATCH", "/vms/bw/balloon", { targetBytes: 4096 })).status, 409);
    assert.equal((await api(daemon.socket, "POST", "/vms/bw/actions/start")).status, 200);
    const set = await api(daemon.socket, "PATCH", "/vms/bw/balloon", { targetBytes: 2 ** 20 });
    assert.equal(set.status, 200, set.text);
    assert.equal((set.json as { targetBytes: number }).targetBytes, 2 ** 20);
    const shown = vm("balloon", "bw", "--json");
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).targetBytes, 2 ** 20);
    const cli4m = vm("balloon", "bw", "4M");
    assert.equal(cli4m.status, 0, cli4m.stderr);
    assert.match(cli4m.stdout, /^bw: balloon target 4 MiB, the guest holds 0 B/);
    const tooBig = vm("balloon", "bw", "16M");
    assert.equal(tooBig.status, 2);
    assert.match(
      tooBig.stderr,
      /^vireo: \/targetBytes: must be smaller than the VM's memory \(16777216 bytes\)\n$/,
    );
    const garbage = vm("balloon", "bw", "lots");
    assert.equal(garbage.status, 2);
    assert.match(garbage.stderr, /^vireo: invalid size 'lots' for SIZE/);
    assert.equal((await api(daemon.socket, "POST", "/vms/bw/actions/kill")).status, 200);
    assert.equal((await api(daemon.socket, "GET", "/vms/bw/balloon")).status, 409);
    assert.equal((await api(daemon.socket, "DELETE", "/vms/bw")).status, 204);
  });
});
