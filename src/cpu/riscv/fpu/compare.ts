/**
 * The non-rounding value operations: FMIN/FMAX, FEQ/FLT/FLE and FCLASS.
 * As in arithmetic.ts, NaN values carry no payload and signalling NaNs are flagged by the caller.
 */

import { Flag, raise } from "./flags.js";

/** IEEE 754-2019 minimumNumber: a NaN operand yields the other one, and -0 is below +0. */
export function minimum(a: number, b: number): number {
  if (Number.isNaN(a)) return b;
  if (Number.isNaN(b)) return a;
  // Math.min orders -0 below +0, as minimumNumber requires.
  return Math.min(a, b);
}

/** IEEE 754-2019 maximumNumber. */
export function maximum(a: number, b: number): number {
  if (Number.isNaN(a)) return b;
  if (Number.isNaN(b)) return a;
  return Math.max(a, b);
}

/** The funct3 encodings of FEQ, FLT and FLE. */
export enum Comparison {
  LESS_EQUAL = 0,
  LESS = 1,
  EQUAL = 2,
}

/** 1 if the relation holds, else 0. FLT and FLE are signalling: a NaN operand of any kind is invalid. */
export function compare(a: number, b: number, comparison: Comparison): number {
  if (comparison === Comparison.EQUAL) return a === b ? 1 : 0;
  if (Number.isNaN(a) || Number.isNaN(b)) {
    raise(Flag.INVALID);
    return 0;
  }
  return (comparison === Comparison.LESS ? a < b : a <= b) ? 1 : 0;
}

/** FCLASS result bits. */
enum FpClass {
  NEGATIVE_INFINITY = 1 << 0,
  NEGATIVE_NORMAL = 1 << 1,
  NEGATIVE_SUBNORMAL = 1 << 2,
  NEGATIVE_ZERO = 1 << 3,
  POSITIVE_ZERO = 1 << 4,
  POSITIVE_SUBNORMAL = 1 << 5,
  POSITIVE_NORMAL = 1 << 6,
  POSITIVE_INFINITY = 1 << 7,
  SIGNALLING_NAN = 1 << 8,
  QUIET_NAN = 1 << 9,
}

/**
 * FCLASS from the fields of an encoding: biasedExponent is the raw exponent field, maxExponentField its
 * all-ones value, and quiet the top fraction bit.
 */
export function classify(
  negative: boolean,
  biasedExponent: number,
  maxExponentField: number,
  fractionIsZero: boolean,
  quiet: boolean,
): number {
  if (biasedExponent === maxExponentField) {
    if (!fractionIsZero) return quiet ? FpClass.QUIET_NAN : FpClass.SIGNALLING_NAN;
    return negative ? FpClass.NEGATIVE_INFINITY : FpClass.POSITIVE_INFINITY;
  }
  if (biasedExponent !== 0) return negative ? FpClass.NEGATIVE_NORMAL : FpClass.POSITIVE_NORMAL;
  if (!fractionIsZero) return negative ? FpClass.NEGATIVE_SUBNORMAL : FpClass.POSITIVE_SUBNORMAL;
  return negative ? FpClass.NEGATIVE_ZERO : FpClass.POSITIVE_ZERO;
}

/** FCLASS.S of a binary32 encoding. */
export function classifySingle(bits: number): number {
  return classify(
    bits >>> 31 === 1,
    (bits >>> 23) & 0xff,
    0xff,
    (bits & 0x7fffff) === 0,
    (bits & 0x400000) !== 0,
  );
}

/** FCLASS.D of a binary64 encoding given as words. */
export function classifyDouble(high: number, low: number): number {
  return classify(
    high >>> 31 === 1,
    (high >>> 20) & 0x7ff,
    0x7ff,
    (high & 0xfffff) === 0 && low === 0,
    (high & 0x80000) !== 0,
  );
}
