/**
 * Conversions between the formats and to and from 32/64-bit integers.
 *
 * 64-bit integers live in the register file as (low, high) int32 pairs. Every integer of a result is
 * exact in a double except the saturation values 2^63 - 1 and 2^64 - 1, which are written as words.
 */

import { fastTwoSum, roundoff } from "./eft.js";
import { Flag, raise } from "./flags.js";
import {
  directionFor,
  type FloatFormat,
  type RoundingMode,
  roundToFormat,
  roundToInteger,
  SINGLE,
} from "./rounding.js";

/** Integer types, numbered as in the rs2 field of FCVT. */
export enum IntegerKind {
  WORD = 0,
  UNSIGNED_WORD = 1,
  LONG = 2,
  UNSIGNED_LONG = 3,
}

const TWO_POW_32 = 2 ** 32;
/** Doubles this large are all integers. */
const TWO_POW_52 = 2 ** 52;
/** Per IntegerKind: the inclusive lower and exclusive upper bound of the representable integers. */
const LOWER_BOUND = new Float64Array([-(2 ** 31), 0, -(2 ** 63), 0]);
const UPPER_BOUND = new Float64Array([2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64]);
/** Per IntegerKind: the (low, high) words written for values above and below the range (and NaN). */
const MAX_LOW = new Int32Array([0x7fffffff, -1, -1, -1]);
const MAX_HIGH = new Int32Array([0, -1, 0x7fffffff, -1]);
const MIN_LOW = new Int32Array([-0x80000000, 0, 0, 0]);
const MIN_HIGH = new Int32Array([-1, 0, -0x80000000, 0]);

/**
 * FCVT.{W,WU,L,LU}: rounds value to an integer and writes it, sign-extended to 64 bits, to x[rd].
 * Out-of-range values and NaN saturate and raise NV instead of NX.
 */
export function convertToInteger(
  value: number,
  kind: IntegerKind,
  mode: RoundingMode,
  x: Int32Array,
  rd: number,
): void {
  const rounded = Number.isNaN(value) ? Number.NaN : roundToIntegral(value, mode);
  if (!(rounded >= LOWER_BOUND[kind])) {
    raise(Flag.INVALID);
    const nan = Number.isNaN(rounded);
    x[2 * rd] = nan ? MAX_LOW[kind] : MIN_LOW[kind];
    x[2 * rd + 1] = nan ? MAX_HIGH[kind] : MIN_HIGH[kind];
    return;
  }
  if (rounded >= UPPER_BOUND[kind]) {
    raise(Flag.INVALID);
    x[2 * rd] = MAX_LOW[kind];
    x[2 * rd + 1] = MAX_HIGH[kind];
    return;
  }
  if (rounded !== value) raise(Flag.INEXACT);
  if (kind === IntegerKind.WORD || kind === IntegerKind.UNSIGNED_WORD) {
    // 32-bit results, unsigned ones included, are sign-extended from bit 31.
    const word = rounded | 0;
    x[2 * rd] = word;
    x[2 * rd + 1] = word >> 31;
  } else {
    const high = Math.floor(rounded / TWO_POW_32);
    x[2 * rd] = (rounded - high * TWO_POW_32) | 0;
    x[2 * rd + 1] = high | 0;
  }
}

/** value rounded to an integral double in the given mode, without flags. */
function roundToIntegral(value: number, mode: RoundingMode): number {
  const magnitude = Math.abs(value);
  if (magnitude >= TWO_POW_52) return value;
  const negative = value < 0;
  const rounded = roundToInteger(magnitude, 0, directionFor(mode, negative));
  return negative ? -rounded : rounded;
}

/** FCVT.{S,D}.{W,WU,L,LU}: the integer in x[rs1] of the given kind, rounded to the format. */
export function convertFromInteger(
  x: Int32Array,
  rs1: number,
  kind: IntegerKind,
  format: FloatFormat,
  mode: RoundingMode,
): number {
  const low = x[2 * rs1];
  let high: number;
  let low32: number;
  switch (kind) {
    case IntegerKind.WORD:
      high = 0;
      low32 = low;
      break;
    case IntegerKind.UNSIGNED_WORD:
      high = 0;
      low32 = low >>> 0;
      break;
    case IntegerKind.LONG:
      high = x[2 * rs1 + 1] * TWO_POW_32;
      low32 = low >>> 0;
      break;
    default:
      high = (x[2 * rs1 + 1] >>> 0) * TWO_POW_32;
      low32 = low >>> 0;
  }
  // |high| is a multiple of 2^32 and exceeds low32 unless it is zero: Fast2Sum's ordering holds.
  const sum = fastTwoSum(high, low32);
  if (sum === 0) return 0;
  return roundToFormat(sum, roundoff(), 0, format, mode);
}

/** FCVT.S.D. */
export function narrowToSingle(value: number, mode: RoundingMode): number {
  if (value === 0 || !Number.isFinite(value)) return value;
  return roundToFormat(value, 0, 0, SINGLE, mode);
}
