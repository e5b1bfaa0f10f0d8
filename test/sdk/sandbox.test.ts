/**
 * examples/sandbox.ts as a user runs it, against a daemon with a warm pool of Debian riscv64 guests
 * cloned from a snapshot of one booted VM (the one Linux boot of the SDK's tests): it acquires a VM,
 * copies a script in, runs it through the guest agent, prints its output and exit code and the file it
 * wrote, and releases the VM, which is then gone. Before that, the guest agent answers in two clones
 * at once (each with a vsock CID of its own, the guest's driver told by a transport reset).
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

  test("acquires a VM cloned from the pool's template, copies a script in, runs it, copies its result out", {
    skip: hasApt ? false : "apt-get is not available to fetch the Debian image",
    timeout: 300_000,
  }, async () => {
    const image = await riscv64Image();
    const dir = tempDir();
    daemon = await startDaemon(dir);
    const vireo = new Vireo({ socket: daemon.socket });
    await vireo.createPool({
      name: "sandbox",
      size: 2,
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
      (p) => p.ready === 2 || p.lastError !== undefined,
    );
    assert.equal(pool.readyMarker, "VIREO-READY", "the default marker for a spec with an initrd");
    assert.equal(pool.ready, 2, pool.lastError);
    assert.equal(pool.source, "snapshot", pool.snapshotError);

    // Two clones at once, each straight after acquire: exec through the agent in both.
    const clones = [await vireo.acquire("sandbox"), await vireo.acquire("sandbox")];
    const cids = clones.map((vm) => vm.spec.vsock?.cid);
    assert.notEqual(cids[0], cids[1], `clones with vsock CIDs ${cids.join(", ")}`);
    const runs = await Promise.all(clones.map((vm) => vireo.vmExec(vm.name, { argv: ["/bin/uname", "-n"] })));
    for (const r of runs) assert.deepEqual([r.exitCode, r.stdout], [0, "vireo\n"], r.stderr);
    for (const vm of clones) await vireo.release("sandbox", vm.name);
    await until(
      () => vireo.getPool("sandbox"),
      (p) => p.ready === 2 || p.lastError !== undefined,
    );

    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [join(repoRoot, "dist", "examples", "sandbox.js"), "sandbox"], {
        env: { ...process.env, VIREO_SOCKET: daemon?.socket },
        stdio: ["ignore", "pipe", "pipe"],
      });
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
    const match = /^(sandbox-[0-9a-f]{8}): exit code 0$/.exec(first ?? "");
    assert.ok(match, run.stdout);
    assert.deepEqual(output, ["riscv64", "hi from vireo", "result: 42"]);
    const gone = await vireo.getVm(match[1] as string).catch((e: unknown) => e);
    assert.ok(gone instanceof VireoApiError && gone.status === 404, "the released VM is gone");
    await vireo.deletePool("sandbox");
    assert.deepEqual(await vireo.listVms({ "vireo.pool": "sandbox" }), []);
  });
});
