/**
 * The exec WebSocket (GET /vms/{id}/exec) with the real QEMU guest agent of the default Debian image:
 * one riscv64 worker VM booted once. `cat` echoing stdin sent in pieces, each piece's echo seen before
 * the next is sent (so output comes while the command runs), exit codes and 127, stderr apart from
 * stdout, 4 MiB of stdin through sha256sum, a timeout, a client that goes away (its command killed, the
 * guest folder removed), the protocol's refusals, and `vireo vm exec` streaming both ways (stdin past
 * the old 700 KiB cap; a prompt answered after it was printed).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { WebSocket } from "ws";
import { buildApp } from "../../src/api/app.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { VmManager } from "../../src/manager/manager.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import { type ExecSession, Vireo, VireoApiError } from "../../src/sdk/index.js";
import { debianVmBody, riscv64Image } from "../support/guest-image.js";
import { after, describe, test } from "../support/test.js";
import { cli, sleep } from "./support.js";

const BOOT_TIMEOUT_MS = 300_000;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), "vireo-exec-stream-"));

/** Collects a session's output; `until` waits for a pattern in it. */
function collect(session: ExecSession) {
  let out = Buffer.alloc(0);
  let err = Buffer.alloc(0);
  const waiters = new Set<() => void>();
  session.stdout.on("data", (b: Buffer) => {
    out = Buffer.concat([out, b]);
    for (const w of [...waiters]) w();
  });
  session.stderr.on("data", (b: Buffer) => {
    err = Buffer.concat([err, b]);
    for (const w of [...waiters]) w();
  });
  return {
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    until(text: string, timeoutMs = 60_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (out.toString("utf8").includes(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no '${text}' on stdout within ${timeoutMs} ms; got '${out.toString("utf8")}'`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** A raw WebSocket's frames until it closes. */
function rawExec(
  url: string,
  first: string | Buffer,
): Promise<{ frames: (string | Buffer)[]; code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: (string | Buffer)[] = [];
    ws.on("open", () => ws.send(first));
    ws.on("message", (data: Buffer, binary: boolean) => frames.push(binary ? data : data.toString("utf8")));
    ws.on("close", (code, reason) => resolve({ frames, code, reason: reason.toString() }));
    ws.on("error", reject);
  });
}

describe("exec streamed over a WebSocket through the guest agent", () => {
  let manager: VmManager | null = null;
  let app: FastifyInstance | null = null;
  after(async () => {
    await app?.close();
    await manager?.shutdown(0);
    rmSync(scratch, { recursive: true, force: true });
  });

  test("one Linux guest: streamed stdin and output, exit codes, timeout, disconnect, CLI", {
    timeout: BOOT_TIMEOUT_MS + 300_000,
  }, async (t) => {
    if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
    const { kernel, initrd } = await riscv64Image();
    const logs: string[] = [];
    const switches = new SwitchRegistry();
    manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      host: (console) => nodeVmHost({ console, switches }),
      vmWorker: vmWorkerEntry,
    });
    app = buildApp({ manager, log: (m) => logs.push(m) });
    const socket = join(scratch, "api.sock");
    await app.listen({ path: socket });
    const vireo = new Vireo({ socket });
    const spec = (name: string, extra: Record<string, unknown> = {}) =>
      debianVmBody({ kernel, initrd }, name, extra);
    const context = () =>
      `--- console (tail)\n${Buffer.from(manager?.console("g").contents() ?? new Uint8Array())
        .toString("latin1")
        .slice(-2000)}\n--- log\n${logs.join("\n")}`;
    const url = (vm: string) => `ws+unix://${socket}:/vms/${vm}/exec`;

    await vireo.createVm(spec("g") as never);
    await vireo.createVm(spec("bare", { agent: false }) as never);

    // Refusals that need no guest: no upgrade, no such VM, a bad first frame, a VM without an agent.
    const plain = await app.inject({ method: "GET", url: "/vms/g/exec" });
    assert.equal(plain.statusCode, 426, plain.body);
    const nobody = await rawExec(url("nobody"), JSON.stringify({ argv: ["true"] }));
    assert.equal(nobody.code, 4404);
    assert.equal(JSON.parse(String(nobody.frames.at(-1))).type, "error");
    const garbage = await rawExec(url("g"), "not json");
    assert.equal(garbage.code, 4400);
    const noArgv = await rawExec(url("g"), JSON.stringify({ argv: [] }));
    assert.equal(noArgv.code, 4400);
    assert.match(JSON.parse(String(noArgv.frames.at(-1))).message, /argv/);
    const bare = await rawExec(url("bare"), JSON.stringify({ argv: ["true"] }));
    assert.equal(bare.code, 4409);
    assert.match(JSON.parse(String(bare.frames.at(-1))).message, /has no guest agent|not running/);

    await manager.act("g", "start");
    const started = performance.now();
    let first = await vireo.vmExec("g", { argv: ["true"] }).catch((e: unknown) => e);
    while (
      first instanceof VireoApiError &&
      first.status === 409 &&
      performance.now() - started < BOOT_TIMEOUT_MS
    ) {
      await sleep(1000);
      first = await vireo.vmExec("g", { argv: ["true"] }).catch((e: unknown) => e);
    }
    t.diagnostic(`agent answered ${((performance.now() - started) / 1000).toFixed(1)} s after start`);
    assert.ok(!(first instanceof Error), `${String(first)}\n${context()}`);

    // cat: each piece's echo arrives while cat still runs, before the next piece is sent.
    const cat = await vireo.execStream("g", ["cat"]);
    const catOut = collect(cat);
    for (const piece of ["one\n", "two two\n", "three three three\n"]) {
      await cat.write(piece);
      await catOut.until(piece);
    }
    cat.endStdin();
    assert.deepEqual(await cat.exit, { exitCode: 0, timedOut: false });
    assert.equal(catOut.out.toString(), "one\ntwo two\nthree three three\n");

    // A prompt, answered after it was seen.
    const prompt = await vireo.execStream("g", ["sh", "-c", 'echo "name?"; read n; echo "hello $n"; exit 5']);
    const promptOut = collect(prompt);
    await promptOut.until("name?\n");
    await prompt.write("vireo\n");
    assert.deepEqual(await prompt.exit, { exitCode: 5, timedOut: false });
    assert.equal(promptOut.out.toString(), "name?\nhello vireo\n");

    // Exit codes, 127 for a program that is not there, stderr apart from stdout, the environment.
    for (const [argv, code] of [
      [["true"], 0],
      [["false"], 1],
      [["sh", "-c", "exit 7"], 7],
      [["no-such-program-here"], 127],
    ] as const) {
      const s = await vireo.execStream("g", [...argv]);
      collect(s);
      assert.equal((await s.exit).exitCode, code, argv.join(" "));
    }
    const split = await vireo.execStream("g", ["sh", "-c", 'echo out; echo err >&2; echo "$GREETING"'], {
      env: ["GREETING=hi there"],
    });
    const splitOut = collect(split);
    await split.exit;
    assert.equal(splitOut.out.toString(), "out\nhi there\n");
    assert.equal(splitOut.err.toString(), "err\n");

    // 4 MiB of stdin in 64 KiB writes, read late: all of it arrives, in order.
    const big = randomBytes(4 * 1024 * 1024);
    const sum = await vireo.execStream("g", ["sh", "-c", "sleep 2; sha256sum"]);
    const sumOut = collect(sum);
    for (let at = 0; at < big.length; at += 64 * 1024) await sum.write(big.subarray(at, at + 64 * 1024));
    sum.endStdin();
    assert.equal((await sum.exit).exitCode, 0, sumOut.err.toString());
    assert.equal(sumOut.out.toString().split(" ")[0], createHash("sha256").update(big).digest("hex"));

    // Past its timeout: killed in the guest, what it printed delivered first.
    const slow = await vireo.execStream("g", ["sh", "-c", "echo started; exec sleep 4241"], {
      timeoutMs: 2000,
    });
    const slowOut = collect(slow);
    const slowEnd = await slow.exit;
    assert.equal(slowEnd.timedOut, true);
    assert.equal(slowOut.out.toString(), "started\n");

    // A client that goes away: its command (the whole group) is killed, the guest folder removed.
    const left = await vireo.execStream("g", ["sh", "-c", "echo started; sleep 4242; echo never"]);
    const leftOut = collect(left);
    await leftOut.until("started\n");
    left.kill();
    await assert.rejects(left.exit, VireoApiError);
    const gone = async (pattern: string) => {
      const deadline = performance.now() + 60_000;
      for (;;) {
        const r = await vireo.vmExec("g", { argv: ["sh", "-c", pattern] });
        if (r.stdout.trim() === "0" || performance.now() > deadline) return r.stdout.trim();
        await sleep(500);
      }
    };
    assert.equal(await gone("ps | grep -c '[s]leep 424[12]'"), "0", "the killed programs are gone");
    assert.equal(await gone("ls -d /tmp/vireo-exec-* 2>/dev/null | wc -l"), "0", "no guest folder left");

    // The CLI: stdin past the old 700 KiB cap, streamed; the command's status is vireo's.
    const viaCli = (args: string[]) =>
      spawn(process.execPath, [cli, "vm", "exec", "--socket", socket, "g", "--", ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
    const mb = randomBytes(1024 * 1024);
    const piped = viaCli(["sh", "-c", "sha256sum; exit 3"]);
    let pipedOut = "";
    let pipedErr = "";
    piped.stdout.on("data", (d: Buffer) => {
      pipedOut += d.toString();
    });
    piped.stderr.on("data", (d: Buffer) => {
      pipedErr += d.toString();
    });
    piped.stdin.end(mb);
    const pipedStatus = await new Promise((r) => piped.on("close", r));
    assert.equal(pipedStatus, 3, pipedErr);
    assert.equal(pipedOut.split(" ")[0], createHash("sha256").update(mb).digest("hex"));
    // A prompt the CLI prints before the command ends, answered on its stdin.
    const asked = viaCli(["sh", "-c", 'echo "name?"; read n; echo "hello $n" >&2']);
    let askedOut = "";
    let askedErr = "";
    asked.stderr.on("data", (d: Buffer) => {
      askedErr += d.toString();
    });
    await new Promise<void>((resolve) => {
      asked.stdout.on("data", (d: Buffer) => {
        askedOut += d.toString();
        if (askedOut.includes("name?\n")) resolve();
      });
    });
    asked.stdin.end("cli\n");
    assert.equal(await new Promise((r) => asked.on("close", r)), 0, askedErr);
    assert.equal(askedErr, "hello cli\n");
  });
});
