/**
 * Two `virt` boards in lockstep (see lockstep.ts): one interpreting, one translating, with the same
 * deterministic guest time (each side's own instruction count, plus time skipped while both wait in
 * WFI), timers ticked and interrupts delivered to both at the same point.
 */
import { wakeUpPending } from "../../../src/cpu/riscv/csr/interrupts.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import type { TranslationStats } from "../../../src/cpu/riscv/translator/translation.js";
import { deliverInterrupt } from "../../../src/cpu/riscv/trap-entry.js";
import { VirtBoard } from "../../../src/machine/riscv-virt/board.js";
import { type LockstepResult, lockstep } from "./lockstep.js";

export interface BoardLockstep {
  result: LockstepResult;
  /** Exit codes (interpreter, translator); null where the guest has not finished. */
  exits: [number | null, number | null];
  stats: TranslationStats;
}

export function boardLockstep(
  memory: number,
  load: (board: VirtBoard) => void,
  options: {
    maxInstructions: number;
    threshold: number;
    compareRam: boolean;
    maxWasmBytes?: number;
    /** Free-running slices instead of single units (see LockstepOptions.slice). */
    slice?: number;
  },
): BoardLockstep {
  let waited = 0;
  const harts: Hart[] = [];
  const clockOf = (side: number) => ({
    ticks: () => (harts[side]?.instret() ?? 0) + waited,
  });
  const boards = [0, 1].map(
    (side) => new VirtBoard({ memory, cpus: 1, console: { write: () => {} }, guestTicks: clockOf(side) }),
  ) as [VirtBoard, VirtBoard];
  for (const b of boards) {
    harts.push(b.cpu.harts[0] as Hart);
    load(b);
  }
  const [ref, tr] = boards;
  // Loaders may put host entropy in RAM (the device tree's rng-seed): both sides start from one image.
  tr.cpu.ram.bytes.set(ref.cpu.ram.bytes);
  ref.cpu.enableTranslation({ threshold: Number.POSITIVE_INFINITY });
  const translation = tr.cpu.enableTranslation({
    threshold: options.threshold,
    ...(options.maxWasmBytes === undefined ? {} : { maxWasmBytes: options.maxWasmBytes }),
  });
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
    maxInstructions: options.maxInstructions,
    beforeUnit,
    finished: (side) => (side === "ref" ? ref : tr).exitCode !== null,
    compareRam: options.compareRam,
    ...(options.slice === undefined ? {} : { slice: options.slice }),
  });
  return { result, exits: [ref.exitCode, tr.exitCode], stats: translation.stats };
}
