/**
 * Runs Vireo's bare-metal RISC-V guest test programs (test/guest/*.S, *.c; see README.md there).
 *
 * The programs are built with `make -C test/guest` (riscv64-unknown-elf-gcc), then each ELF is run
 * by the CLI (`vireo run --arch riscv64 --bios none --kernel <elf>`): a program reports through
 * HTIF, so exit status 0 means every check passed and n > 0 is the number of the failing check.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "../support/test.js";

/** This file runs as dist/test/guest/guest.test.js: the repository root is three levels up. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const guestDir = join(repoRoot, "test", "guest");
const buildDir = join(guestDir, "build");
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const TIMEOUT_MS = 60_000;
const MAX_INSNS = "200000000";

/** The programs are named after their sources, so stale files in build/ are never run. */
const programs = readdirSync(guestDir)
  .filter((name) => name.endsWith(".S") || name.endsWith(".c"))
  .map((name) => name.replace(/\.(S|c)$/, ""))
  .sort();

function toolchainMissing(): string | undefined {
  const probe = spawnSync("riscv64-unknown-elf-gcc", ["--version"], { stdio: "ignore" });
  if (probe.error) return "riscv64-unknown-elf-gcc not installed: apt-get install gcc-riscv64-unknown-elf";
  return undefined;
}

interface Build {
  ok: boolean;
  output: string;
}

function buildPrograms(): Build {
  const jobs = String(Math.max(1, availableParallelism()));
  const make = spawnSync("make", ["-C", guestDir, "-j", jobs], { encoding: "utf8" });
  if (make.error) return { ok: false, output: `could not run make: ${make.error.message}` };
  return { ok: make.status === 0, output: `${make.stdout}${make.stderr}` };
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Each program runs on both riscv64 engines: the interpreter and the block translator. */
const ENGINES = ["interpreter", "translate"] as const;

function runGuest(elf: string, engine: (typeof ENGINES)[number]): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const args = [
      cli,
      "run",
      "--arch",
      "riscv64",
      "--bios",
      "none",
      "--kernel",
      elf,
      "--max-insns",
      MAX_INSNS,
      "--engine",
      engine,
    ];
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

const skipReason = toolchainMissing();
if (skipReason !== undefined) console.log(`# guest programs skipped: ${skipReason}`);
const build: Build | undefined = skipReason === undefined ? buildPrograms() : undefined;

describe("RISC-V guest programs", { concurrency: Math.max(1, Math.min(4, availableParallelism())) }, () => {
  for (const name of programs) {
    for (const engine of ENGINES) {
      test(`${name} (${engine})`, { skip: skipReason ?? false, timeout: TIMEOUT_MS + 10_000 }, async () => {
        assert.ok(build?.ok, `make -C test/guest failed:\n${build?.output ?? ""}`);
        const elf = join(buildDir, `${name}.elf`);
        const result = await runGuest(elf, engine);
        const details = [
          `vireo run --arch riscv64 --bios none --kernel ${elf} --max-insns ${MAX_INSNS} --engine ${engine}`,
          result.timedOut
            ? `timed out after ${TIMEOUT_MS} ms`
            : `exit status ${result.code} signal ${result.signal}`,
          result.code !== null && result.code > 0
            ? `failing check number: ${result.code} (see README.md)`
            : "",
          `--- stdout ---\n${result.stdout}`,
          `--- stderr ---\n${result.stderr}`,
        ]
          .filter((line) => line !== "")
          .join("\n");
        assert.equal(result.timedOut, false, details);
        assert.equal(result.code, 0, details);
      });
    }
  }
});
