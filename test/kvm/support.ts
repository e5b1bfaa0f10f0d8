/**
 * Shared by the KVM tests: whether /dev/kvm can be used here, the x86 test guests (built once per
 * process with make + GNU binutils into a temporary directory), and running the CLI.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const cli = join(repoRoot, "dist/src/cli/main.js");
const guestSources = join(repoRoot, "test/guest-x86");

/** Why KVM tests cannot run here, or undefined when they can. */
export function kvmUnavailable(): string | undefined {
  if (process.platform !== "linux" || process.arch !== "x64") return `not an x86-64 Linux host`;
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
  } catch (e) {
    return `/dev/kvm cannot be opened (${(e as NodeJS.ErrnoException).code})`;
  }
  return undefined;
}

let built: { dir: string } | { error: string } | null = null;

/** Builds every guest once; returns the directory with <name>.bzImage and pvh.elf, or why it could not. */
export function guestImages(): { dir: string } | { error: string } {
  if (built !== null) return built;
  for (const tool of ["make", "as", "ld"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).error) {
      built = { error: `${tool} is not installed (apt-get install make binutils)` };
      return built;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "vireo-guest-x86-"));
  const r = spawnSync("make", ["-s", "-C", guestSources, `BUILD=${dir}`], { encoding: "utf8" });
  built = r.status === 0 ? { dir } : { error: `make failed:\n${r.stdout}${r.stderr}` };
  return built;
}

export function guest(name: string): string {
  const images = guestImages();
  if ("error" in images) throw new Error(images.error);
  return join(images.dir, name.includes(".") ? name : `${name}.bzImage`);
}

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `vireo` with a time limit (SIGKILL after it: a hung process fails the test, not the suite). */
export function vireo(
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      done({ status, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** For assertion messages. */
export function describeRun(r: Run): string {
  return `status ${r.status} signal ${r.signal} after ${r.ms.toFixed(0)} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/**
 * A VmSpec (as an API body) for one of our x86 test guests: one vCPU, 64 MiB, the guest's ELF as the
 * kernel, no devices unless `extra` adds them.
 */
export function x86GuestSpec(name: string, kernel: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    arch: "x86_64" as const,
    engine: "auto" as const,
    cpus: 1,
    memory: 64 * 2 ** 20,
    boot: { kernel },
    drives: [],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "split" as const,
    ...extra,
  };
}
