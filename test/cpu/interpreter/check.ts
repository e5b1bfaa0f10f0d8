/**
 * Runs one instruction on a register file where every register holds a distinct filler value and x0's slot
 * holds garbage, then checks the whole register file: only rd may change, x0 must read as zero, and the
 * instruction must retire and fall through. A second instruction, `add probe, x0, x0`, checks that x0 still
 * reads as zero after an instruction that named it as rd.
 */
import assert from "node:assert/strict";
import { Opc, rType } from "./encode.js";
import { hex64, type TestMachine, u64 } from "./harness.js";

/** Distinct, recognisable values for registers an instruction must not touch (x0's is garbage). */
export const FILLER: readonly bigint[] = Array.from(
  { length: 32 },
  (_, r) => 0xf111_e400_0000_0000n | (BigInt(r) << 32n) | BigInt(r * 0x0101_0101),
);

export interface RegisterCase {
  word: number;
  rd: number;
  /** Registers written in this order (a later write to the same register wins, as in real aliasing). */
  sources: readonly (readonly [number, bigint])[];
  /** The spec's result, from the architectural values of the registers before the instruction. */
  expected: (x: (reg: number) => bigint) => bigint;
  pc: bigint;
  describe: () => string;
}

export function loadRegisters(m: TestMachine, pc: bigint, sources: RegisterCase["sources"]): bigint[] {
  m.reset(pc);
  for (let r = 0; r < 32; r++) m.setX(r, FILLER[r] as bigint);
  for (const [r, v] of sources) m.setX(r, v);
  return m.xs();
}

/** First register, from x31 down, that is none of `used` (and not x0). */
export function spareRegister(used: readonly number[]): number {
  for (let r = 31; r > 0; r--) if (!used.includes(r)) return r;
  throw new Error("no spare register");
}

export function compareRegisters(
  actual: readonly bigint[],
  want: readonly bigint[],
  context: () => string,
): void {
  for (let r = 0; r < 32; r++) {
    if (actual[r] !== want[r]) {
      assert.fail(`x${r} = ${hex64(actual[r] as bigint)}, want ${hex64(want[r] as bigint)} (${context()})`);
    }
  }
}

export function checkRegisterCase(m: TestMachine, c: RegisterCase): void {
  const before = loadRegisters(m, c.pc, c.sources);
  const expected = u64(c.expected((r) => before[r] as bigint));
  const probe = spareRegister([c.rd, ...c.sources.map(([r]) => r)]);
  const result = m.exec([c.word, rType(Opc.OP, 0, 0, probe, 0, 0)], c.pc);
  const context = () => `${c.describe()}, word 0x${c.word.toString(16).padStart(8, "0")}`;
  const want = [...before];
  if (c.rd !== 0) want[c.rd] = expected;
  want[probe] = 0n;
  compareRegisters(m.xs(), want, context);
  assert.equal(m.rawX(0), 0n, `x0's slot is not zero after the probe (${context()})`);
  assert.equal(result.retired, 2, `retired ${result.retired} of 2 (${context()})`);
  assert.equal(m.pc, u64(c.pc + 8n), `pc ${hex64(m.pc)} (${context()})`);
}
