/**
 * Shared plumbing of the property tests: how the rounding mode is delivered, NaN-boxing of single
 * operands (sometimes broken on purpose), and running one instruction against a reference result.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { F32, F64, type Format, Mode, type Result } from "./exact.js";
import { box, execute, getF, getX, hex, registers, reset, setF, setX } from "./harness.js";
import { canonicalNan } from "./reference.js";

export const MODES: readonly Mode[] = [Mode.RNE, Mode.RTZ, Mode.RDN, Mode.RUP, Mode.RMM];
export const MODE_NAMES = ["RNE", "RTZ", "RDN", "RUP", "RMM"];
export const FORMATS: readonly Format[] = [F32, F64];

/** Runs per property; FPU_RUNS scales the whole suite. */
export const RUNS = Number(process.env.FPU_RUNS ?? 1500);

/** Operands go to f1, f2, f3 (x1 for integers) and results to rd = 4 (f4 or x4). */
export const RS1 = 1;
export const RS2 = 2;
export const RS3 = 3;
export const RD = 4;

/** How one case delivers its rounding mode, plus fflags already set (which must only be OR-ed). */
export interface Delivery {
  readonly dynamic: boolean;
  /** frm when the mode is static: any value, reserved ones included, must be ignored. */
  readonly frmNoise: number;
  readonly flagsBefore: number;
}

export const delivery: fc.Arbitrary<Delivery> = fc.record({
  dynamic: fc.boolean(),
  frmNoise: fc.integer({ min: 0, max: 7 }),
  flagsBefore: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 31 })),
});

/** The high word of a single operand's register: null for a proper NaN box. */
export const boxing: fc.Arbitrary<number | null> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 15 },
  { arbitrary: fc.integer({ min: 0, max: 0xfffffffe }), weight: 1 },
);

/** The 64-bit register holding an operand, given its encoding and (for singles) its boxing. */
export function registerFor(format: Format, bits: bigint, high: number | null): bigint {
  if (format.width === 64) return bits;
  return high === null ? box(bits) : (BigInt(high) << 32n) | bits;
}

/** The operand the instruction actually sees: an improperly boxed single reads as the canonical NaN. */
export function effective(format: Format, bits: bigint, high: number | null): bigint {
  return format.width === 32 && high !== null ? canonicalNan(format) : bits;
}

function prepare(d: Delivery, mode: Mode, fOperands: readonly bigint[]): number {
  reset(d.flagsBefore, d.dynamic ? mode : d.frmNoise);
  fOperands.forEach((value, i) => {
    setF(RS1 + i, value);
  });
  return d.dynamic ? 7 : mode;
}

/**
 * Executes the instruction built by insnFor(rm) on f-register operands (and xOperand in x1, if given)
 * and checks the f result (NaN-boxed for singles) and fflags against the reference.
 */
export function expectFloatResult(
  format: Format,
  insnFor: (rm: number) => number,
  fOperands: readonly bigint[],
  mode: Mode,
  d: Delivery,
  expected: Result,
  xOperand?: bigint,
): void {
  const rm = prepare(d, mode, fOperands);
  if (xOperand !== undefined) setX(RS1, xOperand);
  assert.equal(execute(insnFor(rm)), true, "executeFp rejected a legal instruction");
  const want = format.width === 32 ? box(expected.bits) : expected.bits;
  assert.equal(
    `${hex(getF(RD))} flags=${registers.fcsr[0]}`,
    `${hex(want)} flags=${d.flagsBefore | expected.flags}`,
    describeOperands(fOperands, mode, xOperand),
  );
}

function describeOperands(fOperands: readonly bigint[], mode: Mode, xOperand?: bigint): string {
  const x = xOperand === undefined ? "" : ` x1=${hex(xOperand)}`;
  return `operands ${fOperands.map((v) => hex(v)).join(", ")}${x} ${MODE_NAMES[mode] ?? mode}`;
}

/** Same for instructions writing x[RD]; xOperand, if given, goes to x1. */
export function expectIntegerResult(
  insnFor: (rm: number) => number,
  fOperands: readonly bigint[],
  mode: Mode,
  d: Delivery,
  expected: Result,
  xOperand?: bigint,
): void {
  const rm = prepare(d, mode, fOperands);
  if (xOperand !== undefined) setX(RS1, xOperand);
  assert.equal(execute(insnFor(rm)), true, "executeFp rejected a legal instruction");
  assert.equal(
    `${hex(getX(RD))} flags=${registers.fcsr[0]}`,
    `${hex(expected.bits)} flags=${d.flagsBefore | expected.flags}`,
    describeOperands(fOperands, mode, xOperand),
  );
}

export function assertProperty<T>(arbitrary: fc.Arbitrary<T>, check: (value: T) => void, runs = RUNS): void {
  fc.assert(
    fc.property(arbitrary, (value) => {
      check(value);
    }),
    { numRuns: runs },
  );
}
