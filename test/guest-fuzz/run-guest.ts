/**
 * Builds and runs the guest-side fuzzer (fuzz.c) under `vireo run --bios none` with the devices it
 * drives: virtio-blk on a temporary disk whose sector 0 holds the parameters, virtio-rng, a
 * virtio-console and two virtio-net NICs on one in-process switch. Shared by guest-fuzz.test.ts and
 * `npm run fuzz -- --target guest`.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** This file runs as dist/test/guest-fuzz/run-guest.js: the repository root is three levels up. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const guestDir = join(repoRoot, "test", "guest-fuzz");
export const GUEST_ELF = join(guestDir, "build", "fuzz.elf");
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const DISK_BYTES = 1 << 20;
const PARAMS_MAGIC = 0x315a_4656; // "VFZ1"

export function toolchainMissing(): string | undefined {
  const probe = spawnSync("riscv64-unknown-elf-gcc", ["--version"], { stdio: "ignore" });
  if (probe.error) return "riscv64-unknown-elf-gcc not installed: apt-get install gcc-riscv64-unknown-elf";
  return undefined;
}

export function buildGuest(): { ok: boolean; output: string } {
  const make = spawnSync("make", ["-C", guestDir], { encoding: "utf8" });
  if (make.error) return { ok: false, output: `could not run make: ${make.error.message}` };
  return { ok: make.status === 0, output: `${make.stdout}${make.stderr}` };
}

export interface DeviceCounts {
  ok: number;
  err: number;
  reset: number;
  timeout: number;
  bad: number;
  rx?: number;
}

export interface GuestRun {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** The guest's FUZZ lines by device (blk, rng, console, net). */
  devices: Map<string, DeviceCounts>;
  /** The guest printed "FUZZ done". */
  done: boolean;
}

function parseCounts(stdout: string): Map<string, DeviceCounts> {
  const out = new Map<string, DeviceCounts>();
  for (const line of stdout.split("\n")) {
    const m = /^FUZZ (\w+)((?: \w+=\d+)+)\s*$/.exec(line.trim());
    if (m === null) continue;
    const counts: Record<string, number> = {};
    for (const kv of (m[2] as string).trim().split(" ")) {
      const [k, v] = kv.split("=");
      counts[k as string] = Number(v);
    }
    out.set(m[1] as string, counts as unknown as DeviceCounts);
  }
  return out;
}

/** Runs the guest for `requests` requests per device with `seed`; kills vireo after `timeoutMs`. */
export function runGuest(seed: number, requests: number, timeoutMs: number): Promise<GuestRun> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-guest-fuzz-"));
  const disk = join(dir, "disk.img");
  const image = new Uint8Array(DISK_BYTES);
  const params = new DataView(image.buffer);
  params.setUint32(0, PARAMS_MAGIC, true);
  params.setUint32(4, seed >>> 0, true);
  params.setUint32(8, requests, true);
  writeFileSync(disk, image);
  const args = [
    ...["run", "--bios", "none", "--kernel", GUEST_ELF, "--memory", "64M"],
    ...[
      "--drive",
      `file=${disk}`,
      "--rng",
      "--virtio-console",
      "--net",
      "switch:fuzz",
      "--net",
      "switch:fuzz",
    ],
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("latin1").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("latin1").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    };
    child.on("error", (error) => {
      cleanup();
      reject(error);
    });
    child.on("close", (code, signal) => {
      cleanup();
      resolvePromise({
        command: `vireo ${args.join(" ")}`,
        code,
        signal,
        timedOut,
        stdout,
        stderr,
        devices: parseCounts(stdout),
        done: /^FUZZ done\s*$/m.test(stdout),
      });
    });
  });
}
