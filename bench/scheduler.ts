/**
 * Scheduler benchmark (issue 11): how well the daemon's CPU scheduler shares host CPUs between busy
 * riscv64 VMs, and what it costs. Every VM runs test/guest-daemon/counter.S (counts for ever) in a
 * worker thread of a VmManager, as `vireo daemon` runs it; instruction counts come from windows
 * bracketed by pause/resume, so they are exact.
 *
 * - Fairness: 3, 10 and 30 busy VMs with weights cycling 100/200/400/800 on a one-CPU pool; each VM's
 *   share of the instructions retired against its share of the weights (max and mean absolute error,
 *   in percentage points, and the largest error relative to its weight share).
 * - The same guests as separate `vireo run` processes pinned to one host CPU (taskset) under
 *   `nice -n N`, N mapped from the weights (CFS: 1.25× per nice level), counted by the ticks they print.
 * - Overhead: total guest MIPS of 10 busy VMs on the one-CPU pool against one VM alone on it.
 * - Ready time: the share of the window each of the 10 VMs was runnable but queued.
 * - Isolation: a dedicated VM's MIPS alone and with 8 busy shared VMs on the other CPU (needs 2 host
 *   CPUs this process may use).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeVmHost } from "../src/cli/vm-host.js";
import { vmWorkerEntry } from "../src/cli/vm-worker.js";
import { available as libcAvailable, threadAffinity } from "../src/hypervisor/libc.js";
import { VmManager, type VmManagerOptions } from "../src/manager/manager.js";
import { bareMetalSpec, buildBareMetal } from "../test/support/bare-metal.js";
import { repoRoot } from "./lib/paths.js";
import { which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const WEIGHTS = [100, 200, 400, 800] as const;
const FAIRNESS_COUNTS = [3, 10, 30] as const;
const NICE_COUNTS = [3, 10] as const;
const OVERHEAD_VMS = 10;
const BESIDE_DEDICATED = 8;
const WINDOW_MS = 4_000;
/** Before a window: every VM has started and taken turns (workers start one after another). */
const SETTLE_MS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const weightOf = (i: number) => WEIGHTS[i % WEIGHTS.length] as number;

function counterSpec(name: string, elf: string, cpu: Record<string, unknown>) {
  return { ...bareMetalSpec(name, elf, 16 * 2 ** 20), cpu };
}

async function openManager(extra: Partial<VmManagerOptions>): Promise<VmManager> {
  return VmManager.open({
    stateDir: null,
    log: () => {},
    host: (console) => nodeVmHost({ console }),
    vmWorker: vmWorkerEntry,
    warmWorkers: 0,
    ...extra,
  });
}

interface Window {
  /** Instructions each VM retired in the window. */
  insns: number[];
  /** Thread CPU and ready ms each VM was charged in the window. */
  cpuMs: number[];
  readyMs: number[];
  wallMs: number;
}

/** Runs `names` for WINDOW_MS between pauses, so the instruction counts are exact. */
async function measureWindow(m: VmManager, names: readonly string[]): Promise<Window> {
  const snap = () =>
    names.map((n) => {
      const s = m.stats(n);
      return [s.instructions ?? 0, s.scheduling?.cpuMs ?? 0, s.scheduling?.readyMs ?? 0] as const;
    });
  for (const n of names) await m.act(n, "pause");
  const before = snap();
  const t0 = performance.now();
  for (const n of names) await m.act(n, "resume");
  await sleep(WINDOW_MS);
  for (const n of names) await m.act(n, "pause");
  const wallMs = performance.now() - t0;
  const after = snap();
  for (const n of names) await m.act(n, "resume");
  const delta = (k: 0 | 1 | 2) => after.map((a, i) => a[k] - (before[i]?.[k] ?? 0));
  return { insns: delta(0), cpuMs: delta(1), readyMs: delta(2), wallMs };
}

/** Creates and starts shared VMs s0… with cycling weights; returns their names. */
async function startShared(m: VmManager, elf: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `s${i}`);
  for (const [i, n] of names.entries())
    m.create(counterSpec(n, elf, { mode: "shared", weight: weightOf(i) }));
  for (const n of names) await m.act(n, "start");
  return names;
}

/** Starts `count` shared VMs with cycling weights on a fresh one-CPU pool and measures one window. */
async function sharedRun(elf: string, count: number): Promise<Window> {
  const m = await openManager({ sharedCpus: 1 });
  try {
    const names = await startShared(m, elf, count);
    await sleep(SETTLE_MS);
    return await measureWindow(m, names);
  } finally {
    await m.shutdown(0);
  }
}

interface FairnessError {
  /** Percentage points of the total. */
  maxAbs: number;
  meanAbs: number;
  /** The largest |measured − expected| / expected, in %. */
  maxRel: number;
}

function fairness(progress: readonly number[]): FairnessError {
  const total = progress.reduce((a, b) => a + b, 0);
  const weightTotal = progress.reduce((a, _, i) => a + weightOf(i), 0);
  const errors = progress.map((p, i) => {
    const want = weightOf(i) / weightTotal;
    return { abs: Math.abs(p / total - want) * 100, rel: (Math.abs(p / total - want) / want) * 100 };
  });
  return {
    maxAbs: Math.max(...errors.map((e) => e.abs)),
    meanAbs: errors.reduce((a, e) => a + e.abs, 0) / errors.length,
    maxRel: Math.max(...errors.map((e) => e.rel)),
  };
}

/** The nice level giving weight `w` against the heaviest (CFS: each level 1.25× less CPU). */
const niceOf = (w: number) => Math.round(Math.log(Math.max(...WEIGHTS) / w) / Math.log(1.25));

/**
 * The counter guest as `count` `vireo run` processes on host CPU `cpu`, niced by weight; ticks each
 * printed over WINDOW_MS once all print (a tick is one loop of the guest, the same instructions each).
 */
async function niceRun(elf: string, count: number, cpu: number): Promise<number[]> {
  const last: number[] = new Array(count).fill(-1);
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const args = ["-n", String(niceOf(weightOf(i))), "taskset", "-c", String(cpu), process.execPath];
      args.push(CLI, "run", "--bios", "none", "--kernel", elf, "--memory", "16M");
      const child = spawn("nice", args, { stdio: ["ignore", "pipe", "ignore"] });
      children.push(child);
      let tail = "";
      child.stdout?.on("data", (d: Buffer) => {
        tail = (tail + d.toString("latin1")).slice(-64);
        const m = /tick ([0-9a-f]{16})\n[^\n]*$/.exec(tail);
        if (m) last[i] = Number.parseInt(m[1] as string, 16);
      });
    }
    for (let waited = 0; last.some((t) => t < 0); waited += 100) {
      if (waited > 120_000) throw new Error("niced vireo run printed no tick in 120 s");
      await sleep(100);
    }
    await sleep(SETTLE_MS);
    const before = [...last];
    await sleep(WINDOW_MS);
    return last.map((t, i) => t - (before[i] ?? 0));
  } finally {
    for (const c of children) c.kill("SIGKILL");
  }
}

/** A thread of this process: its CPU time so far (ms), from its schedstat. */
function threadCpuMs(thread: number): number {
  return Number(readFileSync(`/proc/self/task/${thread}/schedstat`, "utf8").split(" ")[0]) / 1e6;
}

interface Isolation {
  /** MIPS over the wall time, and per second of the VM's thread CPU time. */
  alone: number;
  beside: number;
  aloneCpu: number;
  besideCpu: number;
}

/** A dedicated VM's MIPS alone, then with BESIDE_DEDICATED busy shared VMs on the other CPU. */
async function isolationRun(elf: string, two: readonly number[]): Promise<Isolation> {
  const m = await openManager({ hostCpus: two });
  try {
    m.create(counterSpec("ded", elf, { mode: "dedicated" }));
    await m.act("ded", "start");
    await sleep(SETTLE_MS);
    // The pool charges shared VMs only: the dedicated thread's CPU time comes from its schedstat.
    const thread = m.stats("ded").scheduling?.thread;
    const cpuMs = () => (thread === undefined ? Number.NaN : threadCpuMs(thread));
    let t = cpuMs();
    const alone = await measureWindow(m, ["ded"]);
    const aloneMs = cpuMs() - t;
    await startShared(m, elf, BESIDE_DEDICATED);
    await sleep(SETTLE_MS);
    t = cpuMs();
    const beside = await measureWindow(m, ["ded"]);
    const besideMs = cpuMs() - t;
    const mips = (w: Window) => (w.insns[0] ?? 0) / w.wallMs / 1000;
    return {
      alone: mips(alone),
      beside: mips(beside),
      aloneCpu: (alone.insns[0] ?? 0) / aloneMs / 1000,
      besideCpu: (beside.insns[0] ?? 0) / besideMs / 1000,
    };
  } finally {
    await m.shutdown(0);
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-sched-"));
  try {
    let elf: string;
    try {
      elf = buildBareMetal("test/guest-daemon/counter.S", join(dir, "counter.elf"));
    } catch (e) {
      console.log(`skipped: ${(e as Error).message.split("\n")[0]}`);
      return "skipped";
    }
    return await measure(elf, options);
  } catch (e) {
    console.log(`failed: ${(e as Error).stack ?? e}`);
    return "failed";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(elf: string, options: BenchOptions): Promise<SectionOutcome> {
  const cpus = libcAvailable() ? threadAffinity() : [];
  const nice = which("nice") && which("taskset") && cpus.length > 0;
  const fair = new Map<string, FairnessError[]>();
  const push = (key: string, e: FairnessError) => fair.set(key, [...(fair.get(key) ?? []), e]);
  const aloneMips: number[] = [];
  const aloneCpu: number[] = [];
  /** The share of one CPU the pool's threads got over the window (the host's other work takes the rest). */
  const aloneBusy: number[] = [];
  const loadedBusy: number[] = [];
  const loadedMips: number[] = [];
  const loadedCpu: number[] = [];
  const readyPct: number[][] = [];
  const isolation: Isolation[] = [];
  for (let r = 0; r < options.runs; r++) {
    const alone = await sharedRun(elf, 1);
    aloneMips.push(sum(alone.insns) / alone.wallMs / 1000);
    aloneCpu.push(sum(alone.insns) / sum(alone.cpuMs) / 1000);
    aloneBusy.push((sum(alone.cpuMs) / alone.wallMs) * 100);
    for (const count of FAIRNESS_COUNTS) {
      const w = await sharedRun(elf, count);
      push(`vireo${count}`, fairness(w.insns));
      if (count === OVERHEAD_VMS) {
        loadedMips.push(sum(w.insns) / w.wallMs / 1000);
        loadedCpu.push(sum(w.insns) / sum(w.cpuMs) / 1000);
        loadedBusy.push((sum(w.cpuMs) / w.wallMs) * 100);
        readyPct.push(w.readyMs.map((ms) => (ms / w.wallMs) * 100));
      }
      console.log(
        `run ${r + 1}, ${count} VMs: ${(sum(w.insns) / 1e6).toFixed(0)} M insns in ${w.wallMs.toFixed(0)} ms`,
      );
    }
    if (nice) {
      for (const count of NICE_COUNTS)
        push(`nice${count}`, fairness(await niceRun(elf, count, cpus[0] ?? 0)));
    }
    if (cpus.length >= 2) isolation.push(await isolationRun(elf, cpus.slice(0, 2)));
  }
  const med = (key: string, k: keyof FairnessError) => median((fair.get(key) ?? []).map((e) => e[k]));
  console.log(
    `\n${options.runs} run(s) per configuration; windows of ${WINDOW_MS} ms; weights cycling ${WEIGHTS.join("/")}\n`,
  );
  const fairRows = [
    ...FAIRNESS_COUNTS.map((n) => [`vireo, ${n} VMs, one-CPU pool`, `vireo${n}`]),
    ...(nice
      ? NICE_COUNTS.map((n) => [`${n} niced vireo run processes, one CPU (taskset)`, `nice${n}`])
      : []),
  ];
  console.log(
    renderTable(
      [
        "fairness: share of work vs share of weight",
        "max abs error (pp)",
        "mean abs error (pp)",
        "max rel error %",
      ],
      fairRows.map(([label, key]) => [
        label as string,
        fmt(med(key as string, "maxAbs"), 2),
        fmt(med(key as string, "meanAbs"), 2),
        fmt(med(key as string, "maxRel"), 1),
      ]),
    ),
  );
  if (!nice) console.log("nice comparison skipped: needs nice, taskset and the thread affinity (libc)");
  console.log(`nice levels by weight: ${WEIGHTS.map((w) => `${w} → ${niceOf(w)}`).join(", ")}\n`);
  const ratio = (a: number, b: number) => `${fmt((a / b) * 100, 1)} %`;
  const rows = [
    ["guest MIPS (wall), 1 VM alone on the one-CPU pool", fmt(median(aloneMips), 1), "–"],
    [`guest MIPS (wall), ${OVERHEAD_VMS} busy VMs on it, total`, fmt(median(loadedMips), 1), "–"],
    [
      `  ${OVERHEAD_VMS} VMs / 1 VM (scheduler overhead, wall)`,
      ratio(median(loadedMips), median(aloneMips)),
      "≥ 95 %",
    ],
    ["guest MIPS per thread-CPU second, 1 VM", fmt(median(aloneCpu), 1), "–"],
    [`guest MIPS per thread-CPU second, ${OVERHEAD_VMS} VMs`, fmt(median(loadedCpu), 1), "–"],
    [`  ${OVERHEAD_VMS} VMs / 1 VM (per CPU second)`, ratio(median(loadedCpu), median(aloneCpu)), "≥ 95 %"],
    ["thread CPU time / wall time, 1 VM", `${fmt(median(aloneBusy), 1)} %`, "–"],
    [`thread CPU time / wall time, ${OVERHEAD_VMS} VMs together`, `${fmt(median(loadedBusy), 1)} %`, "–"],
  ];
  if (readyPct.length > 0) {
    // Per weight: the median over runs and over the VMs of that weight.
    const byWeight = WEIGHTS.map((w) => {
      const mine = readyPct.flatMap((r) => r.filter((_, i) => weightOf(i) === w));
      return `${w}: ${fmt(median(mine), 1)} %`;
    });
    rows.push([`ready time / window, ${OVERHEAD_VMS} VMs, by weight`, byWeight.join(", "), "–"]);
  }
  if (isolation.length > 0) {
    const alone = median(isolation.map((i) => i.alone));
    const beside = median(isolation.map((i) => i.beside));
    rows.push(["dedicated VM MIPS, alone", fmt(alone, 1), "–"]);
    rows.push([`dedicated VM MIPS, ${BESIDE_DEDICATED} busy shared VMs beside`, fmt(beside, 1), "–"]);
    rows.push(["  beside / alone", ratio(beside, alone), "≥ 95 %"]);
    const aloneCpuMips = median(isolation.map((i) => i.aloneCpu));
    const besideCpuMips = median(isolation.map((i) => i.besideCpu));
    rows.push(["dedicated VM MIPS per thread-CPU second, alone", fmt(aloneCpuMips, 1), "–"]);
    rows.push([`  … beside ${BESIDE_DEDICATED} shared VMs`, fmt(besideCpuMips, 1), "–"]);
    rows.push(["  beside / alone (per CPU second)", ratio(besideCpuMips, aloneCpuMips), "≥ 95 %"]);
  } else {
    rows.push([
      "dedicated VM beside shared ones",
      `skipped: ${cpus.length} host CPU(s) usable, needs 2`,
      "–",
    ]);
  }
  console.log(renderTable(["measure", "median of runs", "goal"], rows));
  return "ok";
}

export const schedulerSection: BenchSection = {
  name: "scheduler",
  title: "CPU scheduler: fairness, overhead, ready time, isolation",
  run,
};
