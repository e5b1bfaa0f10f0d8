import type { VirtBoard } from "../machine/riscv-virt/board.js";

const EXCEPTIONS: Record<number, string> = {
  0: "fetch-misaligned",
  1: "fetch-access",
  2: "illegal-instruction",
  3: "breakpoint",
  4: "load-misaligned",
  5: "load-access",
  6: "store-misaligned",
  7: "store-access",
  8: "ecall-u",
  9: "ecall-s",
  11: "ecall-m",
  12: "fetch-page",
  13: "load-page",
  15: "store-page",
};
const INTERRUPTS: Record<number, string> = { 1: "ssi", 3: "msi", 5: "sti", 7: "mti", 9: "sei", 11: "mei" };

/** `--stats`: one `stats:` line per figure on stderr, stable names so scripts can read them. */
export function printStats(board: VirtBoard, instructions: number, seconds: number): void {
  const mips = seconds > 0 ? instructions / seconds / 1e6 : 0;
  const lines = [
    `instructions ${instructions}`,
    `seconds ${seconds.toFixed(3)}`,
    `mips ${mips.toFixed(1)}`,
    `hypercalls ${format([...board.hypercalls.entries()])}`,
  ];
  const traps: [string, number][] = [];
  const interrupts: [string, number][] = [];
  for (let cause = 0; cause < 32; cause++) {
    let exceptions = 0;
    let irqs = 0;
    for (const h of board.cpu.harts) {
      exceptions += h.trapCounts[cause] as number;
      irqs += h.trapCounts[32 + cause] as number;
    }
    if (exceptions > 0) traps.push([EXCEPTIONS[cause] ?? `cause${cause}`, exceptions]);
    if (irqs > 0) interrupts.push([INTERRUPTS[cause] ?? `irq${cause}`, irqs]);
  }
  lines.push(`traps ${format(traps)}`, `interrupts ${format(interrupts)}`);
  const balloon = board.balloon;
  if (balloon !== null) {
    const c = balloon.counters;
    lines.push(
      `balloon target=${balloon.target} actual=${balloon.actual} inflated=${balloon.inflatedPages} ` +
        `peak-actual=${c.peakActual} peak-inflated=${c.peakInflatedPages} resets=${c.resets} ` +
        `ignored=${c.ignoredPfns} reclaimed-bytes=${c.reclaimedBytes} reclaimer=${balloon.reclaimerKind}`,
    );
  }
  process.stderr.write(lines.map((l) => `stats: ${l}\n`).join(""));
}

function format(counts: [string, number][]): string {
  if (counts.length === 0) return "none";
  return counts
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name}=${n}`)
    .join(" ");
}
