/**
 * Virtio benchmark (issue 4), measured inside the default Debian riscv64 guest (`vireo images fetch`),
 * Vireo against QEMU (TCG), each run a fresh process, runs interleaved:
 *
 * - virtio-blk: sequential write and read of 128 MiB with busybox dd (bs=1M, O_DIRECT) and 4 KiB random
 *   reads (O_DIRECT, one at a time) with bench/guest/randread.c, on a fresh 256 MiB sparse raw file per run.
 * - console: the same 2 MiB of output (`dd if=/dev/zero | tr '\0' x`) written to /dev/null (baseline), to
 *   the emulated 16550 UART (/dev/ttyS0) and to virtio-console (/dev/hvc0); Vireo's `--stats` gives the
 *   guest instructions each costs (minus the baseline boot's).
 * - ring formats: Vireo's virtio-blk and hvc0 runs again with `--virtio-ring split`, against the default
 *   (Linux then negotiates packed virtqueues).
 *
 * The guest's /init runs a shell snippet given in base64 on the kernel command line (`vireo.run=`) and
 * prints its output on the console; every time is measured in the guest, from the kernel's monotonic
 * clock (`now at N nsecs` of /proc/timer_list), so boot and start-up are not part of any figure.
 */
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { findImage, type Image } from "./boot.js";
import { parseStats } from "./cpu.js";
import { repoRoot } from "./lib/paths.js";
import { failureReason, type RunResult, runInherit, runTimed, tail, which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median, type Summary, summarize } from "./lib/stats.js";
import { fmt, fmtCount, renderTable } from "./lib/table.js";

const QEMU = "qemu-system-riscv64";
const CROSS_CC = "riscv64-unknown-elf-gcc";
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const GUEST_DIR = join(repoRoot, "bench", "guest");
const RANDREAD = join(repoRoot, "bench", "build", "randread");
const MiB = 2 ** 20;

/** The boot section's command line B: no crypto self-tests, a quiet kernel (see docs/BENCHMARKS.md). */
const BASE_APPEND = "console=ttyS0 earlycon=sbi vireo.check=1 quiet cryptomgr.notests";
/** riscv64's COMMAND_LINE_SIZE is 1024 bytes, the terminating NUL included. */
const CMDLINE_MAX = 1023;

const SCRATCH_BYTES = 256 * MiB;
const SEQ_MIB = 128;
const RAND_SPAN_MIB = 128;
const RAND_SECONDS = 2;
const CONSOLE_BLOCKS = 512; // of 4 KiB
const CONSOLE_BYTES = CONSOLE_BLOCKS * 4096;
const MB = 1e6;

/** A shell function printing the kernel's monotonic clock in ns (the third line of /proc/timer_list). */
const CLOCK = "t(){ sed -n 's/^now at \\([0-9]*\\) nsecs/\\1/p;3q' /proc/timer_list;}";

/**
 * The virtio-blk snippet: finds the scratch and tools disks by serial number (QEMU and Vireo number
 * virtio-mmio devices differently), copies randread from the tools disk, then times (in order) dd from
 * /dev/zero to /dev/null (the writes' source alone), the O_DIRECT write, the O_DIRECT read (after dropping
 * the page cache) and the random reads over the written part.
 */
function blkSnippet(seed: number): string {
  const timed = (label: string, command: string) => `a=$(t);${command};b=$(t);echo ${label} ns=$((b-a))`;
  return [
    "set -e",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    "for b in /sys/block/vd*;do case $(cat $b/serial) in scratch)S=/dev/${b##*/};;tools)T=/dev/${b##*/};;esac;done",
    '[ -b "$S" ]&&[ -b "$T" ]||{ echo BLK no disks;exit 3;}',
    "cat $T >/tmp/rr;chmod +x /tmp/rr",
    CLOCK,
    timed("ZERO", `dd if=/dev/zero of=/dev/null bs=1M count=${SEQ_MIB}`),
    timed("SEQW", `dd if=/dev/zero of=$S bs=1M count=${SEQ_MIB} oflag=direct`),
    "echo 3 >/proc/sys/vm/drop_caches",
    timed("SEQR", `dd if=$S of=/dev/null bs=1M count=${SEQ_MIB} iflag=direct`),
    `/tmp/rr $S ${RAND_SPAN_MIB} ${RAND_SECONDS} ${seed}`,
    "",
  ].join("\n");
}

type Sink = "null" | "ttyS0" | "hvc0";

/** The console snippet: CONSOLE_BYTES of 'x' into /dev/<sink>, timed. */
function consoleSnippet(sink: Sink): string {
  return [
    "set -e",
    CLOCK,
    `a=$(t);dd if=/dev/zero bs=4k count=${CONSOLE_BLOCKS} 2>/dev/null|tr '\\0' x >/dev/${sink};b=$(t);echo;echo CONS ns=$((b-a))`,
    "",
  ].join("\n");
}

function cmdline(snippet: string): string {
  const line = `${BASE_APPEND} vireo.run=${Buffer.from(snippet).toString("base64")}`;
  if (line.length > CMDLINE_MAX)
    throw new Error(`kernel command line is ${line.length} bytes (max ${CMDLINE_MAX})`);
  return line;
}

interface VirtioConfig {
  id: string;
  label: string;
  engine: "vireo" | "qemu";
  kind: "blk" | "console";
  sink?: Sink;
  /** Vireo with `--virtio-ring split` (the default offers packed rings, which Linux takes). */
  splitRing?: boolean;
  skip?: string;
}

interface BlkRun {
  /** Seconds, guest clock. */
  zero: number;
  seqWrite: number;
  seqRead: number;
  randReads: number;
  randSeconds: number;
}

interface ConsoleRun {
  /** Seconds of the dd | tr pipeline, guest clock. */
  seconds: number;
  /** Vireo: guest instructions of the whole boot, and external interrupts taken. */
  instructions?: number;
  externalInterrupts?: number;
}

interface ConfigResult {
  config: VirtioConfig;
  /** Indexed by run number (1-based), so runs of different configurations can be paired. */
  blk: Map<number, BlkRun>;
  console: Map<number, ConsoleRun>;
  failures: string[];
}

interface Context {
  image: Image;
  dir: string;
  tools: string;
  options: BenchOptions;
}

function configs(options: BenchOptions): VirtioConfig[] {
  const noQemu = options.noQemu
    ? "--no-qemu"
    : which(QEMU) === undefined
      ? `${QEMU} not found (apt-get install qemu-system-misc)`
      : undefined;
  const list: VirtioConfig[] = [];
  for (const engine of ["vireo", "qemu"] as const) {
    const name = engine === "vireo" ? "Vireo" : "QEMU";
    const skip = engine === "qemu" && noQemu ? { skip: noQemu } : {};
    list.push({ id: `${engine}-blk`, label: `${name} virtio-blk`, engine, kind: "blk", ...skip });
    for (const sink of ["null", "ttyS0", "hvc0"] as const)
      list.push({
        id: `${engine}-${sink}`,
        label: `${name} → /dev/${sink}`,
        engine,
        kind: "console",
        sink,
        ...skip,
      });
  }
  list.push(
    {
      id: "vireo-blk-split",
      label: "Vireo virtio-blk, split ring",
      engine: "vireo",
      kind: "blk",
      splitRing: true,
    },
    {
      id: "vireo-hvc0-split",
      label: "Vireo → /dev/hvc0, split ring",
      engine: "vireo",
      kind: "console",
      sink: "hvc0",
      splitRing: true,
    },
  );
  return list;
}

/** The command running one configuration's guest with the given kernel command line. */
function command(config: VirtioConfig, ctx: Context, append: string, scratch?: string): [string, string[]] {
  const { kernel, initrd } = ctx.image;
  if (config.engine === "vireo") {
    const devices =
      config.kind === "blk"
        ? ["--drive", `file=${scratch},id=scratch`, "--drive", `file=${ctx.tools},id=tools,readonly=on`]
        : ["--virtio-console"];
    return [
      process.execPath,
      [
        ...[VIREO_CLI, "run", "--bios", "builtin", "--kernel", kernel, "--initrd", initrd],
        ...[...devices, "--append", append, "--stats"],
        ...(config.splitRing ? ["--virtio-ring", "split"] : []),
      ],
    ];
  }
  const machine = ["-M", "virt", "-m", "512M", "-smp", "1", "-kernel", kernel, "-initrd", initrd];
  const devices =
    config.kind === "blk"
      ? [
          "-nographic",
          ...["-drive", `file=${scratch},if=none,id=d0,format=raw`],
          ...["-device", "virtio-blk-device,drive=d0,serial=scratch"],
          ...["-drive", `file=${ctx.tools},if=none,id=d1,format=raw,readonly=on`],
          ...["-device", "virtio-blk-device,drive=d1,serial=tools"],
        ]
      : [
          // Both consoles on one stdio back end, as Vireo writes both to its stdout.
          ...["-display", "none", "-chardev", "stdio,id=con,mux=on,signal=off", "-serial", "chardev:con"],
          ...["-device", "virtio-serial-device", "-device", "virtconsole,chardev=con"],
        ];
  return [QEMU, [...machine, ...devices, "-append", append]];
}

const nsField = (out: string, label: string): number | undefined => {
  const m = new RegExp(`${label} ns=(\\d+)`).exec(out);
  return m ? Number(m[1]) / 1e9 : undefined;
};

/** Why a run does not count (exit status, the snippet's status), or undefined. */
function checkCommon(r: RunResult, out: string): string | undefined {
  const why = failureReason(r);
  if (why) return why;
  const status = /CHECK run-status=(\S+)/.exec(out)?.[1];
  if (status !== "0") return `guest snippet ${status === undefined ? "did not run" : `exited ${status}`}`;
  if (!out.includes("CHECK done")) return "`CHECK done` not printed";
  return undefined;
}

function countX(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0x78) n++;
  return n;
}

async function runOnce(config: VirtioConfig, ctx: Context, i: number): Promise<BlkRun | ConsoleRun | string> {
  const snippet = config.kind === "blk" ? blkSnippet(i) : consoleSnippet(config.sink ?? "null");
  let scratch: string | undefined;
  if (config.kind === "blk") {
    scratch = join(ctx.dir, `scratch-${config.id}-${i}.img`);
    // A fresh sparse file: created empty, then extended (no blocks allocated).
    writeFileSync(scratch, "");
    truncateSync(scratch, SCRATCH_BYTES);
  }
  const [cmd, args] = command(config, ctx, cmdline(snippet), scratch);
  // The console runs write megabytes a byte at a time (QEMU's UART: a write(2) per byte): into a file,
  // which nothing reads while the guest runs, so the host's side costs as little as it can.
  const outFile = config.kind === "console" ? join(ctx.dir, `out-${config.id}-${i}.txt`) : undefined;
  const r = await runTimed(cmd, args, {
    cwd: repoRoot,
    timeoutMs: ctx.options.timeoutMs,
    ...(outFile ? { stdoutFile: outFile } : {}),
  });
  if (outFile) {
    r.stdout = readFileSync(outFile, "latin1");
    unlinkSync(outFile);
  }
  const out = r.stdout.replace(/\r/g, "");
  let why = checkCommon(r, out);
  let result: BlkRun | ConsoleRun | undefined;
  const stats = config.engine === "vireo" ? parseStats(r.stderr) : undefined;
  if (!why && config.engine === "vireo" && !stats) why = "no complete `stats:` lines on stderr";
  if (!why && config.kind === "blk" && scratch) {
    const zero = nsField(out, "ZERO");
    const seqWrite = nsField(out, "SEQW");
    const seqRead = nsField(out, "SEQR");
    const rand = /RANDREAD reads=(\d+) ns=(\d+)/.exec(out);
    // The writes must have reached the file: at least SEQ_MIB allocated (it started with none).
    const allocated = statSync(scratch).blocks * 512;
    if (zero === undefined || seqWrite === undefined || seqRead === undefined || !rand)
      why = "missing ZERO/SEQW/SEQR/RANDREAD lines";
    else if (allocated < SEQ_MIB * MiB)
      why = `scratch file has only ${allocated} bytes allocated after the write`;
    else result = { zero, seqWrite, seqRead, randReads: Number(rand[1]), randSeconds: Number(rand[2]) / 1e9 };
  }
  if (scratch) unlinkSync(scratch);
  if (!why && config.kind === "console") {
    const seconds = nsField(out, "CONS");
    // Everything written must have reached the host (the rest of the output has a handful of x's).
    const xs = countX(out);
    const expectAll = config.sink !== "null";
    if (seconds === undefined) why = "no CONS line";
    else if (expectAll ? xs < CONSOLE_BYTES : xs >= CONSOLE_BYTES)
      why = `${xs} 'x' bytes on the host's stdout, expected ${expectAll ? "at least" : "fewer than"} ${CONSOLE_BYTES}`;
    else {
      const run: ConsoleRun = { seconds };
      if (stats) {
        run.instructions = stats.instructions;
        const sei = /^stats: interrupts .*\bsei=(\d+)/m.exec(r.stderr);
        run.externalInterrupts = sei ? Number(sei[1]) : 0;
      }
      result = run;
    }
  }
  if (why || !result) {
    why ??= "no result";
    console.error(`virtio ${config.id}: run ${i} failed: ${why}`);
    const text = r.stderr.trim() ? r.stderr : out.replace(/x{80,}/g, (s) => `<${s.length} x>`);
    if (text.trim()) console.error(`  ${r.stderr.trim() ? "stderr" : "stdout"} (tail):\n${tail(text)}`);
    return why;
  }
  return result;
}

const rate = (bytes: number, s: Summary | undefined) => (s ? bytes / s.median / MB : undefined);
const range = (s: Summary | undefined, decimals: number, scale = 1) =>
  s
    ? `${fmt(s.median * scale, decimals)} (${fmt(s.min * scale, decimals)}–${fmt(s.max * scale, decimals)})`
    : "–";

function summaryOf<T>(runs: Map<number, T>, get: (r: T) => number | undefined): Summary | undefined {
  const values = [...runs.values()].map(get).filter((v): v is number => v !== undefined);
  return values.length > 0 ? summarize(values) : undefined;
}

function status(r: ConfigResult | undefined): string {
  if (!r) return "–";
  if (r.config.skip) return "skipped";
  const n = r.config.kind === "blk" ? r.blk.size : r.console.size;
  return `${n}/${n + r.failures.length}`;
}

function reportBlk(byId: Map<string, ConfigResult>): string[] {
  const vireo = byId.get("vireo-blk");
  const qemu = byId.get("qemu-blk");
  const notes: string[] = [];
  const seq = SEQ_MIB * MiB;
  // Throughputs per run (bytes / that run's seconds), so min–max are of the rates themselves.
  const rates = (r: ConfigResult | undefined, get: (b: BlkRun) => number) =>
    r && r.blk.size > 0 ? summarize([...r.blk.values()].map(get)) : undefined;
  const tests: [string, (b: BlkRun) => number, number][] = [
    [`sequential write, ${SEQ_MIB} MiB, dd bs=1M oflag=direct: MB/s`, (b) => seq / b.seqWrite / MB, 1],
    [`sequential read, ${SEQ_MIB} MiB, dd bs=1M iflag=direct: MB/s`, (b) => seq / b.seqRead / MB, 1],
    [`random read 4 KiB, O_DIRECT, queue depth 1: IOPS`, (b) => b.randReads / b.randSeconds, 0],
    [`(guest CPU: dd /dev/zero → /dev/null, ${SEQ_MIB} MiB: MB/s)`, (b) => seq / b.zero / MB, 1],
  ];
  const rows = tests.map(([label, get, decimals]) => {
    const v = rates(vireo, get);
    const q = rates(qemu, get);
    return [
      label,
      range(v, decimals),
      q ? range(q, decimals) : qemu?.config.skip ? "skipped" : "–",
      v && q ? `${fmt(v.median / q.median, 2)}×` : "–",
    ];
  });
  console.log(
    renderTable(
      [
        `virtio-blk (runs ok: Vireo ${status(vireo)}, QEMU ${status(qemu)})`,
        "Vireo, median (min–max)",
        "QEMU, median (min–max)",
        "Vireo/QEMU",
      ],
      rows,
    ),
  );
  const randCount = (r: ConfigResult | undefined) =>
    summaryOf(r?.blk ?? new Map<number, BlkRun>(), (b) => b.randReads);
  const vr = randCount(vireo);
  const qr = randCount(qemu);
  if (vr || qr)
    notes.push(
      `random reads per ${RAND_SECONDS} s run (median): Vireo ${fmtCount(vr?.median)}, QEMU ${fmtCount(qr?.median)}; MB = 10^6 bytes`,
    );
  for (const r of [vireo, qemu])
    if (r && r.failures.length > 0) notes.push(`${r.config.id}: failed runs: ${r.failures.join("; ")}`);
  return notes;
}

function reportConsole(byId: Map<string, ConfigResult>): string[] {
  const notes: string[] = [];
  const rows: string[][] = [];
  const derived = new Map<string, { mbps?: number; net?: number; perByte?: number; irq?: number }>();
  for (const engine of ["vireo", "qemu"] as const) {
    const base = byId.get(`${engine}-null`);
    const baseTime = summaryOf(base?.console ?? new Map<number, ConsoleRun>(), (c) => c.seconds);
    const baseInsns = summaryOf(base?.console ?? new Map<number, ConsoleRun>(), (c) => c.instructions);
    for (const sink of ["null", "ttyS0", "hvc0"] as const) {
      const r = byId.get(`${engine}-${sink}`);
      if (!r) continue;
      if (r.config.skip) {
        rows.push([r.config.label, "skipped", "–", "–", "–", "–", "–", "–"]);
        continue;
      }
      const time = summaryOf(r.console, (c) => c.seconds);
      const mbps = rate(CONSOLE_BYTES, time);
      const net =
        sink !== "null" && time && baseTime && time.median > baseTime.median
          ? CONSOLE_BYTES / (time.median - baseTime.median) / MB
          : undefined;
      // Instructions over the baseline: run i of this sink minus run i of /dev/null (both boots alike).
      const diffs: number[] = [];
      const irqDiffs: number[] = [];
      if (sink !== "null" && base)
        for (const [i, c] of r.console) {
          const b = base.console.get(i);
          if (c.instructions !== undefined && b?.instructions !== undefined)
            diffs.push(c.instructions - b.instructions);
          if (c.externalInterrupts !== undefined && b?.externalInterrupts !== undefined)
            irqDiffs.push(c.externalInterrupts - b.externalInterrupts);
        }
      const diff = diffs.length > 0 ? summarize(diffs) : undefined;
      const irq = irqDiffs.length > 0 ? median(irqDiffs) : undefined;
      const perByte = diff ? diff.median / CONSOLE_BYTES : undefined;
      derived.set(`${engine}-${sink}`, { mbps, net, perByte, irq });
      const insns = summaryOf(r.console, (c) => c.instructions);
      rows.push([
        r.config.label,
        status(r),
        range(time, 3),
        fmt(mbps, 2),
        sink === "null" ? "(baseline)" : fmt(net, 2),
        sink === "null"
          ? insns
            ? `${fmt(insns.median / 1e9, 4)} G (whole boot)`
            : "–"
          : diff
            ? `${fmt(diff.median / 1e6, 1)} M (${fmt(diff.min / 1e6, 1)}–${fmt(diff.max / 1e6, 1)})`
            : "–",
        fmt(perByte, 1),
        irq === undefined ? "–" : fmtCount(irq),
      ]);
      if (r.failures.length > 0) notes.push(`${r.config.id}: failed runs: ${r.failures.join("; ")}`);
      if (engine === "vireo" && sink === "null" && baseInsns && baseInsns.max > baseInsns.min)
        notes.push(
          `vireo-null: whole-boot instructions ${fmt(baseInsns.min / 1e9, 4)}–${fmt(baseInsns.max / 1e9, 4)} G across runs (the guest clock follows the host's)`,
        );
    }
  }
  // The short table first: what readers ask for.
  const cell = (id: string, pick: "mbps" | "net" | "perByte", d: number) => fmt(derived.get(id)?.[pick], d);
  const ratio = (engine: string, pick: "mbps" | "net" | "perByte", invert = false) => {
    const t = derived.get(`${engine}-ttyS0`)?.[pick];
    const h = derived.get(`${engine}-hvc0`)?.[pick];
    if (t === undefined || h === undefined || t === 0 || h === 0) return "–";
    return `${fmt(invert ? t / h : h / t, 1)}×`;
  };
  console.log(
    renderTable(
      ["same 2 MiB of output", "ttyS0 (16550 UART)", "hvc0 (virtio-console)", "hvc0 advantage"],
      [
        [
          "Vireo, MB/s (guest-timed dd \\| tr)",
          cell("vireo-ttyS0", "mbps", 2),
          cell("vireo-hvc0", "mbps", 2),
          ratio("vireo", "mbps"),
        ],
        [
          "Vireo, MB/s net of the dd \\| tr pipeline",
          cell("vireo-ttyS0", "net", 2),
          cell("vireo-hvc0", "net", 2),
          ratio("vireo", "net"),
        ],
        [
          "Vireo, guest instructions per byte (over /dev/null)",
          cell("vireo-ttyS0", "perByte", 1),
          cell("vireo-hvc0", "perByte", 1),
          ratio("vireo", "perByte", true),
        ],
        [
          "QEMU, MB/s (guest-timed dd \\| tr)",
          cell("qemu-ttyS0", "mbps", 2),
          cell("qemu-hvc0", "mbps", 2),
          ratio("qemu", "mbps"),
        ],
        [
          "QEMU, MB/s net of the dd \\| tr pipeline",
          cell("qemu-ttyS0", "net", 2),
          cell("qemu-hvc0", "net", 2),
          ratio("qemu", "net"),
        ],
      ],
    ),
  );
  console.log();
  console.log(
    renderTable(
      [
        "configuration",
        "ok",
        "guest s, median (min–max)",
        "MB/s",
        "MB/s net of pipeline",
        "instructions over /dev/null, median (min–max)",
        "instructions/byte",
        "external interrupts over /dev/null",
      ],
      rows,
    ),
  );
  return notes;
}

/** Vireo with packed virtqueues (the default, which Linux negotiates) against --virtio-ring split. */
function reportRings(byId: Map<string, ConfigResult>): string[] {
  const seq = SEQ_MIB * MiB;
  const blkRates = (id: string, get: (b: BlkRun) => number) => {
    const r = byId.get(id);
    return r && r.blk.size > 0 ? summarize([...r.blk.values()].map(get)) : undefined;
  };
  const hvcRates = (id: string) => {
    const r = byId.get(id);
    return r && r.console.size > 0
      ? summarize([...r.console.values()].map((c) => CONSOLE_BYTES / c.seconds / MB))
      : undefined;
  };
  const row = (label: string, packed: Summary | undefined, split: Summary | undefined, decimals: number) => [
    label,
    range(packed, decimals),
    range(split, decimals),
    packed && split ? `${fmt(packed.median / split.median, 3)}×` : "–",
  ];
  const rows = [
    row(
      "virtio-blk sequential write, MB/s",
      blkRates("vireo-blk", (b) => seq / b.seqWrite / MB),
      blkRates("vireo-blk-split", (b) => seq / b.seqWrite / MB),
      1,
    ),
    row(
      "virtio-blk sequential read, MB/s",
      blkRates("vireo-blk", (b) => seq / b.seqRead / MB),
      blkRates("vireo-blk-split", (b) => seq / b.seqRead / MB),
      1,
    ),
    row(
      "virtio-blk random read 4 KiB QD1, IOPS",
      blkRates("vireo-blk", (b) => b.randReads / b.randSeconds),
      blkRates("vireo-blk-split", (b) => b.randReads / b.randSeconds),
      0,
    ),
    row("hvc0 2 MiB, MB/s (guest-timed dd \\| tr)", hvcRates("vireo-hvc0"), hvcRates("vireo-hvc0-split"), 2),
  ];
  console.log(
    renderTable(
      [
        `Vireo ring formats (runs ok, blk and hvc0: packed ${status(byId.get("vireo-blk"))}, ${status(byId.get("vireo-hvc0"))}; split ${status(byId.get("vireo-blk-split"))}, ${status(byId.get("vireo-hvc0-split"))})`,
        "packed (default), median (min–max)",
        "split, median (min–max)",
        "packed/split",
      ],
      rows,
    ),
  );
  const notes: string[] = [];
  for (const id of ["vireo-blk-split", "vireo-hvc0-split"]) {
    const r = byId.get(id);
    if (r && r.failures.length > 0) notes.push(`${id}: failed runs: ${r.failures.join("; ")}`);
  }
  return notes;
}

function report(results: ConfigResult[]): void {
  const byId = new Map(results.map((r) => [r.config.id, r]));
  const notes = reportBlk(byId);
  for (const n of notes) console.log(n);
  console.log();
  for (const n of reportConsole(byId)) console.log(n);
  console.log();
  for (const n of reportRings(byId)) console.log(n);
  for (const r of results) if (r.config.skip) console.log(`${r.config.id}: skipped: ${r.config.skip}`);
}

/** The file system type of the mount holding `path` (longest mount point that prefixes it). */
function fsType(path: string): string {
  try {
    let best = { dir: "", type: "unknown" };
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [, dir, type] = line.split(" ");
      if (
        dir &&
        type &&
        (path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`)) &&
        dir.length >= best.dir.length
      )
        best = { dir, type };
    }
    return `${best.type} on ${best.dir}`;
  } catch {
    return "unknown";
  }
}

function buildTools(): string | undefined {
  const need = [CROSS_CC, "make"].filter((tool) => which(tool) === undefined);
  if (need.length > 0)
    return `${need.join(", ")} not found on PATH (needed to build bench/guest/randread.c; Debian: apt-get install gcc-riscv64-unknown-elf make)`;
  if (!runInherit("make", ["-s", "-C", GUEST_DIR, "virtio"]))
    return "building bench/guest/randread.c failed (see above)";
  return undefined;
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const image = findImage();
  if (typeof image === "string") {
    console.log(`virtio: skipped: ${image}`);
    return "skipped";
  }
  const toolError = buildTools();
  if (toolError) {
    console.log(`virtio: skipped: ${toolError}`);
    return "skipped";
  }
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-virtio-"));
  try {
    // The tools disk: randread, zero-padded to whole 4 KiB blocks.
    const tools = join(dir, "tools.img");
    copyFileSync(RANDREAD, tools);
    truncateSync(tools, Math.ceil(statSync(tools).size / 4096) * 4096);
    const ctx: Context = { image, dir, tools, options };
    console.log(`image: ${image.dir}; files: ${image.files.join("; ") || "(not listed)"}`);
    console.log(
      `kernel command line: \`${BASE_APPEND} vireo.run=<base64 snippet>\` (${cmdline(blkSnippet(options.runs)).length} bytes ` +
        `for virtio-blk, ${cmdline(consoleSnippet("ttyS0")).length} for the console; max ${CMDLINE_MAX}); 1 hart, 512 MiB`,
    );
    console.log(
      `scratch disks: a fresh ${SCRATCH_BYTES / MiB} MiB sparse raw file per run in ${dir} (${fsType(dir)})`,
    );
    console.log(
      "Times are the guest's (kernel monotonic clock), runs interleaved: run i of every configuration, then i + 1.",
    );
    const results: ConfigResult[] = configs(options).map((config) => ({
      config,
      blk: new Map(),
      console: new Map(),
      failures: [],
    }));
    for (let i = 1; i <= options.runs; i++) {
      for (const result of results) {
        if (result.config.skip || result.failures.length >= 2) continue;
        const outcome = await runOnce(result.config, ctx, i);
        if (typeof outcome === "string") {
          result.failures.push(`run ${i}: ${outcome}`);
          continue;
        }
        let line: string;
        if ("seqWrite" in outcome) {
          result.blk.set(i, outcome);
          line =
            `write ${fmt((SEQ_MIB * MiB) / outcome.seqWrite / MB, 1)} MB/s, read ${fmt((SEQ_MIB * MiB) / outcome.seqRead / MB, 1)} MB/s, ` +
            `${fmt(outcome.randReads / outcome.randSeconds, 0)} IOPS`;
        } else {
          result.console.set(i, outcome);
          line = `${fmt(outcome.seconds, 3)} s${outcome.instructions === undefined ? "" : `, ${fmtCount(outcome.instructions)} instructions`}`;
        }
        console.error(`virtio ${result.config.id}: run ${i}/${options.runs}: ${line}`);
      }
    }
    console.log();
    report(results);
    console.log(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    return results.some((r) => r.failures.length > 0) ? "failed" : "ok";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const virtioSection: BenchSection = { name: "virtio", title: "Virtio (issue 4)", run };
