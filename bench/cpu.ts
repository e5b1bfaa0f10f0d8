/**
 * CPU benchmark (issues 2 and 10): the bench/guest workload (~199 M RV64GC instructions) run by Vireo's
 * two engines (the interpreter and the wasm translator, `--engine translate`) and by QEMU's TCG, as
 * cpu-bare.elf (M-mode, no translation) and cpu-sv39.elf (S-mode, Sv39, 4 KiB pages).
 *
 * Vireo's figures come from its own `--stats` lines (instructions, seconds, mips); QEMU has no instruction
 * counter worth using for speed, so QEMU MIPS = Vireo's instruction count / QEMU's process wall time
 * (start-up included; the empty guest shows how much of it that is). The instruction count is also
 * measured independently under QEMU with -icount (cpu-*-count.elf) and compared with Vireo's.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./lib/paths.js";
import { failureReason, type RunResult, runInherit, runTimed, tail, which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { type Summary, summarize } from "./lib/stats.js";
import { fmt, fmtCount, renderTable } from "./lib/table.js";

const CROSS_CC = "riscv64-unknown-elf-gcc";
const QEMU = "qemu-system-riscv64";
const GUEST_DIR = join(repoRoot, "bench", "guest");
const BUILD_DIR = join(repoRoot, "bench", "build");
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const VARIANTS = ["bare", "sv39"] as const;
type Variant = (typeof VARIANTS)[number];

const elf = (name: string) => join(BUILD_DIR, `cpu-${name}.elf`);
const qemuArgs = (kernel: string, extra: string[] = []) => [
  ...["-M", "spike", "-bios", "none", "-nographic"],
  ...extra,
  ...["-kernel", kernel],
];

interface VireoStats {
  instructions: number;
  seconds: number;
  mips: number;
}

const ENGINES = ["interpreter", "translate"] as const;
type Engine = (typeof ENGINES)[number];

interface EngineRuns {
  stats: VireoStats[];
  /** Process wall time (node start-up, wasm compilation and translation included). */
  wall: number[];
  error?: string;
}

interface VariantResult {
  variant: Variant;
  /** Dynamic instruction count measured under QEMU -icount (undefined without QEMU). */
  icount?: number;
  vireo: Record<Engine, EngineRuns>;
  qemu: number[];
  qemuError?: string;
}

/** Parses the `stats: <name> <value>` lines that `vireo run --stats` prints to stderr. */
export function parseStats(stderr: string): VireoStats | undefined {
  const get = (name: string) => {
    const m = new RegExp(`^stats: ${name} (\\S+)\\s*$`, "m").exec(stderr);
    return m ? Number(m[1]) : Number.NaN;
  };
  const stats = { instructions: get("instructions"), seconds: get("seconds"), mips: get("mips") };
  return Object.values(stats).every(Number.isFinite) ? stats : undefined;
}

/** The output lines of a guest, without the carriage returns QEMU's -nographic console adds. */
function outputLines(stdout: string): string[] {
  return stdout
    .replace(/\r/g, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** Why a guest run does not count (exit status, missing checksum), or undefined if it is good. */
function checkRun(r: RunResult, expected: string): string | undefined {
  const why = failureReason(r);
  if (why) return why;
  const lines = outputLines(r.stdout);
  if (!lines.includes(expected)) {
    const shown = lines.slice(-3).join(" | ") || "nothing";
    return `checksum ${expected} not printed (stdout: ${shown.slice(0, 200)})`;
  }
  return undefined;
}

function describeFailure(tool: string, variant: Variant, why: string, r?: RunResult): void {
  console.error(`cpu-${variant}: ${tool} run failed: ${why}`);
  if (r && (r.stderr.trim() || r.stdout.trim())) {
    if (r.stderr.trim()) console.error(`  stderr (tail):\n${tail(r.stderr)}`);
    else console.error(`  stdout (tail):\n${tail(r.stdout)}`);
  }
}

/** Builds the guests (make decides what is stale). Returns false, having said why, if it cannot. */
function build(): boolean {
  const need = [CROSS_CC, "make", "cc"].filter((tool) => which(tool) === undefined);
  if (need.length > 0) {
    console.log(`cpu: skipped: ${need.join(", ")} not found on PATH (needed to build bench/guest).`);
    console.log("     On Debian: apt-get install gcc-riscv64-unknown-elf make gcc");
    return false;
  }
  if (!runInherit("make", ["-s", "-C", GUEST_DIR, "all", "count"])) {
    console.log("cpu: skipped: building bench/guest failed (see above).");
    return false;
  }
  return true;
}

async function measureIcount(variant: Variant, options: BenchOptions): Promise<number | undefined> {
  const r = await runTimed(QEMU, qemuArgs(elf(`${variant}-count`), ["-icount", "shift=0,sleep=off"]), {
    timeoutMs: options.timeoutMs,
  });
  const m = /^instret (\d+)$/m.exec(r.stdout.replace(/\r/g, ""));
  if (failureReason(r) || !m) {
    describeFailure("QEMU -icount", variant, failureReason(r) ?? "no instret line", r);
    return undefined;
  }
  return Number(m[1]);
}

/** One run of Vireo per engine, alternating, `runs` times (so load drifts hit both alike). */
async function runVireo(result: VariantResult, expected: string, options: BenchOptions): Promise<void> {
  const { variant } = result;
  if (!existsSync(VIREO_CLI)) {
    for (const engine of ENGINES) result.vireo[engine].error = "dist/src/cli/main.js not built";
    console.error(`cpu-${variant}: Vireo skipped: ${VIREO_CLI} does not exist`);
    return;
  }
  for (let i = 1; i <= options.runs; i++) {
    for (const engine of ENGINES) {
      const runs = result.vireo[engine];
      if (runs.error !== undefined) continue;
      const args = [
        ...[VIREO_CLI, "run", "--arch", "riscv64", "--bios", "none", "--kernel", elf(variant)],
        ...["--engine", engine, "--stats"],
      ];
      const r = await runTimed(process.execPath, args, { cwd: repoRoot, timeoutMs: options.timeoutMs });
      const stats = parseStats(r.stderr);
      const why = checkRun(r, expected) ?? (stats ? undefined : "no complete `stats:` lines on stderr");
      if (why || !stats) {
        // One failure is enough: the emulator is deterministic, so the other runs would fail the same way.
        runs.error = why ?? "no stats";
        describeFailure(`Vireo (${engine})`, variant, runs.error, r);
        continue;
      }
      runs.stats.push(stats);
      runs.wall.push(r.seconds);
      console.error(
        `cpu-${variant}: Vireo ${engine} run ${i}/${options.runs}: ${stats.mips.toFixed(1)} MIPS, ${stats.seconds.toFixed(3)} s, process ${r.seconds.toFixed(3)} s`,
      );
    }
  }
}

async function runQemu(result: VariantResult, expected: string, options: BenchOptions): Promise<void> {
  const { variant } = result;
  for (let i = 1; i <= options.runs; i++) {
    const r = await runTimed(QEMU, qemuArgs(elf(variant)), { timeoutMs: options.timeoutMs });
    const why = checkRun(r, expected);
    if (why) {
      result.qemuError = why;
      describeFailure("QEMU", variant, why, r);
      return;
    }
    result.qemu.push(r.seconds);
    console.error(`cpu-${variant}: QEMU run ${i}/${options.runs}: ${r.seconds.toFixed(3)} s`);
  }
}

/** Median wall time of QEMU running a guest that passes at once. */
async function qemuStartup(options: BenchOptions): Promise<Summary | undefined> {
  const times: number[] = [];
  for (let i = 0; i < options.runs; i++) {
    const r = await runTimed(QEMU, qemuArgs(elf("empty")), { timeoutMs: options.timeoutMs });
    if (failureReason(r)) return undefined;
    times.push(r.seconds);
  }
  return summarize(times);
}

function report(results: VariantResult[], startup: Summary | undefined, qemuNote: string | undefined): void {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const r of results) {
    const vireoCount = r.vireo.interpreter.stats[0]?.instructions ?? r.vireo.translate.stats[0]?.instructions;
    const count = vireoCount ?? r.icount;
    const qSec = r.qemu.length > 0 ? summarize(r.qemu).median : undefined;
    const qMips = count !== undefined && qSec !== undefined ? count / qSec / 1e6 : undefined;
    const qemuCell = (v: string) => (r.qemuError ? "failed" : qemuNote && qSec === undefined ? "skipped" : v);
    for (const engine of ENGINES) {
      const runs = r.vireo[engine];
      const mips = runs.stats.length > 0 ? summarize(runs.stats.map((x) => x.mips)) : undefined;
      const wall = runs.wall.length > 0 ? summarize(runs.wall).median : undefined;
      // Whole process: instructions over the process's wall time, start-up and compilation included.
      const wholeMips = count !== undefined && wall !== undefined ? count / wall / 1e6 : undefined;
      const partial = runs.error ? ` [${runs.stats.length} ok, then failed]` : "";
      rows.push([
        `cpu-${r.variant}`,
        engine,
        fmtCount(count),
        mips ? `${fmt(mips.median, 1)} (${fmt(mips.min, 1)}–${fmt(mips.max, 1)})${partial}` : "failed",
        fmt(wall, 3),
        fmt(wholeMips, 1),
        qemuCell(fmt(qSec, 3)),
        qemuCell(fmt(qMips, 1)),
        wholeMips && qMips ? `${fmt(wholeMips / qMips, 2)}×` : "–",
      ]);
      if (runs.error) notes.push(`cpu-${r.variant}: Vireo ${engine} failed: ${runs.error}`);
    }
    if (r.qemuError) notes.push(`cpu-${r.variant}: QEMU failed: ${r.qemuError}`);
    const counts = ENGINES.map((e) => r.vireo[e].stats[0]?.instructions);
    if (counts[0] !== undefined && counts[1] !== undefined && counts[0] !== counts[1])
      notes.push(`cpu-${r.variant}: the engines retired different counts: ${counts.join(" vs ")} (a bug)`);
    if (vireoCount !== undefined && r.icount !== undefined) {
      // QEMU also counts the 6 instructions of its reset ROM at 0x1000, and the -icount build reads
      // instret about where the plain build stores its pass code: a few apart is agreement.
      const d = vireoCount - r.icount;
      const verdict = Math.abs(d) <= 50 ? "agrees" : "DISAGREES";
      notes.push(
        `cpu-${r.variant}: instruction count ${verdict} with QEMU -icount ${fmtCount(r.icount)} (Vireo ${d >= 0 ? "+" : ""}${d}; QEMU's includes its 6-instruction reset ROM)`,
      );
    }
    if (count !== undefined && qSec !== undefined && startup && qSec > startup.median)
      notes.push(
        `cpu-${r.variant}: QEMU MIPS without start-up (wall − empty-guest median): ${fmt(count / (qSec - startup.median) / 1e6, 1)}`,
      );
  }
  console.log(
    renderTable(
      [
        "variant",
        "Vireo engine",
        "instructions",
        "guest MIPS median (min–max)",
        "process s",
        "process MIPS",
        "QEMU s",
        "QEMU MIPS",
        "Vireo/QEMU (process)",
      ],
      rows,
    ),
  );
  console.log();
  console.log(
    "guest MIPS: Vireo's own --stats (instructions over the engine's run time); process: instructions over the whole process's wall time, Node start-up and compilation included, as QEMU's.",
  );
  if (startup)
    console.log(
      `QEMU start-up + exit (empty guest): median ${fmt(startup.median, 3)} s (${fmt(startup.min, 3)}–${fmt(startup.max, 3)}), included in "QEMU s".`,
    );
  if (qemuNote) console.log(qemuNote);
  for (const n of notes) console.log(n);
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  if (!build()) return "skipped";
  const expected = readFileSync(join(BUILD_DIR, "cpu.expected"), "utf8").trim();
  console.log(
    `workload: bench/guest, ${VARIANTS.map((v) => `cpu-${v}.elf`).join(", ")}; checksum ${expected}`,
  );

  const haveQemu = !options.noQemu && which(QEMU) !== undefined;
  const qemuNote = options.noQemu
    ? "QEMU runs skipped (--no-qemu)."
    : haveQemu
      ? undefined
      : `QEMU runs skipped: ${QEMU} not found (apt-get install qemu-system-misc).`;
  const results: VariantResult[] = [];
  for (const variant of VARIANTS) {
    const result: VariantResult = {
      variant,
      vireo: { interpreter: { stats: [], wall: [] }, translate: { stats: [], wall: [] } },
      qemu: [],
    };
    if (haveQemu) {
      const count = await measureIcount(variant, options);
      if (count !== undefined) result.icount = count;
    }
    await runVireo(result, expected, options);
    if (haveQemu) await runQemu(result, expected, options);
    results.push(result);
  }
  const startup = haveQemu ? await qemuStartup(options) : undefined;
  console.log();
  report(results, startup, qemuNote);
  return results.some((r) => ENGINES.some((e) => r.vireo[e].error) || r.qemuError) ? "failed" : "ok";
}

export const cpuSection: BenchSection = { name: "cpu", title: "CPU (issues 2, 10)", run };
