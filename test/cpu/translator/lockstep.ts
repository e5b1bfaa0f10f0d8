/**
 * A differential lockstep runner: the same guest on two CPUs, one interpreting, one translating. The
 * translating CPU runs one unit at a time (a compiled block, or the interpreter up to the next jump); the
 * reference then runs exactly as many instructions, and the two are compared — pc, x and f registers,
 * privilege, instret and a set of CSRs — whenever both have taken the same number of traps (a trap taken
 * at the end of a unit shows on the reference only after its next instruction).
 */
import type { RiscvCpu } from "../../../src/cpu/riscv/cpu.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import type { Stmt } from "../../../src/cpu/riscv/semantics/ir.js";
import { HartOffset } from "../../../src/cpu/riscv/state.js";
import type { Block, Translation } from "../../../src/cpu/riscv/translator/translation.js";

const CSRS: [string, number][] = [
  ["mstatus", 0x300],
  ["medeleg", 0x302],
  ["mideleg", 0x303],
  ["mie", 0x304],
  ["mtvec", 0x305],
  ["mscratch", 0x340],
  ["mepc", 0x341],
  ["mcause", 0x342],
  ["mtval", 0x343],
  ["mip", 0x344],
  ["stvec", 0x105],
  ["sscratch", 0x140],
  ["sepc", 0x141],
  ["scause", 0x142],
  ["stval", 0x143],
  ["satp", 0x180],
  ["minstret", 0xb02],
];
const WORDS: [string, number][] = [
  ["fflags", HartOffset.FFLAGS],
  ["frm", HartOffset.FRM],
  ["fs", HartOffset.FS],
  ["priv", HartOffset.PRIV],
];

const hex = (lo: number, hi: number) =>
  `0x${(hi >>> 0).toString(16).padStart(8, "0")}${(lo >>> 0).toString(16).padStart(8, "0")}`;

/** The first difference between two harts' architectural state, or null. */
export function compareHarts(ref: Hart, tr: Hart): { what: string; x?: number } | null {
  const a = ref.state;
  const b = tr.state;
  const pair = (s: Int32Array, word: number) => hex(s[word] as number, s[word + 1] as number);
  if (ref.pcLo !== tr.pcLo || ref.pcHi !== tr.pcHi) {
    return { what: `pc ${hex(ref.pcLo, ref.pcHi)} (interp) vs ${hex(tr.pcLo, tr.pcHi)} (translate)` };
  }
  if (ref.instret() !== tr.instret()) return { what: `instret ${ref.instret()} vs ${tr.instret()}` };
  for (let r = 1; r < 32; r++) {
    if (a[2 * r] !== b[2 * r] || a[2 * r + 1] !== b[2 * r + 1]) {
      return { what: `x${r} ${pair(a, 2 * r)} vs ${pair(b, 2 * r)}`, x: r };
    }
  }
  const f = HartOffset.F >> 2;
  for (let r = 0; r < 32; r++) {
    const w = f + 2 * r;
    if (a[w] !== b[w] || a[w + 1] !== b[w + 1]) return { what: `f${r} ${pair(a, w)} vs ${pair(b, w)}` };
  }
  for (const [name, offset] of WORDS) {
    if (a[offset >> 2] !== b[offset >> 2]) return { what: `${name} ${a[offset >> 2]} vs ${b[offset >> 2]}` };
  }
  const ra = new Int32Array(2);
  const rb = new Int32Array(2);
  for (const [name, number] of CSRS) {
    const okA = ref.csr.read(number, ra);
    const okB = tr.csr.read(number, rb);
    if (okA !== okB || ra[0] !== rb[0] || ra[1] !== rb[1]) {
      return {
        what: `${name} ${hex(ra[0] as number, ra[1] as number)} vs ${hex(rb[0] as number, rb[1] as number)}`,
      };
    }
  }
  if (ref.waiting !== tr.waiting) return { what: `waiting ${ref.waiting} vs ${tr.waiting}` };
  return null;
}

const writesRd = (body: readonly Stmt[]) =>
  body.some(
    (s) =>
      s.k === "setRd" ||
      (s.k === "jump" && s.link) ||
      s.k === "amo" ||
      s.k === "loadReserved" ||
      s.k === "storeConditional",
  );

function describeUnit(pcLo: number, pcHi: number, block: Block | null, x: number | undefined): string {
  const at = hex(pcLo, pcHi);
  if (block === null) return `the interpreter's run from ${at} (no translated block)`;
  const list = block.insns.map(
    (i) => `${hex(Number(BigInt.asUintN(32, i.pc)), Number(BigInt.asUintN(64, i.pc) >> 32n))} ${i.insn.name}`,
  );
  const writer =
    x === undefined
      ? undefined
      : [...block.insns].reverse().find((i) => ((i.word >>> 7) & 31) === x && writesRd(i.insn.body));
  const named = writer
    ? `, last writer of x${x} in it: ${writer.insn.name} at 0x${BigInt.asUintN(64, writer.pc).toString(16)}`
    : "";
  return `translated block at ${at} [${list.join("; ")}]${named}`;
}

export interface LockstepOptions {
  maxInstructions: number;
  /** Runs where both sides stand at the same point (timers, interrupt delivery); may change both CPUs. */
  beforeUnit?: () => void;
  /** True when that side's guest has finished (asked to exit). */
  finished?: (side: "ref" | "tr") => boolean;
  /** Compare guest RAM at the end. */
  compareRam?: boolean;
  /**
   * Free-running instead of one unit at a time: the translating side runs slices of this many
   * instructions (its block interpreter then runs cold code on through jumps, counting heat in wasm),
   * and the reference catches up to the same instruction count.
   */
  slice?: number;
}

export interface LockstepResult {
  instructions: number;
  units: number;
  translatedUnits: number;
  /** Times the two sides stood at the same point and were compared. */
  compares: number;
  /** Null, or the first difference found, with the unit that produced it. */
  divergence: string | null;
}

/** Retired instructions plus traps taken: both engines pass through the same values of it. */
const progress = (h: Hart) => h.instret() + h.traps;

/**
 * Runs `tr` (translating) and `ref` (which must have translation enabled with an infinite threshold: it
 * only interprets, but in the same units) one unit at a time, advancing whichever is behind, and compares
 * them whenever they have made the same progress.
 */
export function lockstep(
  ref: RiscvCpu,
  tr: RiscvCpu,
  translation: Translation,
  o: LockstepOptions,
): LockstepResult {
  const slice = o.slice;
  const units = slice === undefined ? 1 : Number.POSITIVE_INFINITY;
  translation.unitsPerSlice = units;
  if (ref.translation === null)
    throw new Error("the reference runs the block interpreter: enable translation");
  ref.translation.unitsPerSlice = units;
  const hr = ref.harts[0] as Hart;
  const ht = tr.harts[0] as Hart;
  const done = (side: "ref" | "tr") => o.finished?.(side) ?? false;
  let ran = 0;
  let translatedUnits = 0;
  let compares = 0;
  let divergence: string | null = null;
  let last: { pcLo: number; pcHi: number; block: Block | null } | null = null;
  for (let guard = 0; guard < 100 * o.maxInstructions + 1000; guard++) {
    const pr = progress(hr);
    const pt = progress(ht);
    if (pr === pt) {
      const diff = compareHarts(hr, ht);
      compares++;
      if (diff !== null) {
        const unit = last === null ? "none yet" : describeUnit(last.pcLo, last.pcHi, last.block, diff.x);
        divergence = `after ${ht.instret()} instructions: ${diff.what}; last translate-side unit: ${unit}`;
        break;
      }
      if (ht.instret() >= o.maxInstructions || (done("ref") && done("tr"))) break;
      o.beforeUnit?.();
      if (ht.waiting || ht.stopped) break;
    }
    if (pr < pt || (pr === pt && done("tr"))) {
      if (done("ref") || hr.waiting) {
        divergence = `the interpreter stopped behind: ${hr.instret()} vs ${ht.instret()} instructions`;
        break;
      }
      ref.runSlice(hr, slice === undefined ? 1_000_000 : Math.max(1, ht.instret() - hr.instret()));
      continue;
    }
    if (done("tr") || ht.waiting) {
      divergence = `the translator stopped behind: ${ht.instret()} vs ${hr.instret()} instructions`;
      break;
    }
    const pcLo = ht.pcLo;
    const pcHi = ht.pcHi;
    tr.runSlice(ht, slice ?? 1_000_000);
    ran++;
    const block = translation.lastBlock;
    if (block !== null) translatedUnits++;
    last = { pcLo, pcHi, block };
  }
  if (divergence === null && o.compareRam) {
    const a = ref.ram.bytes;
    const b = tr.ram.bytes;
    if (Buffer.compare(a, b) !== 0) {
      let i = 0;
      while (a[i] === b[i]) i++;
      divergence = `RAM differs first at 0x${(ref.ram.base + i).toString(16)}: ${a[i]} vs ${b[i]}`;
    }
  }
  return { instructions: ht.instret(), units: ran, translatedUnits, compares, divergence };
}
