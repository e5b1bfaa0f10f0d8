/**
 * Snapshot benchmark (issue 12): the default Debian riscv64 guest (512 MiB, one hart) booted to its shell,
 * saved, and continued in a fresh process, by Vireo and by QEMU (TCG) in the same run.
 *
 * - Vireo: `vireo run --snapshot-dir D --snapshot-and-stop`, SIGUSR1 once the shell is up (the line
 *   vireo prints gives the pages saved and how long the guest was paused); then `vireo run --restore D`,
 *   timed from spawn until a command typed at once is answered.
 * - QEMU: the same kernel, initrd and command line with a QMP socket; `migrate` to `exec:cat > FILE`
 *   (QEMU's way of saving a running VM to a file without a qcow2 disk, which savevm needs), the guest
 *   paused for the migration's reported downtime; then a new QEMU with `-incoming exec:cat FILE`, timed
 *   from spawn until the same command is answered.
 * A cold boot (spawn to VIREO-READY) of each is measured in the same runs, for the ratio the issue asks
 * for (restore to a working shell vs a cold boot).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findImage } from "./boot.js";
import { repoRoot } from "./lib/paths.js";
import { which } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { summarize } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const QEMU = "qemu-system-riscv64";
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const CMDLINE = "console=ttyS0 earlycon=sbi";
const READY = "VIREO-READY";
/** Typed into the restored guest's shell: its answer shows the shell works (and is not the echo). */
const PROBE = "echo RESTORED-$((6*7))\n";
const ANSWER = "RESTORED-42";

/** A child whose output can be awaited for a marker. */
class Session {
  readonly child: ChildProcess;
  readonly start = performance.now();
  out = "";
  err = "";
  private waiters: { text: string; stream: "out" | "err"; done: (s: number) => void }[] = [];

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout?.on("data", (d: Buffer) => this.took("out", d));
    this.child.stderr?.on("data", (d: Buffer) => this.took("err", d));
  }

  private took(stream: "out" | "err", d: Buffer): void {
    if (stream === "out") this.out += d.toString("latin1");
    else this.err += d.toString("latin1");
    const text = stream === "out" ? this.out : this.err;
    const now = (performance.now() - this.start) / 1000;
    this.waiters = this.waiters.filter((w) => {
      if (w.stream !== stream || !text.includes(w.text)) return true;
      w.done(now);
      return false;
    });
  }

  /** Seconds from spawn until `text` appears; rejects after `timeoutMs` or when the process ends. */
  waitFor(text: string, timeoutMs: number, stream: "out" | "err" = "out"): Promise<number> {
    const have = stream === "out" ? this.out : this.err;
    if (have.includes(text)) return Promise.resolve((performance.now() - this.start) / 1000);
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no '${text}' within ${timeoutMs} ms`)), timeoutMs);
      this.child.once("exit", () => fail(new Error(`exited before '${text}':\n${this.err.slice(-2000)}`)));
      this.waiters.push({
        text,
        stream,
        done: (s) => {
          clearTimeout(timer);
          done(s);
        },
      });
    });
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  /**
   * Seconds from spawn until the restored guest's shell answers PROBE: typed every 200 ms until it
   * does (input that arrives before a restored VM runs may be dropped, by QEMU's serial at least), so
   * the figure is at most 200 ms late, the same for both.
   */
  async probe(timeoutMs: number): Promise<number> {
    const answered = this.waitFor(ANSWER, timeoutMs);
    let done = false;
    const typing = (async () => {
      while (!done) {
        this.write(PROBE);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      return await answered;
    } finally {
      done = true;
      await typing;
    }
  }

  async end(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await new Promise((r) => this.child.once("exit", r));
    }
  }
}

interface Round {
  bootS: number;
  saveMs: number;
  bytes: number;
  restoreS: number;
}

function sizeOf(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

async function vireoRound(image: { kernel: string; initrd: string }, dir: string, o: BenchOptions) {
  const snap = join(dir, "vireo-snap");
  rmSync(snap, { recursive: true, force: true });
  const boot = new Session(process.execPath, [
    VIREO_CLI,
    "run",
    ...["--kernel", image.kernel, "--initrd", image.initrd, "--append", CMDLINE, "--memory", "512M"],
    ...["--snapshot-dir", snap, "--snapshot-and-stop"],
  ]);
  try {
    const bootS = await boot.waitFor(READY, o.timeoutMs);
    boot.child.kill("SIGUSR1");
    await boot.waitFor("snapshot saved to", o.timeoutMs, "err");
    const pausedMs = Number(/paused (\d+) ms/.exec(boot.err)?.[1] ?? Number.NaN);
    await new Promise((r) => boot.child.once("exit", r));
    const restore = new Session(process.execPath, [VIREO_CLI, "run", "--restore", snap]);
    try {
      const restoreS = await restore.probe(o.timeoutMs);
      return { bootS, saveMs: pausedMs, bytes: sizeOf(snap), restoreS };
    } finally {
      await restore.end();
    }
  } finally {
    await boot.end();
  }
}

/** One QMP command (after the greeting and qmp_capabilities); answers its "return". */
async function qmp(socket: string, commands: object[]): Promise<unknown[]> {
  const conn = connect(socket);
  conn.on("error", () => {});
  let buffer = "";
  const replies: unknown[] = [];
  const lines: unknown[] = [];
  let wake: (() => void) | null = null;
  conn.on("data", (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
      const line = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
      if (line !== "") lines.push(JSON.parse(line));
    }
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = lines.findIndex((l) => "return" in (l as object) || "error" in (l as object));
      if (i >= 0) return lines.splice(i, 1)[0] as Record<string, unknown>;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  await new Promise<void>((r) => conn.once("connect", () => r()));
  conn.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
  await next();
  for (const c of commands) {
    conn.write(`${JSON.stringify(c)}\n`);
    const reply = await next();
    if ("error" in reply) throw new Error(`QMP ${JSON.stringify(c)}: ${JSON.stringify(reply.error)}`);
    replies.push(reply.return);
  }
  conn.end();
  return replies;
}

async function qemuRound(image: { kernel: string; initrd: string }, dir: string, o: BenchOptions) {
  const file = join(dir, "qemu-state");
  const qmpSocket = join(dir, "qmp.sock");
  rmSync(file, { force: true });
  const base = [
    ...["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"],
    ...["-kernel", image.kernel, "-initrd", image.initrd, "-append", CMDLINE],
  ];
  const boot = new Session(QEMU, [...base, "-qmp", `unix:${qmpSocket},server,nowait`]);
  try {
    const bootS = await boot.waitFor(READY, o.timeoutMs);
    // Live, as Vireo's snapshot of a running guest: QEMU pauses it only for the last pass (its
    // "downtime"), and the restored one runs on (a VM stopped before the migration would stay paused).
    await qmp(qmpSocket, [{ execute: "migrate", arguments: { uri: `exec:cat > ${file}` } }]);
    let saveMs: number;
    for (;;) {
      const [status] = (await qmp(qmpSocket, [{ execute: "query-migrate" }])) as {
        status?: string;
        downtime?: number;
      }[];
      if (status?.status === "completed") {
        saveMs = status.downtime ?? Number.NaN;
        break;
      }
      if (status?.status === "failed") throw new Error("QEMU's migration to a file failed");
      await new Promise((r) => setTimeout(r, 20));
    }
    await boot.end();
    const restore = new Session(QEMU, [...base, "-incoming", `exec:cat ${file}`]);
    try {
      const restoreS = await restore.probe(o.timeoutMs);
      return { bootS, saveMs, bytes: sizeOf(file), restoreS };
    } finally {
      await restore.end();
    }
  } finally {
    await boot.end();
  }
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const image = findImage();
  if (typeof image === "string") {
    console.log(`snapshot: skipped: ${image}`);
    return "skipped";
  }
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-snap-"));
  const haveQemu = !options.noQemu && which(QEMU) !== undefined;
  const vireo: Round[] = [];
  const qemu: Round[] = [];
  let failed = false;
  try {
    for (let i = 1; i <= options.runs; i++) {
      try {
        vireo.push(await vireoRound(image, dir, options));
        console.error(`snapshot: Vireo run ${i}/${options.runs}: ${JSON.stringify(vireo.at(-1))}`);
      } catch (e) {
        failed = true;
        console.error(`snapshot: Vireo run ${i} failed: ${(e as Error).message}`);
      }
      if (!haveQemu) continue;
      try {
        qemu.push(await qemuRound(image, dir, options));
        console.error(`snapshot: QEMU run ${i}/${options.runs}: ${JSON.stringify(qemu.at(-1))}`);
      } catch (e) {
        failed = true;
        console.error(`snapshot: QEMU run ${i} failed: ${(e as Error).message}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (rounds: Round[], f: (r: Round) => number) =>
    rounds.length === 0 ? undefined : summarize(rounds.map(f)).median;
  const row = (name: string, rounds: Round[]) => {
    const boot = med(rounds, (r) => r.bootS);
    const restore = med(rounds, (r) => r.restoreS);
    return [
      name,
      String(rounds.length),
      fmt(boot, 2),
      fmt(
        med(rounds, (r) => r.saveMs),
        0,
      ),
      fmt(
        med(rounds, (r) => r.bytes / 2 ** 20),
        1,
      ),
      fmt(restore, 2),
      boot !== undefined && restore !== undefined ? `${fmt(boot / restore, 1)}×` : "–",
    ];
  };
  console.log(
    renderTable(
      [
        "",
        "runs",
        "cold boot to shell, s",
        "save: guest paused, ms",
        "saved, MiB",
        "restore to a shell answer, s",
        "boot / restore",
      ],
      [row("Vireo", vireo), ...(haveQemu ? [row("QEMU TCG (migrate to file)", qemu)] : [])],
    ),
  );
  console.log(
    `\nguest: the default Debian riscv64 image, 512 MiB, 1 hart, '${CMDLINE}'; medians; restore timed from spawn of a fresh process until '${PROBE.trim()}' typed at once is answered.`,
  );
  if (!haveQemu) console.log(`QEMU runs skipped: ${options.noQemu ? "--no-qemu" : `${QEMU} not found`}.`);
  return failed ? "failed" : "ok";
}

export const snapshotSection: BenchSection = { name: "snapshot", title: "Snapshots (issue 12)", run };
