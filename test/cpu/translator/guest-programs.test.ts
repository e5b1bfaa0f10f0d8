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
import { wakeUpPending } from "../../../src/cpu/riscv/csr/interrupts.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import { deliverInterrupt } from "../../../src/cpu/riscv/trap-entry.js";
import { parseElf } from "../../../src/machine/loader/elf.js";
import { VirtBoard } from "../../../src/machine/riscv-virt/board.js";
import { describe, test } from "../../support/test.js";
import { lockstep } from "./lockstep.js";

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
  // Guest time follows each side's own instruction count (plus time skipped while both wait), so a
  // time read sees the same value on both engines.
  let waited = 0;
  const harts: Hart[] = [];
  const clockOf = (side: number) => ({
    ticks: () => (harts[side]?.instret() ?? 0) + waited,
  });
  const boards = [0, 1].map(
    (side) =>
      new VirtBoard({ memory: 64 << 20, cpus: 1, console: { write: () => {} }, clock: clockOf(side) }),
  ) as [VirtBoard, VirtBoard];
  for (const b of boards) harts.push(b.cpu.harts[0] as Hart);
  for (const b of boards) b.loadElf(image, elfPath);
  const [ref, tr] = boards;
  ref.cpu.enableTranslation({ threshold: Number.POSITIVE_INFINITY });
  const translation = tr.cpu.enableTranslation({ threshold: 1 });
  const beforeUnit = () => {
    for (let round = 0; round < 2; round++) {
      for (const b of boards) b.tick();
      for (const h of harts) if (h.waiting && wakeUpPending(h.csr)) h.waiting = false;
      if (!(harts[1] as Hart).waiting) break;
      // Both wait in WFI: jump to the next timer deadline.
      const deadline = Math.min(tr.nextDeadline(), (harts[1] as Hart).csr.stimecmpDeadline);
      const now = tr.clock.ticks();
      if (!Number.isFinite(deadline) || deadline <= now) break;
      waited += deadline - now;
    }
    for (const h of harts) if (!h.waiting) deliverInterrupt(h);
  };
  const result = lockstep(ref.cpu, tr.cpu, translation, {
    maxInstructions: MAX_INSNS,
    beforeUnit,
    finished: (side) => (side === "ref" ? ref : tr).exitCode !== null,
    compareRam: true,
  });
  return { result, exits: [ref.exitCode, tr.exitCode], stats: translation.stats };
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
