/**
 * The console WebSocket and `vireo vm console`, end to end: a real daemon child process and the
 * echo guest (test/guest-daemon/echo.S: a banner, then every byte back upper-cased, so that the
 * guest's answer cannot be mistaken for the bytes sent).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "../support/test.js";
import { type FlagDaemon, guest, openConsole, startDaemonWith, stopDaemon } from "./console-support.js";
import { api, cli, counterSpec, tempDir, toolchainMissing, until } from "./support.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stdout.write(`# skipping the console tests: ${missing}\n`);

describe("console WebSocket", { skip: missing !== undefined }, () => {
  let daemon: FlagDaemon;
  let kernel: string;

  const startEcho = async (name: string) => {
    assert.equal((await api(daemon.socket, "POST", "/vms", counterSpec(name, kernel))).status, 201);
    assert.equal((await api(daemon.socket, "POST", `/vms/${name}/actions/start`)).status, 200);
    await until(
      () => api(daemon.socket, "GET", `/vms/${name}/console`),
      (r) => r.text.includes("echo ready"),
    );
  };

  before(async () => {
    const dir = tempDir();
    kernel = guest(dir, "echo");
    daemon = await startDaemonWith(dir, []);
  });

  after(() => stopDaemon(daemon));

  test("readers get the replay and new output; one writer at a time; the role is freed on close", {
    timeout: 60_000,
  }, async () => {
    await startEcho("echo");
    const r1 = await openConsole(daemon.socket, "echo");
    const r2 = await openConsole(daemon.socket, "echo");
    await r1.waitFor((t) => t.includes("echo ready"));
    await r2.waitFor((t) => t.includes("echo ready"));

    r1.ws.send("abc");
    await r1.waitFor((t) => t.includes("ABC"));
    await r2.waitFor((t) => t.includes("ABC"));

    r2.ws.send("x");
    const refused = await r2.closed;
    assert.equal(refused.code, 4009, refused.reason);
    assert.match(refused.reason, /holds this console's input/);

    r1.ws.send(Buffer.from("def"));
    await r1.waitFor((t) => t.includes("DEF"));
    assert.ok(!r1.text().includes("X"), "the refused writer's byte never reached the guest");

    r1.ws.close();
    await r1.closed;
    const r3 = await openConsole(daemon.socket, "echo");
    await r3.waitFor((t) => t.includes("DEF"));
    r3.ws.send("q");
    await r3.waitFor((t) => t.includes("Q"));
    r3.ws.close();
    await r3.closed;

    const plain = await api(daemon.socket, "GET", "/vms/echo/console");
    assert.equal(plain.status, 200);
    assert.match(plain.type, /^text\/plain/);
    assert.ok(plain.text.includes("echo ready\nABCDEFQ"), plain.text);
  });

  test("an unknown VM's console closes with 4404", { timeout: 20_000 }, async () => {
    const c = await openConsole(daemon.socket, "nobody");
    const closed = await c.closed;
    assert.equal(closed.code, 4404);
    assert.match(closed.reason, /no VM 'nobody'/);
  });

  test("vireo vm console through a pipe: replay, input echoes back, Ctrl-A x detaches, the VM runs on", {
    timeout: 60_000,
  }, async () => {
    await startEcho("piped");
    const child = spawn(process.execPath, [cli, "vm", "console", "piped", "--socket", daemon.socket], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("latin1");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
    try {
      await until(
        async () => stdout,
        (s) => s.includes("echo ready"),
      );
      child.stdin.write("hello");
      await until(
        async () => stdout,
        (s) => s.includes("HELLO"),
      );
      child.stdin.write("\x01x");
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /detached from piped/);
      const info = await api(daemon.socket, "GET", "/vms/piped");
      assert.equal((info.json as { state: string }).state, "running");
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("vireo vm console: an unknown VM is one line and status 2", { timeout: 20_000 }, async () => {
    const child = spawn(process.execPath, [cli, "vm", "console", "nobody", "--socket", daemon.socket], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((done) => child.on("exit", (c) => done(c)));
    assert.equal(code, 2, stderr);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.match(stderr, /no VM 'nobody'/);
  });
});
