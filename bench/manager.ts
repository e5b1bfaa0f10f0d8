/**
 * Manager benchmark (issue 9): how fast VMs come up, how fast the API answers, what an idle VM costs.
 *
 * - Boot rate: riscv64 bare-metal VMs (bench/guest/idle.S) created and run to their first guest
 *   instruction one after another, in process through createVm (until the guest's first UART byte) and
 *   through a `vireo daemon` child over its Unix socket (POST /vms, start, poll /stats until the
 *   instruction count is above zero; then kill and DELETE). VMs per second, and each VM's latency.
 * - API latency: GET /vms/{id} and GET /vms/{id}/stats against a daemon running 20 idle VMs, one request
 *   at a time, a new connection each; p50 and p99.
 * - Memory per idle VM: a fresh process (bench/manager-idle.ts) starts 1, 10 and 50 idle 64 MiB guests;
 *   (resident set after − before − guest RAM the VMs touched) / VMs.
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

function startDaemon(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-daemon-"));
  const socket = join(dir, "vireo.sock");
  const child = spawn(
    process.execPath,
    [CLI, "daemon", "--socket", socket, "--state-dir", join(dir, "state"), "--stop-grace-ms", "0"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
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

async function bootThroughDaemon(d: Daemon, elf: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `boot${i}`;
    const t0 = now();
    await apiStart(d, elf, name);
    for (;;) {
      const stats = (await must(d.socket, "GET", `/vms/${name}/stats`)) as { instructions?: number };
      if ((stats.instructions ?? 0) > 0) break;
    }
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

async function idleOverhead(elf: string, count: number, timeoutMs: number): Promise<number> {
  const r = await runTimed(process.execPath, ["--expose-gc", IDLE_PROBE, elf, String(count)], { timeoutMs });
  if (r.code !== 0) throw new Error(`manager-idle ${count}: exit ${r.code}\n${r.stderr}`);
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

async function measure(elf: string, options: BenchOptions): Promise<SectionOutcome> {
  const inProcess: number[][] = [];
  const viaDaemon: number[][] = [];
  const latency: Record<string, { p50: number[]; p99: number[] }> = {};
  const idle = new Map<number, number[]>(IDLE_COUNTS.map((n) => [n, []]));
  try {
    for (let run = 0; run < options.runs; run++) {
      inProcess.push(await bootInProcess(elf, BOOTS_PER_RUN));
      const d = await startDaemon();
      try {
        viaDaemon.push(await bootThroughDaemon(d, elf, BOOTS_PER_RUN));
        for (const [label, l] of Object.entries(await apiLatency(d, elf))) {
          latency[label] ??= { p50: [], p99: [] };
          latency[label].p50.push(l.p50);
          latency[label].p99.push(l.p99);
        }
      } finally {
        await stopDaemon(d);
      }
      for (const n of IDLE_COUNTS) idle.get(n)?.push(await idleOverhead(elf, n, options.timeoutMs));
    }
  } catch (e) {
    console.log(`failed: ${(e as Error).message}`);
    return "failed";
  }
  const rate = (runs: number[][]) =>
    median(runs.map((t) => (t.length * 1000) / t.reduce((a, b) => a + b, 0)));
  const each = (runs: number[][]) => median(runs.map((t) => median(t)));
  console.log(
    `${options.runs} run(s); boot: ${BOOTS_PER_RUN} VMs one after another per run; API: ${API_REQUESTS} requests per route, ${API_VMS} idle VMs running\n`,
  );
  console.log(
    renderTable(
      ["measure", "Vireo (median of runs)", "Firecracker's published figure (anchor, not measured here)"],
      [
        ["VMs to first guest instruction / s, createVm", fmt(rate(inProcess), 1), "5 VMs / s per host core"],
        [
          "VMs to first guest instruction / s, daemon API",
          fmt(rate(viaDaemon), 1),
          "5 VMs / s per host core",
        ],
        [
          "ms to first guest instruction, createVm",
          fmt(each(inProcess), 1),
          "≤ 125 ms to guest init (Linux)",
        ],
        [
          "ms to first guest instruction, daemon API",
          fmt(each(viaDaemon), 1),
          "≤ 125 ms to guest init (Linux)",
        ],
        ...Object.entries(latency).map(([label, l]) => [
          `${label} ms p50 / p99, ${API_VMS} VMs`,
          `${fmt(median(l.p50), 2)} / ${fmt(median(l.p99), 2)}`,
          "–",
        ]),
        ...IDLE_COUNTS.map((n) => [
          `MiB per idle 64 MiB VM, ${n} VM${n > 1 ? "s" : ""}`,
          fmt(median(idle.get(n) ?? []) / MiB, 2),
          "≤ 5 MiB overhead per VM",
        ]),
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
