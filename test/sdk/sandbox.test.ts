/**
 * examples/sandbox.ts as a user runs it, against a daemon with a warm pool of one Debian riscv64 guest
 * (the one Linux boot of the SDK's tests): it acquires the booted VM, runs a command through the
 * guest's shell, prints its output and status, and releases the VM, which is then gone.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { Vireo, VireoApiError } from "../../src/sdk/index.js";
import { type Daemon, repoRoot, startDaemon, tempDir, until } from "../api/support.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, describe, test } from "../support/test.js";

const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

describe("examples/sandbox.ts", () => {
  let daemon: Daemon | undefined;
  after(async () => {
    daemon?.child.kill("SIGTERM");
    await daemon?.exited;
  });

  test("acquires a booted Debian VM from a pool, runs a command, prints its output, releases it", {
    skip: hasApt ? false : "apt-get is not available to fetch the Debian image",
    timeout: 300_000,
  }, async () => {
    const image = await riscv64Image();
    const dir = tempDir();
    daemon = await startDaemon(dir);
    const vireo = new Vireo({ socket: daemon.socket });
    await vireo.createPool({
      name: "sandbox",
      size: 1,
      spec: {
        name: "sandbox",
        arch: "riscv64",
        engine: "auto",
        cpus: 1,
        memory: 256 * 2 ** 20,
        boot: { kernel: image.kernel, initrd: image.initrd, cmdline: "console=ttyS0 quiet" },
        drives: [],
        nics: [],
        rng: false,
        console: false,
        virtioRing: "split",
      },
    });
    const pool = await until(
      () => vireo.getPool("sandbox"),
      (p) => p.ready === 1 || p.lastError !== undefined,
    );
    assert.equal(pool.readyMarker, "VIREO-READY", "the default marker for a spec with an initrd");
    assert.equal(pool.ready, 1, pool.lastError);
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(
        process.execPath,
        [join(repoRoot, "dist", "examples", "sandbox.js"), "sandbox", "uname -m; echo hi from $(hostname)"],
        { env: { ...process.env, VIREO_SOCKET: daemon?.socket }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.on("close", (status) => done({ status, stdout, stderr }));
    });
    assert.equal(run.status, 0, `${run.stderr}\n${run.stdout}`);
    const [first, ...output] = run.stdout.trimEnd().split("\n");
    const match = /^(sandbox-[0-9a-f]{8}): exit status 0$/.exec(first ?? "");
    assert.ok(match, run.stdout);
    assert.deepEqual(output, ["riscv64", "hi from vireo"]);
    const gone = await vireo.getVm(match[1] as string).catch((e: unknown) => e);
    assert.ok(gone instanceof VireoApiError && gone.status === 404, "the released VM is gone");
    await vireo.deletePool("sandbox");
    assert.deepEqual(await vireo.listVms({ "vireo.pool": "sandbox" }), []);
  });
});
