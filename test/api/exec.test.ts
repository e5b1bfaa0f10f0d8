/**
 * exec, files and shutdown through the real QEMU guest agent of the default Debian image: one riscv64
 * worker VM booted once (its agent wired by default), driven through the API (inject). Exit codes 0,
 * 1, 7 and 127, stdin as text and base64, ten execs at once, a timeout killed in the guest (504), a
 * 10 MB file in and back out with equal sha256, paths the guest refuses, a VM without an agent (409),
 * and a shutdown through the agent.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/api/app.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { VmManager } from "../../src/manager/manager.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import { debianVmBody, riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";
import { cli, sleep } from "./support.js";

// A loaded 2-core machine has taken 2 minutes to the agent's first answer and 3 more for the rest.
const BOOT_TIMEOUT_MS = 300_000;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), "vireo-exec-"));

/** Runs the CLI without blocking this thread (the daemon's API answers here). */
function vireo(
  args: string[],
  stdin = "",
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

interface ExecAnswer {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  stdoutEncoding: string;
  truncated: boolean;
  timedOut: boolean;
  signal?: number;
}

describe("exec and files through the guest agent", () => {
  let manager: VmManager | null = null;
  let app: FastifyInstance | null = null;
  let kernel = "";
  let initrd = "";
  before(async () => {
    if (!hasApt) return;
    const image = await riscv64Image();
    kernel = image.kernel;
    initrd = image.initrd;
  });
  after(async () => {
    await app?.close();
    await manager?.shutdown(0);
    rmSync(scratch, { recursive: true, force: true });
  });

  test("one Linux guest: exit codes, stdin, concurrency, timeout, 10 MB copy, errors, shutdown", {
    timeout: BOOT_TIMEOUT_MS + 300_000,
  }, async (t) => {
    if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
    const logs: string[] = [];
    const switches = new SwitchRegistry();
    manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      host: (console) => nodeVmHost({ console, switches }),
      vmWorker: vmWorkerEntry,
    });
    app = buildApp({ manager, log: (m) => logs.push(m) });
    const spec = (name: string, extra: Record<string, unknown> = {}) =>
      debianVmBody({ kernel, initrd }, name, extra);
    const inject = app.inject.bind(app);
    const exec = async (body: Record<string, unknown>, vm = "g") => {
      const r = await inject({ method: "POST", url: `/vms/${vm}/exec`, payload: body });
      return { status: r.statusCode, json: r.json() as ExecAnswer & { message?: string } };
    };
    const context = () =>
      `--- console (tail)\n${Buffer.from(manager?.console("g").contents() ?? new Uint8Array())
        .toString("latin1")
        .slice(-2000)}\n--- log\n${logs.join("\n")}`;

    assert.equal((await inject({ method: "POST", url: "/vms", payload: spec("g") })).statusCode, 201);
    assert.equal(
      (await inject({ method: "POST", url: "/vms", payload: spec("bare", { agent: false }) })).statusCode,
      201,
    );
    // Not started yet, and a VM without an agent: 409 saying why.
    const early = await exec({ argv: ["true"] });
    assert.equal(early.status, 409);
    assert.match(String(early.json.message), /guest agent|not running/);
    const none = await exec({ argv: ["true"] }, "bare");
    assert.equal(none.status, 409);
    assert.match(String(none.json.message), /has no guest agent/);

    await manager.act("g", "start");
    const started = performance.now();
    let first = await exec({ argv: ["true"] });
    while (first.status === 409 && performance.now() - started < BOOT_TIMEOUT_MS) {
      assert.match(String(first.json.message), /has not answered yet/);
      await sleep(1000);
      first = await exec({ argv: ["true"] });
    }
    t.diagnostic(`agent answered ${((performance.now() - started) / 1000).toFixed(1)} s after start`);
    assert.equal(first.status, 200, `${JSON.stringify(first.json)}\n${context()}`);
    assert.equal(first.json.exitCode, 0);

    // Exit codes: the program's own, and 127 for one that is not there (not an API error).
    for (const [argv, code] of [
      [["false"], 1],
      [["sh", "-c", "exit 7"], 7],
      [["no-such-program-here"], 127],
    ] as const) {
      const r = await exec({ argv });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.exitCode, code, argv.join(" "));
    }
    const out = await exec({ argv: ["sh", "-c", "echo out; echo err >&2"] });
    assert.deepEqual([out.json.stdout, out.json.stderr, out.json.truncated], ["out\n", "err\n", false]);
    const env = await exec({ argv: ["sh", "-c", 'echo "$GREETING"'], env: ["GREETING=hello there"] });
    assert.equal(env.json.stdout, "hello there\n");

    // stdin, as text and as bytes; binary output comes back as base64.
    const cat = await exec({ argv: ["cat"], stdin: "piped through\n" });
    assert.equal(cat.json.stdout, "piped through\n");
    const bytes = randomBytes(3000);
    const binary = await exec({ argv: ["cat"], stdinBase64: bytes.toString("base64") });
    assert.equal(binary.json.stdoutEncoding, "base64");
    assert.ok(Buffer.from(binary.json.stdout, "base64").equals(bytes));
    const capped = await exec({ argv: ["sh", "-c", "head -c 5000 /dev/zero"], outputCap: 1000 });
    assert.equal(capped.json.truncated, true);
    assert.equal(capped.json.stdout.length, 1000);

    // Ten at once in one VM: each gets its own output.
    const ten = await Promise.all(
      Array.from({ length: 10 }, (_, i) => exec({ argv: ["sh", "-c", 'sleep 0.2; echo "n=$0"', String(i)] })),
    );
    ten.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.json.stdout, `n=${i}\n`);
    });

    // Past its timeout: killed in the guest, 504 with what it printed.
    const slow = await exec({ argv: ["sh", "-c", "echo started; exec sleep 300"], timeoutMs: 1500 });
    assert.equal(slow.status, 504, JSON.stringify(slow.json));
    assert.equal(slow.json.timedOut, true);
    assert.equal(slow.json.stdout, "started\n");
    assert.equal(slow.json.signal, 9);
    const left = await exec({ argv: ["sh", "-c", "ps | grep -c '[s]leep 300'"] });
    assert.equal(left.json.stdout.trim(), "0", "the program is gone from the guest");

    // 10 MB in and back out, equal sha256.
    const big = randomBytes(10 * 1024 * 1024);
    const sha = createHash("sha256").update(big).digest("hex");
    const put = await inject({
      method: "PUT",
      url: "/vms/g/files?path=/tmp/big.bin",
      headers: { "content-type": "application/octet-stream" },
      payload: big,
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual(put.json(), { path: "/tmp/big.bin", bytes: big.length });
    const sum = await exec({ argv: ["sha256sum", "/tmp/big.bin"] });
    assert.equal(sum.json.stdout.split(" ")[0], sha);
    const got = await inject({ method: "GET", url: "/vms/g/files?path=/tmp/big.bin" });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers["content-type"], "application/octet-stream");
    assert.equal(createHash("sha256").update(got.rawPayload).digest("hex"), sha);

    // The CLI: exec with stdin and the command's status as vireo's; cp in and out.
    const socket = join(scratch, "api.sock");
    await app.listen({ path: socket });
    const viaCli = await vireo(
      ["vm", "exec", "--socket", socket, "g", "--", "sh", "-c", "cat; exit 3"],
      "via cli\n",
    );
    assert.deepEqual([viaCli.status, viaCli.stdout], [3, "via cli\n"], viaCli.stderr);
    const missingCli = await vireo(["vm", "exec", "--socket", socket, "g", "--", "no-such-program-here"]);
    assert.equal(missingCli.status, 127);
    const local = join(scratch, "in.txt");
    writeFileSync(local, "copied by vireo vm cp\n");
    const cpIn = await vireo(["vm", "cp", "--socket", socket, local, "g:/tmp/cli.txt"]);
    assert.equal(cpIn.status, 0, cpIn.stderr);
    const cpOut = await vireo(["vm", "cp", "--socket", socket, "g:/tmp/cli.txt", join(scratch, "out.txt")]);
    assert.equal(cpOut.status, 0, cpOut.stderr);
    assert.equal(readFileSync(join(scratch, "out.txt"), "utf8"), "copied by vireo vm cp\n");
    const cpMissing = await vireo(["vm", "cp", "--socket", socket, "g:/no/such", join(scratch, "x")]);
    assert.equal(cpMissing.status, 2);
    assert.match(cpMissing.stderr, /^vireo: no file \/no\/such in the guest/);

    // Paths the guest refuses, and bodies of the wrong kind.
    const missing = await inject({ method: "GET", url: "/vms/g/files?path=/no/such/file" });
    assert.equal(missing.statusCode, 404, missing.body);
    assert.match(missing.json().message, /\/no\/such\/file/);
    const unwritable = await inject({
      method: "PUT",
      url: "/vms/g/files?path=/tmp",
      headers: { "content-type": "application/octet-stream" },
      payload: Buffer.from("x"),
    });
    assert.equal(unwritable.statusCode, 400, unwritable.body);
    assert.match(unwritable.json().message, /^\/tmp in the guest: /);
    const json = await inject({ method: "PUT", url: "/vms/g/files?path=/tmp/x", payload: { a: 1 } });
    assert.equal(json.statusCode, 415);
    const relative = await inject({ method: "GET", url: "/vms/g/files?path=tmp/x" });
    assert.equal(relative.statusCode, 400);

    // The agent still answers after all that; then a shutdown through it ends the VM.
    assert.equal((await exec({ argv: ["true"] })).json.exitCode, 0);
    const down = await inject({ method: "POST", url: "/vms/g/shutdown" });
    assert.equal(down.statusCode, 202, down.body);
    const asked = performance.now();
    while (manager.get("g").state === "running" && performance.now() - asked < 60_000) await sleep(200);
    assert.equal(manager.get("g").state, "stopped", context());
    assert.equal((await exec({ argv: ["true"] })).status, 409);
  });
});
