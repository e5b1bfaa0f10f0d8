/**
 * Every bare-metal guest test program (test/guest/*.S, *.c) in lockstep: one `virt` board interpreting,
 * one translating (threshold 1: every block is compiled on first sight), the same deterministic clock, timers
 * and interrupts delivered to both at the same instruction; state compared at every unit (see
 * lockstep.ts), RAM at the end, and both must pass their own checks (HTIF exit 0).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseElf } from "../../../src/machine/loader/elf.js";
import { describe, test } from "../../support/test.js";
import { boardLockstep } from "./boards.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const guestDir = join(repoRoot, "test", "guest");
const MAX_INSNS = 30_000_000;

const programs = readdirSync(guestDir)
  .filter((name) => name.endsWith(".S") || name.endsWith(".c"))
  .map((name) => name.replace(/\.(S|c)$/, ""))
  .sort();

const probe = spawnSync("riscv64-unknown-elf-gcc", ["--version"], { stdio: "ignore" });
const skip = probe.error ? "riscv64-unknown-elf-gcc not installed" : undefined;
if (skip !== undefined) console.log(`# lockstep over guest programs skipped: ${skip}`);
const make =
  skip === undefined
    ? spawnSync("make", ["-C", guestDir, "-j", String(Math.max(1, availableParallelism()))], {
        encoding: "utf8",
      })
    : undefined;

function runLockstep(elfPath: string, maxWasmBytes?: number, free?: { threshold: number; slice: number }) {
  const image = parseElf(new Uint8Array(readFileSync(elfPath)), elfPath);
  return boardLockstep(64 << 20, (b) => b.loadElf(image, elfPath), {
    maxInstructions: MAX_INSNS,
    threshold: free?.threshold ?? 1,
    compareRam: true,
    ...(maxWasmBytes === undefined ? {} : { maxWasmBytes }),
    ...(free === undefined ? {} : { slice: free.slice }),
  });
}

/** A cap far below what these programs compile: blocks are evicted and compiled again all along. */
const TINY_CAP = 4 << 10;

describe("translator: guest programs in lockstep with the interpreter", () => {
  for (const name of programs) {
    test(name, { skip: skip ?? false, timeout: 120_000 }, () => {
      assert.equal(make?.status, 0, `make -C test/guest failed:\n${make?.stdout}${make?.stderr}`);
      const { result, exits, stats } = runLockstep(join(guestDir, "build", `${name}.elf`));
      assert.equal(result.divergence, null, `${name}: ${result.divergence}`);
      assert.deepEqual(exits, [0, 0], `${name}: exit codes (interp, translate) after ${result.instructions}`);
      assert.ok(stats.translatedRetired > 0, `${name}: nothing ran translated`);
    });
  }
});

describe("translator: eviction of least recently used blocks under a tiny wasm cap, in lockstep", () => {
  for (const name of ["rv64i_alu", "rvc", "vm_sv39", "zifencei"]) {
    test(name, { skip: skip ?? false, timeout: 120_000 }, () => {
      assert.equal(make?.status, 0, `make -C test/guest failed:\n${make?.stdout}${make?.stderr}`);
      const { result, exits, stats } = runLockstep(join(guestDir, "build", `${name}.elf`), TINY_CAP);
      assert.equal(result.divergence, null, `${name}: ${result.divergence}`);
      assert.deepEqual(exits, [0, 0], `${name}: exit codes (interp, translate)`);
      console.log(
        `${name}: ${stats.blocks} blocks compiled, ${stats.evictions} evicted, ${Math.round(stats.liveWasmBytes)} of ${stats.wasmBytes} wasm bytes live`,
      );
      assert.ok(stats.evictions > 0, `${name}: nothing was evicted`);
      assert.ok(stats.liveWasmBytes <= TINY_CAP, `${name}: ${stats.liveWasmBytes} live bytes over the cap`);
      assert.ok(stats.translatedRetired > 0, `${name}: nothing ran translated`);
    });
  }
});

describe("translator: guest programs free-running (heat counted in wasm) against the interpreter", () => {
  for (const name of programs) {
    test(name, { skip: skip ?? false, timeout: 120_000 }, () => {
      assert.equal(make?.status, 0, `make -C test/guest failed:\n${make?.stdout}${make?.stderr}`);
      const elf = join(guestDir, "build", `${name}.elf`);
      const { result, exits, stats } = runLockstep(elf, undefined, { threshold: 2, slice: 61 });
      assert.equal(result.divergence, null, `${name}: ${result.divergence}`);
      assert.deepEqual(exits, [0, 0], `${name}: exit codes (interp, translate) after ${result.instructions}`);
      assert.ok(result.compares > 1, `${name}: compared ${result.compares} times`);
      console.log(
        `${name}: ${result.compares} compares, ${stats.translatedRetired} of ${result.instructions} translated`,
      );
    });
  }
});
