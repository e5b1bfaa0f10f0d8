/**
 * Linux boot benchmark (issue 3): the default Debian riscv64 guest (`vireo images fetch`) booted by Vireo
 * and by QEMU (TCG), each run a fresh process, timed from spawn to the first `VIREO-READY` on the console
 * (printed by the guest's /init once its filesystems are mounted) and to process exit. With `vireo.check=1`
 * on the kernel command line /init prints `CHECK ...` lines and powers off, so every run ends by itself.
 *
 * Vireo's instruction count and MIPS come from its `--stats` lines; the guest kernel's own clock is read
 * from the timestamps of its `Run /init as init process` and `reboot: Power down` lines.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseStats } from "./cpu.js";
import { repoRoot } from "./lib/paths.js";
import { failureReason, type RunResult, runTimed, tail, which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median, type Summary, summarize } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const QEMU = "qemu-system-riscv64";
const OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const READY = "VIREO-READY";
const DONE = "CHECK done";

/** The two kernel command lines: the default one, and one without the crypto self-tests. */
const CMDLINES = {
  A: "console=ttyS0 earlycon=sbi vireo.check=1",
  B: "console=ttyS0 earlycon=sbi vireo.check=1 quiet cryptomgr.notests",
} as const;
type CmdlineKey = keyof typeof CMDLINES;

interface BootConfig {
  id: string;
  label: string;
  engine: "vireo" | "qemu";
  cmdline: CmdlineKey;
  harts: number;
  /** Arguments before the kernel, initrd and command line. */
  args: readonly string[];
  /** The id of the QEMU configuration to compare with (same command line, one hart). */
  ref?: string;
  /** Why the configuration is not run, if it is not. */
  skip?: string;
}

interface BootRun {
  ready: number;
  exit: number;
  /** User + system CPU seconds of the process (Linux), from spawn to exit. */
  cpu?: number;
  /** Guest kernel timestamps (seconds) of `Run /init as init process` (not printed with `quiet`) and `reboot: Power down`. */
  guestInit?: number;
  guestPowerDown?: number;
  instructions?: number;
  mips?: number;
  vireoSeconds?: number;
}

interface ConfigResult {
  config: BootConfig;
  runs: BootRun[];
  failures: string[];
}

export interface Image {
  dir: string;
  kernel: string;
  initrd: string;
  packages: string[];
  /** `Image 31.2 MB sha256 8898c27a38f0bfcc…` etc., as `vireo images list` prints them. */
  files: string[];
}

/** The default guest image from Vireo's cache, or a sentence saying why it cannot be used. */
export function findImage(): Image | string {
  if (!existsSync(VIREO_CLI)) return `${VIREO_CLI} does not exist (npm run build)`;
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [VIREO_CLI, "images", ...args], { encoding: "utf8" });
  const path = cli(["path", "--arch", "riscv64"]);
  const dir = path.stdout.trim();
  if (path.status !== 0 || !dir) return `\`vireo images path\` failed: ${path.stderr.trim()}`;
  const kernel = join(dir, "Image");
  const initrd = join(dir, "initramfs.cpio.gz");
  if (!existsSync(kernel) || !existsSync(initrd))
    return `no guest image in ${dir}: run \`node dist/src/cli/main.js images fetch\` (needs apt)`;
  const list = cli(["list"]);
  const packages = [...list.stdout.matchAll(/^\s*package\s+(\S+ \S+)\s*$/gm)].map((m) => m[1]);
  const files = [...list.stdout.matchAll(/^\s*file\s+((?:Image|initramfs\.cpio\.gz) .+?)\s*$/gm)].map(
    (m) => m[1],
  );
  return { dir, kernel, initrd, packages, files };
}

function configs(options: BenchOptions): BootConfig[] {
  const builtin = ["--bios", "builtin"];
  const noQemu = options.noQemu
    ? "--no-qemu"
    : which(QEMU) === undefined
      ? `${QEMU} not found (apt-get install qemu-system-misc)`
      : undefined;
  const qemu = (cmdline: CmdlineKey): BootConfig => ({
    id: `qemu-${cmdline}`,
    label: `QEMU TCG, OpenSBI, 1 hart, ${cmdline}`,
    engine: "qemu",
    cmdline,
    harts: 1,
    args: ["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"],
    ...(noQemu ? { skip: noQemu } : {}),
  });
  return [
    {
      id: "vireo-A",
      label: "Vireo (translate, the default), built-in SBI, 1 hart, A",
      engine: "vireo",
      cmdline: "A",
      harts: 1,
      args: builtin,
      ref: "qemu-A",
    },
    {
      id: "vireo-B",
      label: "Vireo (translate, the default), built-in SBI, 1 hart, B",
      engine: "vireo",
      cmdline: "B",
      harts: 1,
      args: builtin,
      ref: "qemu-B",
    },
    {
      id: "vireo-interpreter-A",
      label: "Vireo --engine interpreter, built-in SBI, 1 hart, A",
      engine: "vireo",
      cmdline: "A",
      harts: 1,
      args: [...builtin, "--engine", "interpreter"],
      ref: "qemu-A",
    },
    {
      id: "vireo-opensbi-A",
      label: "Vireo, OpenSBI fw_dynamic, 1 hart, A",
      engine: "vireo",
      cmdline: "A",
      harts: 1,
      args: ["--bios", OPENSBI],
      ref: "qemu-A",
      ...(existsSync(OPENSBI) ? {} : { skip: `${OPENSBI} not found (apt-get install opensbi)` }),
    },
    {
      id: "vireo-2-A",
      label: "Vireo, built-in SBI, 2 harts, A",
      engine: "vireo",
      cmdline: "A",
      harts: 2,
      args: [...builtin, "--cpus", "2"],
    },
    qemu("A"),
    qemu("B"),
  ];
}

/** A kernel log timestamp, `[    5.014199] <text>`, in seconds. */
function kernelTime(stdout: string, text: string): number | undefined {
  const escaped = text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const m = new RegExp(`^\\[\\s*(\\d+\\.\\d+)\\] ${escaped}`, "m").exec(stdout);
  return m ? Number(m[1]) : undefined;
}

/** Why a boot run does not count, or undefined if it is good. */
function checkRun(config: BootConfig, r: RunResult): string | undefined {
  const why = failureReason(r);
  if (why) return why;
  const out = r.stdout.replace(/\r/g, "");
  if (r.marks[READY] === undefined) return `${READY} not printed`;
  if (!out.includes(DONE)) return `\`${DONE}\` not printed`;
  const harts = /^CHECK harts=(\d+)$/m.exec(out)?.[1];
  if (Number(harts) !== config.harts) return `guest saw ${harts ?? "no"} harts, expected ${config.harts}`;
  return undefined;
}

async function bootOnce(config: BootConfig, image: Image, options: BenchOptions): Promise<BootRun | string> {
  const cmdline = CMDLINES[config.cmdline];
  // Vireo's options are spelt --kernel etc., QEMU's -kernel etc.
  const dash = config.engine === "vireo" ? "--" : "-";
  const guest = [`${dash}kernel`, image.kernel, `${dash}initrd`, image.initrd, `${dash}append`, cmdline];
  const [command, args] =
    config.engine === "vireo"
      ? [process.execPath, [VIREO_CLI, "run", ...config.args, ...guest, "--stats"]]
      : [QEMU, [...config.args, ...guest]];
  const r = await runTimed(command, args, { cwd: repoRoot, timeoutMs: options.timeoutMs, marks: [READY] });
  let why = checkRun(config, r);
  const stats = config.engine === "vireo" ? parseStats(r.stderr) : undefined;
  if (!why && config.engine === "vireo" && !stats) why = "no complete `stats:` lines on stderr";
  if (why) {
    console.error(`boot ${config.id}: run failed: ${why}`);
    const text = r.stderr.trim() ? r.stderr : r.stdout;
    if (text.trim()) console.error(`  ${r.stderr.trim() ? "stderr" : "stdout"} (tail):\n${tail(text)}`);
    return why;
  }
  const out = r.stdout.replace(/\r/g, "");
  const run: BootRun = { ready: r.marks[READY], exit: r.seconds };
  if (r.cpuSeconds !== undefined) run.cpu = r.cpuSeconds;
  const guestInit = kernelTime(out, "Run /init as init process");
  const guestPowerDown = kernelTime(out, "reboot: Power down");
  if (guestInit !== undefined) run.guestInit = guestInit;
  if (guestPowerDown !== undefined) run.guestPowerDown = guestPowerDown;
  if (stats) {
    run.instructions = stats.instructions;
    run.mips = stats.mips;
    run.vireoSeconds = stats.seconds;
  }
  return run;
}

const range = (s: Summary | undefined, decimals: number) =>
  s ? `${fmt(s.median, decimals)} (${fmt(s.min, decimals)}–${fmt(s.max, decimals)})` : "–";

/** Summary of one field over the runs that have it. */
function field(runs: readonly BootRun[], get: (r: BootRun) => number | undefined): Summary | undefined {
  const values = runs.map(get).filter((v): v is number => v !== undefined);
  return values.length > 0 ? summarize(values) : undefined;
}

function report(results: ConfigResult[], options: BenchOptions): void {
  const byId = new Map(results.map((r) => [r.config.id, r]));
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const { config, runs, failures } of results) {
    const ok = `${runs.length}/${runs.length + failures.length}`;
    if (config.skip) {
      rows.push([config.label, "skipped", "–", "–", "–", "–", "–", "–", "–"]);
      notes.push(`${config.id}: skipped: ${config.skip}`);
      continue;
    }
    const ready = field(runs, (r) => r.ready);
    const exit = field(runs, (r) => r.exit);
    const init = field(runs, (r) => r.guestInit);
    const down = field(runs, (r) => r.guestPowerDown);
    const insns = field(runs, (r) => r.instructions);
    const mips = field(runs, (r) => r.mips);
    const ref = config.ref ? byId.get(config.ref) : undefined;
    const refReady = ref && ref.runs.length > 0 ? median(ref.runs.map((r) => r.ready)) : undefined;
    const refExit = ref && ref.runs.length > 0 ? median(ref.runs.map((r) => r.exit)) : undefined;
    const refCpu = ref ? field(ref.runs, (r) => r.cpu) : undefined;
    const cpu = field(runs, (r) => r.cpu);
    const ratio =
      ready && exit && refReady !== undefined && refExit !== undefined
        ? `${fmt(ready.median / refReady, 2)}× / ${fmt(exit.median / refExit, 2)}×` +
          (cpu && refCpu ? ` / ${fmt(cpu.median / refCpu.median, 2)}×` : "")
        : "–";
    const guest =
      init || down ? `${init ? fmt(init.median, 2) : "–"} / ${down ? fmt(down.median, 2) : "–"}` : "–";
    if (runs.length === 0) {
      rows.push([config.label, ok, "failed", "failed", "–", "–", "–", "–", "–"]);
      notes.push(`${config.id}: every run failed: ${failures.join("; ")}`);
      continue;
    }
    rows.push([
      config.label,
      ok,
      range(ready, 2),
      range(exit, 2),
      cpu ? fmt(cpu.median, 2) : "–",
      guest,
      insns ? `${fmt(insns.median / 1e9, 3)} G` : "–",
      range(mips, 1),
      ratio,
    ]);
    if (failures.length > 0)
      notes.push(`${config.id}: ${failures.length} failed run(s): ${failures.join("; ")}`);
    if (insns && insns.max - insns.min > 0)
      notes.push(
        `${config.id}: instructions ${fmt(insns.min / 1e9, 4)}–${fmt(insns.max / 1e9, 4)} G` +
          ` (varies: the guest clock follows the host clock, so interrupts and time-dependent work differ between runs)`,
      );
    if (config.engine === "vireo" && config.harts > 1 && insns)
      notes.push(`${config.id}: instructions and MIPS are summed over the ${config.harts} harts`);
    const vs = field(runs, (r) => r.vireoSeconds);
    if (vs)
      notes.push(
        `${config.id}: Vireo's own \`stats: seconds\` median ${fmt(vs.median, 2)} s (exit − that = Node start-up and loading)`,
      );
  }
  console.log(
    renderTable(
      [
        "configuration",
        "ok",
        "to VIREO-READY s, median (min–max)",
        "to exit s, median (min–max)",
        "CPU s",
        "guest s at /init / power-down",
        "instructions",
        "Vireo MIPS (min–max)",
        "Vireo/QEMU ready / exit / CPU",
      ],
      rows,
    ),
  );
  console.log();
  console.log(
    `Timeout per run ${options.timeoutMs / 1000} s. CPU s: user + system CPU time of the process (median).`,
  );
  console.log("Guest s: the kernel's own timestamps (median);");
  console.log(
    "`Run /init` is not printed with `quiet`. MIPS = Vireo's instructions / its own seconds, whole run",
  );
  console.log("(including /init's `sleep 1`, when the hart mostly waits in WFI).");
  for (const n of notes) console.log(n);
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const image = findImage();
  if (typeof image === "string") {
    console.log(`boot: skipped: ${image}`);
    return "skipped";
  }
  console.log(`image: ${image.dir} (vireo images path; set XDG_CACHE_HOME to use another cache)`);
  console.log(`  packages: ${image.packages.join(", ") || "(not listed)"}`);
  console.log(`  files: ${image.files.join("; ") || "(not listed)"}`);
  for (const [key, cmdline] of Object.entries(CMDLINES)) console.log(`cmdline ${key}: \`${cmdline}\``);
  console.log(
    `QEMU: \`${QEMU} -M virt -m 512M -smp 1 -nographic -kernel Image -initrd initramfs.cpio.gz -append <cmdline>\` (its own OpenSBI)`,
  );
  console.log(
    "Runs are interleaved: run i of every configuration, then run i + 1, so load drift hits all alike.",
  );

  const results: ConfigResult[] = configs(options).map((config) => ({ config, runs: [], failures: [] }));
  for (let i = 1; i <= options.runs; i++) {
    for (const result of results) {
      // Two failures end a configuration: a broken boot need not cost five timeouts.
      if (result.config.skip || result.failures.length >= 2) continue;
      const outcome = await bootOnce(result.config, image, options);
      if (typeof outcome === "string") {
        result.failures.push(`run ${i}: ${outcome}`);
        continue;
      }
      result.runs.push(outcome);
      const extra = outcome.mips === undefined ? "" : `, ${outcome.mips.toFixed(1)} MIPS`;
      console.error(
        `boot ${result.config.id}: run ${i}/${options.runs}: ready ${outcome.ready.toFixed(2)} s, exit ${outcome.exit.toFixed(2)} s${extra}`,
      );
    }
  }
  console.log();
  report(results, options);
  return results.some((r) => r.failures.length > 0) ? "failed" : "ok";
}

export const bootSection: BenchSection = { name: "boot", title: "Linux boot (issues 3, 10)", run };
