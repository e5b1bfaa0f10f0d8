/**
 * KVM benchmark (issue 5): Vireo's KVM engine against QEMU with `-enable-kvm`, on two small PVH guests of
 * our own (bench/guest-x86, built with GNU as/ld), so both boot exactly the same code:
 *
 * - exits/s: pio-pvh does N single-byte OUTs to one port, each a KVM_EXIT_IO. Port 0x80 is answered in
 *   Vireo's vCPU thread, port 0x3ff (the UART's scratch register) forwarded to the main thread; QEMU
 *   handles both in its vCPU thread. Rate = N / (median wall time with N − median wall time with 0), each
 *   run a fresh process, so start-up and exit cancel out.
 * - latency: process spawn → the guest's first output and → process exit (pio-pvh with N = 0); and in one
 *   process (bench/kvm-probe.ts), VM object creation → first KVM_RUN → first exit → end → closed, VMs
 *   made one after another.
 * - memory: touch-pvh writes one byte into each of P pages of a 128 MiB guest and halts; the process's
 *   VmRSS (/proc/<pid>/status) minus the P·4 KiB touched is the overhead: for the `vireo run` process, for
 *   QEMU, and in one process for a first and a second VM (the marginal cost of another VM).
 *
 * QEMU is optional (Debian qemu-system-x86): without it, or with --no-qemu, its columns say why.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./lib/paths.js";
import { failureReason, type RunResult, runTimed, tail, which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median, summarize } from "./lib/stats.js";
import { fmt, fmtCount, renderTable } from "./lib/table.js";

const QEMU = "qemu-system-x86_64";
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const PROBE = join(repoRoot, "dist", "bench", "kvm-probe.js");
const GUEST_DIR = join(repoRoot, "bench", "guest-x86");
const BUILD = join(repoRoot, "bench", "build", "guest-x86");
const PIO = join(BUILD, "pio-pvh.elf");
const TOUCH = join(BUILD, "touch-pvh.elf");

/** OUTs per exit-rate run: a few seconds at the rates of a nested host. */
const EXITS = 100_000;
const TOUCH_PAGES = 16_384; // 64 MiB
const GUEST_MIB = 128;
const QEMU_ARGS = [
  "-M",
  "microvm",
  "-enable-kvm",
  "-nographic",
  "-no-reboot",
  "-nodefaults",
  "-serial",
  "stdio",
];
/** QEMU's isa-debug-exit on the port exit32 writes (QEMU then exits with status 1). */
const QEMU_EXIT = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"];

function kvmUnavailable(): string | undefined {
  if (process.platform !== "linux" || process.arch !== "x64") return "not an x86-64 Linux host";
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
  } catch (e) {
    return `/dev/kvm cannot be opened (${(e as NodeJS.ErrnoException).code})`;
  }
  return undefined;
}

function buildGuests(): string | undefined {
  for (const tool of ["make", "as", "ld"]) {
    if (which(tool) === undefined) return `${tool} not found (apt-get install make binutils)`;
  }
  const r = spawnSync("make", ["-s", "-C", GUEST_DIR, `BUILD=${BUILD}`], { encoding: "utf8" });
  return r.status === 0 ? undefined : `make -C bench/guest-x86 failed:\n${r.stdout}${r.stderr}`;
}

function pioParams(dir: string, port: number, count: number): string {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(port, 0);
  b.writeUInt32LE(count, 4);
  const path = join(dir, `pio-${port.toString(16)}-${count}.bin`);
  writeFileSync(path, b);
  return path;
}

function touchParams(dir: string, pages: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(pages, 0);
  const path = join(dir, `touch-${pages}.bin`);
  writeFileSync(path, b);
  return path;
}

function vireoArgs(kernel: string, initrd: string, memoryMiB: number, stats = false): string[] {
  return [
    VIREO_CLI,
    ...["run", "--arch", "x86_64", "--engine", "kvm", "--kernel", kernel, "--initrd", initrd],
    ...["--memory", `${memoryMiB}M`, ...(stats ? ["--stats"] : [])],
  ];
}

function qemuArgs(kernel: string, initrd: string, memoryMiB: number): string[] {
  return [...QEMU_ARGS, "-m", `${memoryMiB}M`, "-kernel", kernel, "-initrd", initrd, ...QEMU_EXIT];
}

/** A run counts if the guest printed `marker` and the process ended as that emulator ends a run. */
function runOk(r: RunResult, marker: string, qemu: boolean): string | undefined {
  if (!r.stdout.includes(marker)) return `no '${marker}' on stdout (${failureReason(r) ?? "exit 0"})`;
  if (qemu)
    return r.code === 1 ? undefined : (failureReason(r) ?? "exit status 0, expected isa-debug-exit's 1");
  return failureReason(r);
}

/** What kept QEMU from running a KVM guest here, or undefined when it can. */
function qemuUnavailable(options: BenchOptions, params: string): string | undefined {
  if (options.noQemu) return "--no-qemu";
  if (which(QEMU) === undefined) return `${QEMU} not installed (Debian: apt-get install qemu-system-x86)`;
  const r = spawnSync(QEMU, qemuArgs(PIO, params, 64), { encoding: "utf8", timeout: 30_000, input: "" });
  if (r.status !== 1 || !r.stdout.includes("pio done")) {
    return `${QEMU} -enable-kvm did not run the guest: ${(r.stderr || r.stdout).trim().split("\n").pop()}`;
  }
  return undefined;
}

function range(values: number[], decimals: number): string {
  if (values.length === 0) return "–";
  const s = summarize(values);
  return `${fmt(s.median, decimals)} (${fmt(s.min, decimals)}–${fmt(s.max, decimals)})`;
}

// ---------------------------------------------------------------------------------------------------------
// Exits per second

interface RateConfig {
  label: string;
  engine: "vireo" | "qemu";
  port: number;
  skip?: string;
}

async function exitRates(options: BenchOptions, dir: string, qemuSkip: string | undefined): Promise<boolean> {
  const configs: RateConfig[] = [
    { label: "Vireo, port 0x80 (answered in the vCPU thread)", engine: "vireo", port: 0x80 },
    { label: "Vireo, port 0x3ff (forwarded to the main thread)", engine: "vireo", port: 0x3ff },
    { label: "QEMU -enable-kvm, port 0x80", engine: "qemu", port: 0x80 },
    { label: "QEMU -enable-kvm, port 0x3ff (16550 scratch)", engine: "qemu", port: 0x3ff },
  ];
  for (const c of configs) if (c.engine === "qemu" && qemuSkip !== undefined) c.skip = qemuSkip;
  const times = new Map<string, number[]>();
  const statRates = new Map<string, number[]>();
  let ok = true;
  for (let run = 0; run < options.runs; run++) {
    for (const c of configs) {
      if (c.skip !== undefined) continue;
      for (const count of [0, EXITS]) {
        const params = pioParams(dir, c.port, count);
        const r =
          c.engine === "vireo"
            ? await runTimed(process.execPath, vireoArgs(PIO, params, 64, true), {
                timeoutMs: options.timeoutMs,
              })
            : await runTimed(QEMU, qemuArgs(PIO, params, 64), { timeoutMs: options.timeoutMs });
        const bad = runOk(r, "pio done", c.engine === "qemu");
        if (bad !== undefined) {
          console.log(`${c.label}, ${count} exits, run ${run + 1}: ${bad}\n${tail(r.stderr)}`);
          ok = false;
          continue;
        }
        const key = `${c.label}/${count}`;
        times.set(key, [...(times.get(key) ?? []), r.seconds]);
        if (c.engine === "vireo" && count === EXITS) {
          const seconds = Number(/^stats: seconds ([\d.]+)$/m.exec(r.stderr)?.[1]);
          if (seconds > 0) statRates.set(c.label, [...(statRates.get(c.label) ?? []), EXITS / seconds]);
        }
      }
    }
  }
  const rows = configs.map((c) => {
    if (c.skip !== undefined) return [c.label, "skipped", "–", "–", "–"];
    const withN = times.get(`${c.label}/${EXITS}`) ?? [];
    const without = times.get(`${c.label}/0`) ?? [];
    const rate =
      withN.length > 0 && without.length > 0 ? EXITS / (median(withN) - median(without)) : undefined;
    const own = statRates.get(c.label);
    return [
      c.label,
      `${withN.length}/${options.runs}`,
      `${range(withN, 3)} / ${range(without, 3)}`,
      rate === undefined ? "–" : fmtCount(Math.round(rate)),
      own === undefined ? "–" : fmtCount(Math.round(median(own))),
    ];
  });
  console.log(`### Exits per second (${fmtCount(EXITS)} OUTs per run; 64 MiB, 1 vCPU)\n`);
  console.log(
    renderTable(
      [
        "configuration",
        "ok",
        `wall s with ${fmtCount(EXITS)} / with 0 exits, median (min–max)`,
        "exits/s",
        "Vireo --stats exits/s",
      ],
      rows,
    ),
  );
  console.log(
    `\nexits/s = ${fmtCount(EXITS)} / (median with − median without); "Vireo --stats" = exits / Vireo's own run time (worker start-up included).\n`,
  );
  if (qemuSkip !== undefined) console.log(`QEMU: skipped: ${qemuSkip}\n`);
  return ok;
}

// ---------------------------------------------------------------------------------------------------------
// Latency

interface Probe {
  create: number;
  load: number;
  firstRun: number | null;
  firstExit: number | null;
  firstOutput: number | null;
  end: number;
  close: number;
  reason: string;
}

async function latency(options: BenchOptions, dir: string, qemuSkip: string | undefined): Promise<boolean> {
  let ok = true;
  const params = pioParams(dir, 0x80, 0);
  const node: number[] = [];
  const vireo = { output: [] as number[], exit: [] as number[] };
  const qemu = { output: [] as number[], exit: [] as number[] };
  for (let run = 0; run < options.runs; run++) {
    const n = await runTimed(process.execPath, ["-e", ""], { timeoutMs: options.timeoutMs });
    if (n.code === 0) node.push(n.seconds);
    const v = await runTimed(process.execPath, vireoArgs(PIO, params, 64), {
      timeoutMs: options.timeoutMs,
      marks: ["pio done"],
    });
    const vBad = runOk(v, "pio done", false);
    if (vBad === undefined) {
      vireo.output.push(v.marks["pio done"] as number);
      vireo.exit.push(v.seconds);
    } else {
      console.log(`Vireo latency run ${run + 1}: ${vBad}\n${tail(v.stderr)}`);
      ok = false;
    }
    if (qemuSkip !== undefined) continue;
    const q = await runTimed(QEMU, qemuArgs(PIO, params, 64), {
      timeoutMs: options.timeoutMs,
      marks: ["pio done"],
    });
    const qBad = runOk(q, "pio done", true);
    if (qBad === undefined) {
      qemu.output.push(q.marks["pio done"] as number);
      qemu.exit.push(q.seconds);
    } else {
      console.log(`QEMU latency run ${run + 1}: ${qBad}\n${tail(q.stderr)}`);
      ok = false;
    }
  }
  const ms = (values: number[]) =>
    range(
      values.map((s) => s * 1000),
      1,
    );
  console.log("### Start-up latency\n");
  console.log(
    "Process spawn → the guest's first output (`pio done`) and → process exit, ms, median (min–max):\n",
  );
  console.log(
    renderTable(
      ["process", "ok", "to first guest output", "to exit"],
      [
        ["`node -e ''` (Node alone)", `${node.length}/${options.runs}`, "–", ms(node)],
        [
          "`vireo run --arch x86_64` (pio-pvh.elf, 64 MiB)",
          `${vireo.exit.length}/${options.runs}`,
          ms(vireo.output),
          ms(vireo.exit),
        ],
        qemuSkip !== undefined
          ? ["QEMU -M microvm -enable-kvm", "skipped", "–", "–"]
          : [
              "QEMU -M microvm -enable-kvm (same guest)",
              `${qemu.exit.length}/${options.runs}`,
              ms(qemu.output),
              ms(qemu.exit),
            ],
      ],
    ),
  );

  // In one process: VMs made one after another.
  const count = Math.max(options.runs, 5) + 1;
  const r = await runTimed(process.execPath, [PROBE, "lifecycle", PIO, String(count)], {
    timeoutMs: options.timeoutMs,
  });
  const probes: Probe[] = r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Probe);
  if (r.code !== 0 || probes.length !== count || probes.some((p) => p.reason !== "reboot")) {
    console.log(
      `kvm-probe lifecycle failed: ${failureReason(r) ?? "wrong output"}\n${tail(r.stderr || r.stdout)}`,
    );
    return false;
  }
  const [first, ...rest] = probes as [Probe, ...Probe[]];
  const col = (f: (p: Probe) => number | null) => rest.map(f).filter((v): v is number => v !== null);
  const row = (label: string, f: (p: Probe) => number | null) => [
    label,
    fmt(f(first) ?? undefined, 1),
    range(col(f), 1),
  ];
  console.log(
    `\nIn one process (\`node dist/bench/kvm-probe.js lifecycle\`): ${count} VMs one after another (64 MiB, 1 vCPU, pio-pvh with 0 exits), ms from the start of \`X86MicroVm.create\`:\n`,
  );
  console.log(
    renderTable(
      ["step", "first VM", `VMs 2–${count}, median (min–max)`],
      [
        row("VM object created (KVM fd, VM, irqchip, PIT, RAM, vCPU, CPUID/MSRs/LAPIC)", (p) => p.create),
        row("guest loaded (ELF segments, hvm_start_info, ACPI tables)", (p) => p.load),
        row("first KVM_RUN (vCPU worker thread started)", (p) => p.firstRun),
        row("first exit (the guest's first instruction ran)", (p) => p.firstExit),
        row("first console byte", (p) => p.firstOutput),
        row("guest done (reset)", (p) => p.end),
        row("VM closed (threads joined, fds and RAM released)", (p) => p.close),
      ],
    ),
  );
  const perVm = median(col((p) => p.close));
  console.log(
    `\nSequential create → run → close in one process: ${fmt(1000 / perVm, 1)} VMs/s (median ${fmt(perVm, 1)} ms per VM).\n`,
  );
  return ok;
}

// ---------------------------------------------------------------------------------------------------------
// Memory

interface Status {
  VmRSS?: number;
  RssAnon?: number;
  RssFile?: number;
}

function statusOf(pid: number): Status {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const out: Status = {};
  for (const key of ["VmRSS", "RssAnon", "RssFile"] as const) {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text);
    if (m) out[key] = Number(m[1]);
  }
  return out;
}

/** Starts a process, waits for `marker` on its stdout, reads its /proc status, kills it. */
function statusAtMarker(
  command: string,
  args: string[],
  marker: string,
  timeoutMs: number,
): Promise<Status | string> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let done = false;
    const finish = (v: Status | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(v);
    };
    const timer = setTimeout(() => finish(`no '${marker}' within ${timeoutMs / 1000} s`), timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      if (out.includes(marker) && child.pid !== undefined) {
        // Let the process settle after the guest's last write.
        setTimeout(() => {
          try {
            finish(statusOf(child.pid as number));
          } catch (e) {
            finish(String(e));
          }
        }, 300);
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString("latin1");
    });
    child.on("error", (e) => finish(e.message));
    child.on("close", (code) =>
      finish(`exited (${code}) before '${marker}': ${err.trim().split("\n").pop()}`),
    );
  });
}

async function memoryOverhead(
  options: BenchOptions,
  dir: string,
  qemuSkip: string | undefined,
): Promise<boolean> {
  let ok = true;
  const touchedKiB = TOUCH_PAGES * 4;
  const sample = {
    node: [] as number[],
    vireo: [] as number[],
    qemu: [] as number[],
    base: [] as number[],
    first: [] as number[],
    second: [] as number[],
    firstIdle: [] as number[],
    secondIdle: [] as number[],
  };
  const params = touchParams(dir, TOUCH_PAGES);
  const runs = Math.min(options.runs, 3);
  for (let run = 0; run < runs; run++) {
    const n = await statusAtMarker(
      process.execPath,
      ["-e", "console.log('up');setTimeout(()=>{},5000)"],
      "up",
      30_000,
    );
    if (typeof n !== "string" && n.VmRSS !== undefined) sample.node.push(n.VmRSS);
    const v = await statusAtMarker(
      process.execPath,
      vireoArgs(TOUCH, params, GUEST_MIB),
      "touched",
      options.timeoutMs,
    );
    if (typeof v === "string" || v.VmRSS === undefined) {
      console.log(`vireo run (touch): ${v}`);
      ok = false;
    } else sample.vireo.push(v.VmRSS);
    if (qemuSkip === undefined) {
      const q = await statusAtMarker(QEMU, qemuArgs(TOUCH, params, GUEST_MIB), "touched", options.timeoutMs);
      if (typeof q === "string" || q.VmRSS === undefined) {
        console.log(`QEMU (touch): ${q}`);
        ok = false;
      } else sample.qemu.push(q.VmRSS);
    }
    for (const pages of [TOUCH_PAGES, 0]) {
      const r = await runTimed(
        process.execPath,
        [PROBE, "memory", TOUCH, String(pages), "2", String(GUEST_MIB)],
        { timeoutMs: options.timeoutMs },
      );
      const lines = r.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { phase: string; index?: number; VmRSS: number });
      const base = lines.find((l) => l.phase === "baseline")?.VmRSS;
      const one = lines.find((l) => l.index === 1)?.VmRSS;
      const two = lines.find((l) => l.index === 2)?.VmRSS;
      if (r.code !== 0 || base === undefined || one === undefined || two === undefined) {
        console.log(
          `kvm-probe memory failed: ${failureReason(r) ?? "wrong output"}\n${tail(r.stderr || r.stdout)}`,
        );
        ok = false;
        continue;
      }
      const touched = pages * 4;
      if (pages > 0) {
        sample.base.push(base);
        sample.first.push(one - base - touched);
        sample.second.push(two - one - touched);
      } else {
        sample.firstIdle.push(one - base);
        sample.secondIdle.push(two - one);
      }
    }
  }
  const mb = (kib: number[]) =>
    kib.length === 0
      ? "–"
      : range(
          kib.map((k) => (k * 1024) / 1e6),
          1,
        );
  const minus = (kib: number[]) => kib.map((k) => k - touchedKiB);
  console.log(
    `### Memory overhead (${GUEST_MIB} MiB guest touching ${fmtCount(TOUCH_PAGES)} pages = ${(touchedKiB * 1024) / 1e6} MB; VmRSS, MB = 10^6 bytes, median (min–max) of ${runs})\n`,
  );
  console.log(
    renderTable(
      ["process", "VmRSS", "VmRSS − touched guest RAM"],
      [
        ["`node -e` (Node alone, idle)", mb(sample.node), "–"],
        ["`vireo run --arch x86_64` (touch-pvh.elf)", mb(sample.vireo), mb(minus(sample.vireo))],
        qemuSkip !== undefined
          ? ["QEMU -M microvm -enable-kvm", "skipped", "–"]
          : ["QEMU -M microvm -enable-kvm (same guest)", mb(sample.qemu), mb(minus(sample.qemu))],
      ],
    ),
  );
  console.log(
    "\nIn one process (`kvm-probe.js memory`), two VMs started one after the other and kept running:\n",
  );
  console.log(
    renderTable(
      ["", "guest touching 16,384 pages: ΔVmRSS − touched", "guest touching none: ΔVmRSS"],
      [
        ["process before any VM (Node + Vireo's modules loaded)", mb(sample.base), "–"],
        ["first VM", mb(sample.first), mb(sample.firstIdle)],
        ["second VM (the marginal cost of one more)", mb(sample.second), mb(sample.secondIdle)],
      ],
    ),
  );
  console.log("");
  return ok;
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const why = kvmUnavailable() ?? buildGuests();
  if (why !== undefined) {
    console.log(`kvm: skipped: ${why}`);
    return "skipped";
  }
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-kvm-"));
  try {
    const qemuSkip = qemuUnavailable(options, pioParams(dir, 0x80, 0));
    console.log(
      `Guests: bench/guest-x86 (PVH ELF kernels); QEMU: ${qemuSkip ?? spawnSync(QEMU, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0]}; load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}\n`,
    );
    const a = await exitRates(options, dir, qemuSkip);
    const b = await latency(options, dir, qemuSkip);
    const c = await memoryOverhead(options, dir, qemuSkip);
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    return a && b && c ? "ok" : "failed";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const kvmSection: BenchSection = { name: "kvm", title: "KVM (issue 5)", run };
