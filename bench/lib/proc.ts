import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
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
}

export interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
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
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => {
      spawnError = e.message;
    });
    child.on("close", (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        seconds,
        timedOut,
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
