/** Two bare RV64 CPUs with the same RAM image, one of them translating, for lockstep tests. */
import { RiscvCpu } from "../../../src/cpu/riscv/cpu.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import type { Translation, TranslationOptions } from "../../../src/cpu/riscv/translator/translation.js";
import { EmptyBus } from "../interpreter/harness.js";

export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 1 << 20;

export interface Pair {
  ref: RiscvCpu;
  tr: RiscvCpu;
  translation: Translation;
  both: RiscvCpu[];
}

export function cpuPair(threshold = 1, options: Omit<TranslationOptions, "threshold"> = {}): Pair {
  const make = () =>
    new RiscvCpu({
      ramBase: RAM_BASE,
      ramSize: RAM_SIZE,
      harts: 1,
      bus: new EmptyBus(),
      clock: { ticks: () => 0 },
    });
  const ref = make();
  // The reference only interprets, but in the same units as the translating side (see lockstep.ts).
  ref.enableTranslation({ threshold: Number.POSITIVE_INFINITY });
  const tr = make();
  const translation = tr.enableTranslation({ ...options, threshold });
  return { ref, tr, translation, both: [ref, tr] };
}

/** Writes 32-bit words at guest physical `addr` on every CPU. */
export function writeWords(cpus: RiscvCpu[], addr: number, words: readonly number[]): void {
  for (const cpu of cpus) {
    const view = new DataView(cpu.ram.bytes.buffer, cpu.ram.bytes.byteOffset);
    words.forEach((w, i) => {
      view.setUint32(addr - RAM_BASE + 4 * i, w >>> 0, true);
    });
    cpu.ram.written(addr, 4 * words.length);
  }
}

export function hart0(cpu: RiscvCpu): Hart {
  return cpu.harts[0] as Hart;
}

/** x[reg] of hart 0 as an unsigned BigInt. */
export function xOf(cpu: RiscvCpu, reg: number): bigint {
  const s = hart0(cpu).state;
  return (BigInt((s[2 * reg + 1] as number) >>> 0) << 32n) | BigInt((s[2 * reg] as number) >>> 0);
}

export function setX(cpus: RiscvCpu[], reg: number, value: bigint): void {
  for (const cpu of cpus) {
    const s = hart0(cpu).state;
    s[2 * reg] = Number(BigInt.asIntN(32, value));
    s[2 * reg + 1] = Number(BigInt.asIntN(32, value >> 32n));
  }
}

export function startAt(cpus: RiscvCpu[], pc: number): void {
  for (const cpu of cpus) hart0(cpu).reset(pc | 0, 0);
}
