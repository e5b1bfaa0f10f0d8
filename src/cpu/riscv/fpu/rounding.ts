/**
 * Correct rounding of an exactly known value to binary32 or binary64 in any RISC-V rounding mode,
 * with the overflow, underflow and inexact flags.
 *
 * Every rounding operation of the FPU first produces its exact result as an unevaluated sum
 * (hi + lo) * 2^scale of doubles, where hi is that sum rounded to nearest (53 bits) and lo the rest.
 * roundToFormat then works out where that value falls on the destination's grid of representable
 * numbers. Division and square root cannot know lo exactly, but their exact results are never
 * halfway between two 53-bit numbers; for them, any lo of the right sign and no larger magnitude
 * leads to the same decisions, which is all this module relies on.
 */

import { exponentOf, ldexp, significandOf } from "./bits.js";
import { Flag, raise } from "./flags.js";

/** The rm / frm encodings. */
export enum RoundingMode {
  NEAREST_EVEN = 0,
  TOWARD_ZERO = 1,
  DOWN = 2,
  UP = 3,
  NEAREST_MAX_MAGNITUDE = 4,
}

/** How to round a magnitude: the rounding mode once the sign of the value is known. */
export enum Direction {
  TRUNCATE = 0,
  AWAY = 1,
  NEAREST_EVEN = 2,
  NEAREST_AWAY = 3,
}

export interface FloatFormat {
  /** Significand bits, the hidden bit included. */
  readonly precision: number;
  /** Exponent of the smallest normal number. */
  readonly minExponent: number;
  readonly maxExponent: number;
  readonly maxFinite: number;
}

export const SINGLE: FloatFormat = {
  precision: 24,
  minExponent: -126,
  maxExponent: 127,
  maxFinite: (2 - 2 ** -23) * 2 ** 127,
};

export const DOUBLE: FloatFormat = {
  precision: 53,
  minExponent: -1022,
  maxExponent: 1023,
  maxFinite: Number.MAX_VALUE,
};

export function directionFor(mode: RoundingMode, negative: boolean): Direction {
  switch (mode) {
    case RoundingMode.NEAREST_EVEN:
      return Direction.NEAREST_EVEN;
    case RoundingMode.TOWARD_ZERO:
      return Direction.TRUNCATE;
    case RoundingMode.DOWN:
      return negative ? Direction.AWAY : Direction.TRUNCATE;
    case RoundingMode.UP:
      return negative ? Direction.TRUNCATE : Direction.AWAY;
    default:
      return Direction.NEAREST_AWAY;
  }
}

/**
 * Rounds the nonnegative value units + fraction to an integer. units is a double of at most 2^53 and
 * |fraction| is at most half a unit in the last place of units (fraction may be negative).
 */
export function roundToInteger(units: number, fraction: number, direction: Direction): number {
  const floor = Math.floor(units);
  const remainder = units - floor;
  // The value lies in (lower, lower + 1); halfway says where against lower + 1/2 (-1 below, 0 on, 1 above).
  let lower: number;
  let halfway: number;
  if (remainder !== 0) {
    // fraction is too small to cross a multiple of units' ulp, so it only decides exact halves.
    lower = floor;
    halfway = remainder < 0.5 ? -1 : remainder > 0.5 ? 1 : Math.sign(fraction);
  } else if (fraction > 0) {
    lower = floor;
    halfway = fraction < 0.5 ? -1 : 0;
  } else if (fraction < 0) {
    lower = floor - 1;
    halfway = fraction > -0.5 ? 1 : 0;
  } else {
    return floor;
  }
  switch (direction) {
    case Direction.TRUNCATE:
      return lower;
    case Direction.AWAY:
      return lower + 1;
    case Direction.NEAREST_EVEN:
      return halfway < 0 || (halfway === 0 && lower % 2 === 0) ? lower : lower + 1;
    default:
      return halfway < 0 ? lower : lower + 1;
  }
}

/** Values this far below the grid's spacing only tell the rounding their sign; this one stands for them. */
const BELOW_QUARTER_UNIT = 0.125;

/**
 * Rounds (hi + lo) * 2^scale to the format, raising NX, UF and OF as needed. hi must be nonzero and
 * equal (hi + lo) rounded to nearest; the sign of the result is that of hi.
 */
export function roundToFormat(
  hi: number,
  lo: number,
  scale: number,
  format: FloatFormat,
  mode: RoundingMode,
): number {
  const negative = hi < 0;
  const magnitude = Math.abs(hi);
  const tail = negative ? -lo : lo;
  const direction = directionFor(mode, negative);
  let localExponent = exponentOf(magnitude);
  // Rounded up to a power of two from just below: the exact value belongs to the binade underneath.
  if (tail < 0 && significandOf(magnitude) === 1) localExponent--;
  const exponent = localExponent + scale;
  if (exponent > format.maxExponent) return overflow(negative, direction, format);

  // The grid spacing at this exponent is 2^quantum; below the normal range it stops shrinking.
  const quantum = Math.max(exponent, format.minExponent) - format.precision + 1;
  const localQuantum = quantum - scale;
  let units = BELOW_QUARTER_UNIT;
  let fraction = 0;
  if (localExponent >= localQuantum - 2) {
    units = ldexp(magnitude, -localQuantum);
    fraction = ldexp(tail, -localQuantum);
    // Scaling a tail far below the grid may underflow; only its sign matters then, so keep one.
    if (fraction === 0 && tail !== 0) fraction = tail > 0 ? Number.MIN_VALUE : -Number.MIN_VALUE;
  }
  const inexact = fraction !== 0 || units !== Math.floor(units);
  const result = ldexp(roundToInteger(units, fraction, direction), quantum);
  if (result > format.maxFinite) return overflow(negative, direction, format);
  if (inexact) {
    raise(Flag.INEXACT);
    if (exponent < format.minExponent && isTinyAfterRounding(exponent, units, fraction, direction, format)) {
      raise(Flag.UNDERFLOW);
    }
  }
  return negative ? -result : result;
}

/**
 * RISC-V detects tininess after rounding: the value is tiny if, rounded to full precision with an
 * unbounded exponent, it is still below the smallest normal. Only values in the binade just under
 * the normal range can round up out of it; there the unbounded grid is half the subnormal one.
 */
function isTinyAfterRounding(
  exponent: number,
  units: number,
  fraction: number,
  direction: Direction,
  format: FloatFormat,
): boolean {
  if (exponent < format.minExponent - 1) return true;
  return roundToInteger(2 * units, 2 * fraction, direction) < ldexp(1, format.precision);
}

function overflow(negative: boolean, direction: Direction, format: FloatFormat): number {
  raise(Flag.OVERFLOW | Flag.INEXACT);
  const magnitude = direction === Direction.TRUNCATE ? format.maxFinite : Number.POSITIVE_INFINITY;
  return negative ? -magnitude : magnitude;
}
