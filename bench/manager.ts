/**
 * Manager benchmark (issue 9): how fast VMs come up, how fast the API answers, what an idle VM costs.
 *
 * - Boot rate: riscv64 bare-metal VMs (bench/guest/idle.S) created and run to their first guest
 *   instruction one after another, in process through createVm (until the guest's first UART byte) and
 *   through a `vireo daemon` child over its Unix socket (POST /vms, start, poll GET /vms/{id}/console
 *   until the guest's byte is there; then kill and DELETE): with the daemon's default warm pool back to
 *   back, with it again but 1 s apart (the pool refilled: the latency of one VM when a worker waits),
 *   and with --warm-workers 0 (each VM starts its worker). VMs per second, and each VM's latency.
 * - API latency: GET /vms/{id} and GET /vms/{id}/stats against a daemon running 20 idle VMs, one request
 *   at a time, a new connection each; p50 and p99.
 * - Memory per idle VM: a fresh process (bench/manager-idle.ts) starts 1, 10 and 50 idle 64 MiB guests,
 *   in process and in a worker thread each as the daemon runs them; (resident set after − before − guest
 *   RAM the VMs touched) / VMs.
 * Firecracker's published specification is printed beside them as an anchor: a different VMM, a
 * different workload (a Linux guest to init on KVM), not measured here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { requestDaemon } from "../src/cli/api-client.js";
import { nodeVmHost } from "../src/cli/vm-host.js";
import { createVm } from "../src/vm/create.js";
import { buildIdleGuest, idleSpec, MiB } from "./lib/manager-guest.js";
import { repoRoot } from "./lib/paths.js";
import { runTimed } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const IDLE_PROBE = join(repoRoot, "dist", "bench", "manager-idle.js");
const BOOTS_PER_RUN = 10;
const API_VMS = 20;
const API_REQUESTS = 500;
const IDLE_COUNTS = [1, 10, 50] as const;
/** Between spaced boots: time for the daemon to start the pool's replacement worker (not counted). */
const SPACED_PAUSE_MS = 1000;

const now = () => performance.now();

/** Boots `n` VMs one after another in process; returns each one's ms from createVm to its first byte. */
async function bootInProcess(elf: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    let first: () => void = () => {};
    const started = new Promise<void>((r) => (first = r));
    const vm = await createVm(
      idleSpec(`boot${i}`, elf),
      nodeVmHost({
        console: { writable: true, whenWritable: (go) => setImmediate(go), write: () => first() },
      }),
    );
    vm.start();
    await started;
    times.push(now() - t0);
    vm.kill();
    await vm.wait();
  }
  return times;
}

interface Daemon {
  child: ChildProcess;
  socket: string;
  dir: string;
}

/** A daemon child; `warmWorkers` null leaves --warm-workers at its default. */
function startDaemon(warmWorkers: number | null): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-daemon-"));
  const socket = join(dir, "vireo.sock");
  const args = [CLI, "daemon", "--socket", socket, "--state-dir", join(dir, "state"), "--stop-grace-ms", "0"];
  if (warmWorkers !== null) args.push("--warm-workers", String(warmWorkers));
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  return new Promise((ready, fail) => {
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("listening on")) ready({ child, socket, dir });
    });
    child.on("exit", (code) => fail(new Error(`daemon exited with ${code}: ${stderr}`)));
  });
}

async function stopDaemon(d: Daemon): Promise<void> {
  const exited = new Promise((r) => d.child.once("exit", r));
  d.child.kill("SIGTERM");
  await exited;
  rmSync(d.dir, { recursive: true, force: true });
}

async function must(socket: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await requestDaemon(socket, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Creates and starts VM `name` over the API. */
async function apiStart(d: Daemon, elf: string, name: string): Promise<void> {
  await must(d.socket, "POST", "/vms", idleSpec(name, elf));
  await must(d.socket, "POST", `/vms/${name}/actions/start`);
}

/**
 * Boots `n` VMs through the daemon, one after another; with `pauseMs`, that long (not counted) before
 * each, so that the daemon's warm pool has refilled. Returns each VM's ms to its first instruction.
 */
async function bootThroughDaemon(d: Daemon, elf: string, n: number, pauseMs = 0): Promise<number[]> {
  const times: number[] = [];
  const prefix = pauseMs > 0 ? "spaced" : "boot";
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${i}`;
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    const t0 = now();
    await apiStart(d, elf, name);
    // The guest's first UART byte, as in process: a worker VM's /stats answers from a snapshot the
    // worker posts every 500 ms, which would time that interval rather than the boot.
    while (String(await must(d.socket, "GET", `/vms/${name}/console`)).length === 0) {}
    times.push(now() - t0);
    await must(d.socket, "POST", `/vms/${name}/actions/kill`);
    for (;;) {
      const r = await requestDaemon(d.socket, "DELETE", `/vms/${name}`);
      if (r.status < 300) break;
      if (r.status !== 409) throw new Error(`DELETE /vms/${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
  return times;
}

/** The p-th percentile (nearest rank) of `values`. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function apiLatency(d: Daemon, elf: string): Promise<Record<string, { p50: number; p99: number }>> {
  for (let i = 0; i < API_VMS; i++) await apiStart(d, elf, `idle${i}`);
  const out: Record<string, { p50: number; p99: number }> = {};
  for (const [label, path] of [
    ["GET /vms/{id}", (i: number) => `/vms/idle${i % API_VMS}`],
    ["GET /vms/{id}/stats", (i: number) => `/vms/idle${i % API_VMS}/stats`],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < API_REQUESTS; i++) {
      const t0 = now();
      await must(d.socket, "GET", path(i));
      times.push(now() - t0);
    }
    out[label] = { p50: percentile(times, 50), p99: percentile(times, 99) };
  }
  for (let i = 0; i < API_VMS; i++) await must(d.socket, "POST", `/vms/idle${i}/actions/kill`);
  return out;
}

interface IdleProbe {
  count: number;
  before: number;
  after: number;
  touched: number;
}

async function idleOverhead(elf: string, count: number, worker: boolean, timeoutMs: number): Promise<number> {
  const args = ["--expose-gc", IDLE_PROBE, elf, String(count), ...(worker ? ["worker"] : [])];
  const r = await runTimed(process.execPath, args, { timeoutMs });
  if (r.code !== 0)
    throw new Error(`manager-idle ${count}${worker ? " worker" : ""}: exit ${r.code}\n${r.stderr}`);
  const p = JSON.parse(r.stdout.trim()) as IdleProbe;
  return (p.after - p.before - p.touched) / p.count;
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const guest = buildIdleGuest();
  if ("error" in guest) {
    console.log(`skipped: ${guest.error}`);
    return "skipped";
  }
  const { elf } = guest;
  try {
    return await measure(elf, options);
  } finally {
    rmSync(dirname(elf), { recursive: true, force: true });
  }
}

/** How the daemon boots: back to back with its default pool, spaced so the pool refills, no pool. */
const DAEMON_BOOTS = [
  { label: "daemon API, warm pool (default 2), back to back", warm: null, pauseMs: 0 },
  { label: "daemon API, warm pool refilled (1 s apart)", warm: null, pauseMs: SPACED_PAUSE_MS },
  { label: "daemon API, --warm-workers 0", warm: 0, pauseMs: 0 },
] as const;

async function measure(elf: string, options: BenchOptions): Promise<SectionOutcome> {
  const inProcess: number[][] = [];
  const viaDaemon: number[][][] = DAEMON_BOOTS.map(() => []);
  const latency: Record<string, { p50: number[]; p99: number[] }> = {};
  const idle = new Map<string, number[]>();
  try {
    for (let run = 0; run < options.runs; run++) {
      inProcess.push(await bootInProcess(elf, BOOTS_PER_RUN));
      const pooled = await startDaemon(null);
      try {
        viaDaemon[0]?.push(await bootThroughDaemon(pooled, elf, BOOTS_PER_RUN));
        viaDaemon[1]?.push(await bootThroughDaemon(pooled, elf, BOOTS_PER_RUN, SPACED_PAUSE_MS));
        for (const [label, l] of Object.entries(await apiLatency(pooled, elf))) {
          latency[label] ??= { p50: [], p99: [] };
          latency[label].p50.push(l.p50);
          latency[label].p99.push(l.p99);
        }
      } finally {
        await stopDaemon(pooled);
      }
      const cold = await startDaemon(0);
      try {
        viaDaemon[2]?.push(await bootThroughDaemon(cold, elf, BOOTS_PER_RUN));
      } finally {
        await stopDaemon(cold);
      }
      for (const worker of [false, true]) {
        for (const n of IDLE_COUNTS) {
          const key = `${worker}${n}`;
          const perVm = await idleOverhead(elf, n, worker, options.timeoutMs);
          idle.set(key, [...(idle.get(key) ?? []), perVm]);
        }
      }
    }
  } catch (e) {
    console.log(`failed: ${(e as Error).message}`);
    return "failed";
  }
  const rate = (runs: number[][]) =>
    median(runs.map((t) => (t.length * 1000) / t.reduce((a, b) => a + b, 0)));
  const each = (runs: number[][]) => median(runs.map((t) => median(t)));
  console.log(
    `${options.runs} run(s); boot: ${BOOTS_PER_RUN} VMs one after another per run and way; API: ${API_REQUESTS} requests per route, ${API_VMS} idle VMs running\n`,
  );
  // The spaced boots give a latency only: their pauses are what keeps the pool warm, not a rate.
  const daemonRows = (row: (runs: number[][]) => string, what: string, anchor: string, spaced: boolean) =>
    DAEMON_BOOTS.flatMap((b, i) =>
      spaced || b.pauseMs === 0 ? [[`${what}, ${b.label}`, row(viaDaemon[i] ?? []), anchor]] : [],
    );
  const idleRow = (worker: boolean, n: number) => [
    `MiB per idle 64 MiB VM, ${n} VM${n > 1 ? "s" : ""}, ${worker ? "a worker thread each (daemon)" : "createVm in process"}`,
    fmt(median(idle.get(`${worker}${n}`) ?? []) / MiB, 2),
    "≤ 5 MiB overhead per VM",
  ];
  console.log(
    renderTable(
      ["measure", "Vireo (median of runs)", "Firecracker's published figure (anchor, not measured here)"],
      [
        ["VMs to first guest instruction / s, createVm", fmt(rate(inProcess), 1), "5 VMs / s per host core"],
        ...daemonRows(
          (r) => fmt(rate(r), 1),
          "VMs to first guest instruction / s",
          "5 VMs / s per host core",
          false,
        ),
        [
          "ms to first guest instruction, createVm",
          fmt(each(inProcess), 1),
          "≤ 125 ms to guest init (Linux)",
        ],
        ...daemonRows(
          (r) => fmt(each(r), 1),
          "ms to first guest instruction",
          "≤ 125 ms to guest init (Linux)",
          true,
        ),
        ...Object.entries(latency).map(([label, l]) => [
          `${label} ms p50 / p99, ${API_VMS} VMs`,
          `${fmt(median(l.p50), 2)} / ${fmt(median(l.p99), 2)}`,
          "–",
        ]),
        ...IDLE_COUNTS.map((n) => idleRow(false, n)),
        ...IDLE_COUNTS.map((n) => idleRow(true, n)),
      ],
    ),
  );
  return "ok";
}

export const managerSection: BenchSection = {
  name: "manager",
  title: "VM manager: boot rate, API latency, idle memory",
  run,
};
