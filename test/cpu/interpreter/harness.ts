/**
 * Runs instruction words on a real RiscvCpu (the generated wasm interpreter) and reads the architectural
 * state back as BigInts. One machine is meant to be reused across many property-test cases: `reset`
 * clears the register files and moves pc without rebuilding anything.
 */
import type { MmioBus } from "../../../src/cpu/riscv/bus.js";
import { RiscvCpu } from "../../../src/cpu/riscv/cpu.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import type { RunExit } from "../../../src/cpu/riscv/interpreter/build.js";
import { HartOffset } from "../../../src/cpu/riscv/state.js";
import { SPIN } from "./encode.js";

export const RAM_BASE = 0x8000_0000n;
export const RAM_SIZE = 1n << 20n;
export const RAM_END = RAM_BASE + RAM_SIZE;

export const CSR = {
  MSTATUS: 0x300,
  MTVEC: 0x305,
  MEPC: 0x341,
  MCAUSE: 0x342,
  MTVAL: 0x343,
} as const;

export const MASK64 = (1n << 64n) - 1n;
export const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
export const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
export const hex64 = (v: bigint): string => `0x${u64(v).toString(16).padStart(16, "0")}`;

/** A bus where nothing answers: every non-RAM access faults. */
export class EmptyBus implements MmioBus {
  read(): boolean {
    return false;
  }
  write(): boolean {
    return false;
  }
}

export interface RunResult {
  exit: RunExit;
  /** Instructions retired during the run (a trapping instruction does not retire). */
  retired: number;
}

const X_WORDS = 64;
const F_FIRST = HartOffset.F >> 2;

export class TestMachine {
  readonly cpu: RiscvCpu;
  readonly hart: Hart;
  private readonly csrOut = new Int32Array(2);

  /** `bus` answers physical addresses outside RAM; by default nothing does. */
  constructor(readonly bus: MmioBus = new EmptyBus()) {
    this.cpu = new RiscvCpu({
      ramBase: Number(RAM_BASE),
      ramSize: Number(RAM_SIZE),
      harts: 1,
      bus: this.bus,
      clock: { ticks: () => 0 },
    });
    this.hart = this.cpu.harts[0] as Hart;
  }

  /** Zeroes x and f registers and sets pc. CSRs, TLB and RAM are left alone. */
  reset(pc: bigint = RAM_BASE): void {
    this.hart.state.fill(0, 0, X_WORDS);
    this.hart.state.fill(0, F_FIRST, F_FIRST + 64);
    this.pc = pc;
  }

  /** Writes the raw register slot, x0 included (the interpreter must ignore what x0's slot holds). */
  setX(reg: number, value: bigint): void {
    this.hart.state[2 * reg] = Number(BigInt.asIntN(32, value));
    this.hart.state[2 * reg + 1] = Number(BigInt.asIntN(32, value >> 32n));
  }

  /** The architectural value of x[reg] (x0 reads as 0 whatever its slot holds). */
  x(reg: number): bigint {
    return reg === 0 ? 0n : this.rawX(reg);
  }

  /** The register slot as stored in the hart block. */
  rawX(reg: number): bigint {
    const s = this.hart.state;
    return (BigInt((s[2 * reg + 1] as number) >>> 0) << 32n) | BigInt((s[2 * reg] as number) >>> 0);
  }

  xs(): bigint[] {
    return Array.from({ length: 32 }, (_, r) => this.x(r));
  }

  setF(reg: number, value: bigint): void {
    this.hart.state[F_FIRST + 2 * reg] = Number(BigInt.asIntN(32, value));
    this.hart.state[F_FIRST + 2 * reg + 1] = Number(BigInt.asIntN(32, value >> 32n));
  }

  f(reg: number): bigint {
    const s = this.hart.state;
    const at = F_FIRST + 2 * reg;
    return (BigInt((s[at + 1] as number) >>> 0) << 32n) | BigInt((s[at] as number) >>> 0);
  }

  get pc(): bigint {
    return (BigInt(this.hart.pcHi >>> 0) << 32n) | BigInt(this.hart.pcLo >>> 0);
  }
  set pc(value: bigint) {
    this.hart.setPc(Number(BigInt.asIntN(32, value)), Number(BigInt.asIntN(32, value >> 32n)));
  }

  private index(addr: bigint, length: number): number {
    if (addr < RAM_BASE || addr + BigInt(length) > RAM_END) throw new RangeError(`${hex64(addr)} is not RAM`);
    return Number(addr - RAM_BASE);
  }

  writeBytes(addr: bigint, bytes: ArrayLike<number>): void {
    this.cpu.ram.bytes.set(bytes, this.index(addr, bytes.length));
  }

  readBytes(addr: bigint, length: number): Uint8Array {
    const at = this.index(addr, length);
    return this.cpu.ram.bytes.slice(at, at + length);
  }

  /** Little-endian 32-bit words at addr. */
  writeWords(addr: bigint, words: readonly number[]): void {
    const bytes = new Uint8Array(words.length * 4);
    const view = new DataView(bytes.buffer);
    words.forEach((w, i) => {
      view.setUint32(i * 4, w >>> 0, true);
    });
    this.writeBytes(addr, bytes);
  }

  writeHalf(addr: bigint, half: number): void {
    this.writeBytes(addr, [half & 0xff, (half >>> 8) & 0xff]);
  }

  /** Little-endian unsigned value of `length` bytes of RAM. */
  readValue(addr: bigint, length: number): bigint {
    const bytes = this.readBytes(addr, length);
    let v = 0n;
    for (let i = length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] as number);
    return v;
  }

  /** Runs at most `budget` instructions from the current pc. */
  run(budget: number): RunResult {
    const before = this.hart.instret();
    const exit = this.cpu.runSlice(this.hart, budget);
    return { exit, retired: this.hart.instret() - before };
  }

  /** Places `words` at pc (default: the current pc) and runs them, one instruction per word. */
  exec(words: readonly number[], at: bigint = this.pc): RunResult {
    this.writeWords(at, words);
    this.pc = at;
    return this.run(words.length);
  }

  csr(number: number): bigint {
    if (!this.hart.csr.read(number, this.csrOut)) throw new Error(`CSR ${number.toString(16)} not readable`);
    return (BigInt((this.csrOut[1] as number) >>> 0) << 32n) | BigInt((this.csrOut[0] as number) >>> 0);
  }

  setCsr(number: number, value: bigint): void {
    const effects = this.hart.csr.write(
      number,
      Number(BigInt.asIntN(32, value)),
      Number(BigInt.asIntN(32, value >> 32n)),
    );
    if (effects < 0) throw new Error(`CSR ${number.toString(16)} not writable`);
  }

  /** Points mtvec (direct mode) at `handler` and puts `jal x0, 0` there, so a trap parks the hart. */
  parkTrapsAt(handler: bigint): void {
    this.writeWords(handler, [SPIN]);
    this.setCsr(CSR.MTVEC, handler);
  }

  /** mstatus.FS = Initial, so F/D loads and stores are legal. */
  enableFpu(): void {
    this.setCsr(CSR.MSTATUS, this.csr(CSR.MSTATUS) | (1n << 13n));
  }
}

/** A deterministic xorshift generator for tests that want reproducible random data without fast-check. */
export class Xorshift {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }
  u64(): bigint {
    return (BigInt(this.next()) << 32n) | BigInt(this.next());
  }
  below(n: number): number {
    return this.next() % n;
  }
}
