/** The daemon tests' shared parts: the counter guest, a daemon child process, and raw API calls. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bareMetalSpec, buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const cli = join(repoRoot, "dist", "src", "cli", "main.js");

/** Why riscv64 guests cannot be built here, or undefined. */
export const toolchainMissing = crossCompilerMissing;

/** Builds test/guest-daemon/counter.S (prints "tick N" for ever) into `dir`; returns the ELF's path. */
export function counterGuest(dir: string): string {
  const elf = join(dir, "counter.elf");
  return buildBareMetal("test/guest-daemon/counter.S", elf);
}

/** Builds test/guest-daemon/ticker.S (a "tick N" line every 10 ms, asleep in WFI between) into `dir`. */
export function tickerGuest(dir: string): string {
  return buildBareMetal("test/guest-daemon/ticker.S", join(dir, "ticker.elf"));
}

/** A bare-metal riscv64 spec running `kernel`. */
export function counterSpec(name: string, kernel: string, extra: Record<string, unknown> = {}) {
  return { ...bareMetalSpec(name, kernel, 16 * 2 ** 20), ...extra };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "vireo-daemon-"));
}

export interface Daemon {
  child: ChildProcess;
  socket: string;
  /** Everything it wrote on stderr so far. */
  log(): string;
  /** Resolves with its exit status. */
  exited: Promise<number | null>;
}

/** Starts `vireo daemon` and resolves once it listens. */
export function startDaemon(dir: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Daemon> {
  const socket = join(dir, "vireo.sock");
  const child = spawn(
    process.execPath,
    [cli, "daemon", "--socket", socket, "--state-dir", join(dir, "state"), "--stop-grace-ms", "0", ...args],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } },
  );
  let stderr = "";
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  return new Promise((ready, fail) => {
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("listening on")) ready({ child, socket, log: () => stderr, exited });
    });
    exited.then((code) => fail(new Error(`daemon exited with ${code} before listening:\n${stderr}`)));
  });
}

export interface Answer {
  status: number;
  type: string;
  text: string;
  json: unknown;
}

/** One request over the socket; `body` a value (sent as JSON) or raw bytes with their content type. */
export function api(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  raw?: { bytes: Buffer | string; type: string },
): Promise<Answer> {
  return new Promise((done, fail) => {
    const payload = raw?.bytes ?? (body === undefined ? undefined : JSON.stringify(body));
    const type = raw?.type ?? "application/json";
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: payload === undefined ? {} : { "content-type": type },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const contentType = res.headers["content-type"] ?? "";
          done({
            status: res.statusCode ?? 0,
            type: contentType,
            text,
            json: contentType.startsWith("application/json") ? JSON.parse(text) : undefined,
          });
        });
      },
    );
    req.on("error", fail);
    req.end(payload);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `read` until `ok` holds for its value (the test's timeout bounds the wait). */
export async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    await sleep(50);
  }
}

/** Two daemons for moving VMs between (state in DIR/a and DIR/b) and the counter guest built in DIR. */
export async function twoDaemons(): Promise<{ dir: string; kernel: string; source: Daemon; target: Daemon }> {
  const dir = tempDir();
  const kernel = counterGuest(dir);
  mkdirSync(join(dir, "a"));
  mkdirSync(join(dir, "b"));
  const source = await startDaemon(join(dir, "a"));
  const target = await startDaemon(join(dir, "b"));
  return { dir, kernel, source, target };
}

/** Kills the daemons still running and waits for them (a suite's `after`). */
export async function killDaemons(...daemons: (Daemon | undefined)[]): Promise<void> {
  for (const d of daemons) {
    if (d === undefined || d.child.exitCode !== null) continue;
    d.child.kill("SIGKILL");
    await d.exited;
  }
}
