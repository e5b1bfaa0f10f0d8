import { spawn, spawnSync } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface RunResult {
  /** Exit status, or null when killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  timedOut: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  spawnError?: string;
  /**
   * CPU seconds (user + system) the process and the children it waited for used, on Linux: the growth of
   * this process's cutime + cstime over the run, so exact only while one child runs at a time.
   */
  cpuSeconds?: number;
  /** For each of `RunOptions.marks` seen on stdout: seconds from spawn to its first appearance. */
  marks: Record<string, number>;
}

export interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
  /** Strings to watch for on stdout, timing their first appearance (see `RunResult.marks`). */
  marks?: readonly string[];
  /**
   * Send stdout to this file (created or truncated) instead of a pipe: nothing reads it while the child
   * runs, so a child writing a byte per system call is not slowed by its reader. `stdout` is then empty
   * and `marks` are not watched.
   */
  stdoutFile?: string;
}

/** User + system CPU seconds of this process's reaped children (Linux /proc/self/stat), or undefined. */
function childrenCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after "(comm) ": state is field 3, cutime and cstime are fields 16 and 17, in USER_HZ (100) ticks.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[13]) + Number(fields[14]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a command to completion with stdin closed, capturing output and the wall time. */
export function runTimed(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: string | undefined;
    const cpuStart = childrenCpuSeconds();
    const start = process.hrtime.bigint();
    const outFd = options.stdoutFile === undefined ? undefined : openSync(options.stdoutFile, "w");
    const child = spawn(command, args, {
      cwd: options.cwd,
      stdio: ["ignore", outFd ?? "pipe", "pipe"],
    });
    if (outFd !== undefined) closeSync(outFd); // the child has its own copy
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    const marks: Record<string, number> = {};
    const watched = options.marks ?? [];
    const longest = Math.max(0, ...watched.map((m) => m.length));
    let recent = ""; // the end of stdout so far, long enough to find a mark split across chunks
    child.stdout?.on("data", (d: Buffer) => {
      out.push(d);
      if (watched.length === 0) return;
      const now = Number(process.hrtime.bigint() - start) / 1e9;
      recent += d.toString("latin1");
      for (const m of watched) if (marks[m] === undefined && recent.includes(m)) marks[m] = now;
      recent = recent.slice(-longest);
    });
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => {
      spawnError = e.message;
    });
    child.on("close", (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpuEnd = childrenCpuSeconds();
      const cpuSeconds = cpuStart === undefined || cpuEnd === undefined ? undefined : cpuEnd - cpuStart;
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        seconds,
        timedOut,
        marks,
        ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
        ...(spawnError === undefined ? {} : { spawnError }),
      });
    });
  });
}

/** Runs a command synchronously with inherited output; true when it exited 0. */
export function runInherit(command: string, args: readonly string[], cwd?: string): boolean {
  const r = spawnSync(command, args, { cwd, stdio: "inherit" });
  return r.status === 0;
}

/** The full path of an executable found on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** The last `lines` lines of some output, each indented, for failure reports. */
export function tail(text: string, lines = 15, indent = "    "): string {
  const all = text.replace(/\s+$/, "").split("\n");
  return all
    .slice(-lines)
    .map((l) => indent + l)
    .join("\n");
}

/** A one-line description of why a run failed, or undefined if it exited 0. */
export function failureReason(r: RunResult): string | undefined {
  if (r.spawnError) return `could not start: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${r.seconds.toFixed(1)} s`;
  if (r.signal) return `killed by ${r.signal}`;
  if (r.code !== 0) return `exit status ${r.code}`;
  return undefined;
}
