/**
 * Warm pools: `node dist/bench/pool.js [--runs N] [--linux N]`. Starts a `vireo daemon` child, fills a
 * pool of N (default 20) idle bare-metal guests (bench/guest/idle.S, 16 MiB, ready once running), and
 * times N acquires one after another through the SDK, each served by a VM that is already booted
 * (ms from the request to the answer), then releases them. With --linux N, N acquires from a pool of 2
 * Debian riscv64 guests (ready at VIREO-READY), each timed also to a command's output through the
 * console shell (the guest agent's exec is not in the SDK yet), the pool refilled between them (not
 * counted). Prints one JSON line per pool.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRiscv64Image } from "../src/images/riscv64.js";
import { type Pool, Vireo, type VmSpec } from "../src/sdk/index.js";
import { bareMetalSpec } from "../test/support/bare-metal.js";
import { buildIdleGuest, MiB } from "./lib/manager-guest.js";
import { repoRoot } from "./lib/paths.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

function summary(ms: number[]): Record<string, number> {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    n: s.length,
    p50: r(at(0.5)),
    p90: r(at(0.9)),
    min: r(s[0] as number),
    max: r(s.at(-1) as number),
  };
}

async function daemon(): Promise<{ child: ChildProcess; socket: string }> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-pool-"));
  const socket = join(dir, "vireo.sock");
  const cli = join(repoRoot, "dist", "src", "cli", "main.js");
  const child = spawn(
    process.execPath,
    [cli, "daemon", "--socket", socket, "--state-dir", join(dir, "state"), "--stop-grace-ms", "0"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  await new Promise<void>((ready, fail) => {
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d;
      if (stderr.includes("listening on")) ready();
    });
    child.on("exit", (code) => fail(new Error(`daemon exited with ${code}: ${stderr}`)));
  });
  return { child, socket };
}

async function warm(vireo: Vireo, name: string, spec: VmSpec, size: number): Promise<number> {
  const t0 = performance.now();
  await vireo.createPool({ name, spec, size });
  for (;;) {
    const p: Pool = await vireo.getPool(name);
    if (p.ready === size) return performance.now() - t0;
    if (p.lastError !== undefined) throw new Error(p.lastError);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const runs = flag("runs", 20);
  const linux = flag("linux", 0);
  const guest = buildIdleGuest();
  if ("error" in guest) throw new Error(guest.error);
  const { child, socket } = await daemon();
  const vireo = new Vireo({ socket });
  try {
    const fillMs = await warm(vireo, "bare", bareMetalSpec("bare", guest.elf, 16 * MiB), runs);
    const acquire: number[] = [];
    const names: string[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      names.push((await vireo.acquire("bare", { timeoutMs: 0 })).name);
      acquire.push(performance.now() - t0);
    }
    await vireo.deletePool("bare");
    for (const n of names) await vireo.release("bare", n).catch(() => vireo.deleteVm(n));
    const line = {
      pool: "bare-metal idle, 16 MiB",
      size: runs,
      fillMs: Math.round(fillMs),
      acquireMs: summary(acquire),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);

    if (linux > 0) {
      const image = await ensureRiscv64Image({ quiet: true });
      const spec: VmSpec = {
        ...bareMetalSpec("linux", image.kernel, 256 * MiB),
        boot: { kernel: image.kernel, initrd: image.initrd, cmdline: "console=ttyS0 quiet" },
      };
      const size = 2;
      const fill = await warm(vireo, "linux", spec, size);
      const got: number[] = [];
      const firstOutput: number[] = [];
      for (let i = 0; i < linux; i++) {
        const t0 = performance.now();
        const vm = await vireo.acquire("linux", { timeoutMs: 0 });
        got.push(performance.now() - t0);
        const shell = await vireo.openConsole(vm.name);
        shell.send("echo OUT-$((6*7))\n");
        await shell.expect("OUT-42");
        firstOutput.push(performance.now() - t0);
        await shell.close();
        await vireo.release("linux", vm.name);
        // Not counted: the replacement's boot would compete with the next command for the CPU.
        while ((await vireo.getPool("linux")).ready < size) await sleep(200);
      }
      await vireo.deletePool("linux");
      const line = {
        pool: "Debian riscv64, 256 MiB, interpreter",
        size,
        fillMs: Math.round(fill),
        acquireMs: summary(got),
        acquireToCommandOutputMs: summary(firstOutput),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } finally {
    child.kill("SIGTERM");
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
