/**
 * Warm pools: `node dist/bench/pool.js [--runs N] [--linux N] [--warm K] [--source snapshot|boot]`. Starts a `vireo daemon`
 * child, fills a pool of N (default 20) idle bare-metal guests (bench/guest/idle.S, 16 MiB, ready once
 * running), and times N acquires one after another through the SDK, each served by a VM that is already
 * booted (ms from the request to the answer), then releases them.
 *
 * With --linux N, the Debian riscv64 guest (256 MiB, the default engine: the translator) twice, in this process's own
 * VmManager behind the API on a Unix socket (the SDK as client): pools cloned from a template snapshot
 * (a state directory) and pools that boot each VM (none). For each: the daemon's memory (this process:
 * Rss and Pss of /proc/self/smaps_rollup, worker threads included) before and once a pool of K (default
 * 4) is warm, per warm VM; then N times acquire → the first `exec` of `true` through the guest agent
 * answered (ms from the acquire request) and a second `exec` on the open link, the VM released and
 * the pool refilled between (not counted). With --breakdown the first exec is done step by step through
 * the manager's agent instead of the API, and each step's time is printed (timeSteps).
 * Prints one JSON line per pool.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "../src/api/app.js";
import { nodeVmHost } from "../src/cli/vm-host.js";
import { vmWorkerEntry } from "../src/cli/vm-worker.js";
import { ensureRiscv64Image } from "../src/images/riscv64.js";
import { EXEC_POLL_FIRST_MS, EXEC_POLL_MAX_MS } from "../src/manager/guest-agent.js";
import { VmManager } from "../src/manager/manager.js";
import { SwitchRegistry } from "../src/net/switch.js";
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

/** This process's resident and proportional set sizes, MiB (worker threads' VMs included). */
function memory(): { rss: number; pss: number } {
  const text = readFileSync("/proc/self/smaps_rollup", "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  return { rss: kib("Rss") / 1024, pss: kib("Pss") / 1024 };
}

/**
 * The first exec's parts, done by hand through the manager's agent as GuestAgent.exec does them (the
 * same poll schedule): the link (connect + guest-sync-delimited, nothing when it is already open),
 * guest-exec, and the guest-exec-status polls until it exited (their time and count).
 */
async function timeSteps(manager: VmManager, vm: string, steps: Record<string, number[]>): Promise<void> {
  const agent = manager.agent(vm);
  let t = performance.now();
  const client = await agent.link();
  steps.link?.push(performance.now() - t);
  t = performance.now();
  const { pid } = await client.call<{ pid: number }>("guest-exec", {
    path: "true",
    arg: [],
    "capture-output": true,
  });
  steps.guestExec?.push(performance.now() - t);
  t = performance.now();
  let polls = 0;
  for (let wait = EXEC_POLL_FIRST_MS; ; wait = Math.min(wait * 2, EXEC_POLL_MAX_MS)) {
    polls++;
    const status = await client.call<{ exited: boolean; exitcode?: number }>("guest-exec-status", { pid });
    if (status.exited) {
      if (status.exitcode !== 0) throw new Error(`exec true in ${vm}: exit code ${status.exitcode}`);
      break;
    }
    await sleep(wait);
  }
  steps.status?.push(performance.now() - t);
  steps.polls?.push(polls);
}

/** Debian riscv64 pools in an in-process manager: memory per warm VM, then acquire → first exec. */
async function linuxPools(source: "snapshot" | "boot", runs: number, warmCount: number, breakdown: boolean) {
  const image = await ensureRiscv64Image({ quiet: true });
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-pool-linux-"));
  const manager = await VmManager.open({
    // Pools clone from a template only where they can save it.
    stateDir: source === "snapshot" ? join(dir, "state") : null,
    log: () => {},
    host: (console) => nodeVmHost({ console, switches: new SwitchRegistry() }),
    vmWorker: vmWorkerEntry,
  });
  const app = buildApp({ manager, log: () => {} });
  const socket = join(dir, "api.sock");
  await app.listen({ path: socket });
  const vireo = new Vireo({ socket });
  const spec: VmSpec = {
    ...bareMetalSpec("linux", image.kernel, 256 * MiB),
    boot: { kernel: image.kernel, initrd: image.initrd, cmdline: "console=ttyS0 quiet" },
  };
  try {
    const before = memory();
    const fill = await warm(vireo, "warm", spec, warmCount);
    const got = (await vireo.getPool("warm")).source;
    if (got !== source) throw new Error(`the pool's VMs come from ${got}, not ${source}`);
    // Settled: the template (if any) is gone and the last VM has had a moment past its marker.
    await sleep(2000);
    const after = memory();
    await vireo.deletePool("warm");
    const size = 2;
    await warm(vireo, "linux", spec, size);
    const acquire: number[] = [];
    const firstExec: number[] = [];
    const secondExec: number[] = [];
    const steps: Record<string, number[]> = { link: [], guestExec: [], status: [], polls: [] };
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const vm = await vireo.acquire("linux", { timeoutMs: 0 });
      acquire.push(performance.now() - t0);
      if (breakdown) await timeSteps(manager, vm.name, steps);
      else {
        const r = await vireo.vmExec(vm.name, { argv: ["true"] });
        if (r.exitCode !== 0) throw new Error(`exec true in ${vm.name}: exit code ${r.exitCode}`);
      }
      firstExec.push(performance.now() - t0);
      // The same again on the agent link now open: what the first one paid for the connection.
      const t1 = performance.now();
      await vireo.vmExec(vm.name, { argv: ["true"] });
      secondExec.push(performance.now() - t1);
      await vireo.release("linux", vm.name);
      // Not counted: the replacement's start would compete with the next acquire for the CPU.
      while ((await vireo.getPool("linux")).ready < size) await sleep(200);
    }
    await vireo.deletePool("linux");
    const perVm = (x: number) => Math.round(x / warmCount);
    return {
      pool: `Debian riscv64, 256 MiB, translator, source ${source}`,
      warm: {
        size: warmCount,
        fillMs: Math.round(fill),
        rssMiBBefore: Math.round(before.rss),
        rssMiBAfter: Math.round(after.rss),
        pssMiBBefore: Math.round(before.pss),
        pssMiBAfter: Math.round(after.pss),
        pssMiBPerVm: perVm(after.pss - before.pss),
        vmsPerGiB: Math.floor(1024 / ((after.pss - before.pss) / warmCount)),
      },
      size,
      acquireMs: summary(acquire),
      acquireToFirstExecMs: summary(firstExec),
      secondExecMs: summary(secondExec),
      ...(breakdown
        ? {
            breakdown: {
              linkMs: summary(steps.link as number[]),
              guestExecMs: summary(steps.guestExec as number[]),
              statusPollsMs: summary(steps.status as number[]),
              polls: summary(steps.polls as number[]),
            },
          }
        : {}),
    };
  } finally {
    await app.close();
    await manager.shutdown(0);
    rmSync(dir, { recursive: true, force: true });
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
      const warmCount = flag("warm", 4);
      const only = process.argv.indexOf("--source");
      const sources =
        only < 0 ? (["snapshot", "boot"] as const) : [process.argv[only + 1] as "snapshot" | "boot"];
      for (const source of sources) {
        process.stdout.write(
          `${JSON.stringify(await linuxPools(source, linux, warmCount, process.argv.includes("--breakdown")))}\n`,
        );
      }
    }
  } finally {
    child.kill("SIGTERM");
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
