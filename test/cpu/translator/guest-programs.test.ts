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

function runLockstep(elfPath: string) {
  const image = parseElf(new Uint8Array(readFileSync(elfPath)), elfPath);
  return boardLockstep(64 << 20, (b) => b.loadElf(image, elfPath), {
    maxInstructions: MAX_INSNS,
    threshold: 1,
    compareRam: true,
  });
}

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
