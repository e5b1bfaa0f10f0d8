/**
 * Correctly rounded add, multiply, divide and square root for either format.
 *
 * Operands are JS numbers holding values of the format (binary32 values are exact in a double); a
 * NaN result stands for the canonical NaN. Signalling-NaN operands are flagged by the caller, which
 * sees their encodings; everything else (NV, DZ, and the rounding flags) is raised here.
 *
 * Multiply, divide and square root work on significands in [1, 2) and carry the exponent aside, so
 * their error-free transforms never meet overflow or the subnormal range, whatever the operands.
 */

import { exponentOf, isNegative, significandOf } from "./bits.js";
import { fastTwoSum, roundoff, twoProduct } from "./eft.js";
import { Flag, raise } from "./flags.js";
import { type FloatFormat, RoundingMode, roundToFormat } from "./rounding.js";

export function add(a: number, b: number, format: FloatFormat, mode: RoundingMode): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.NaN;
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    if (a === -b) return invalid();
    return Number.isFinite(a) ? b : a;
  }
  let larger = a;
  let smaller = b;
  if (Math.abs(a) < Math.abs(b)) {
    larger = b;
    smaller = a;
  }
  let sum = fastTwoSum(larger, smaller);
  if (sum === 0) return exactZeroSum(a, b, mode);
  if (Number.isFinite(sum)) return roundToFormat(sum, roundoff(), 0, format, mode);
  // The host rounded to infinity, but a directed mode may still want the largest finite number. The
  // smaller operand is then at least 2^970, so halving both is exact.
  sum = fastTwoSum(larger * 0.5, smaller * 0.5);
  return roundToFormat(sum, roundoff(), 1, format, mode);
}

/**
 * An exactly zero sum is +0, or -0 when rounding down; but x + x keeps the sign of x, which matters
 * when both are zeros of the same sign.
 */
export function exactZeroSum(a: number, b: number, mode: RoundingMode): number {
  if (a === 0 && b === 0 && isNegative(a) === isNegative(b)) return a;
  return mode === RoundingMode.DOWN ? -0 : 0;
}

export function multiply(a: number, b: number, format: FloatFormat, mode: RoundingMode): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.NaN;
  const negative = isNegative(a) !== isNegative(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    if (a === 0 || b === 0) return invalid();
    return negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (a === 0 || b === 0) return negative ? -0 : 0;
  const product = twoProduct(significandOf(a), significandOf(b));
  const error = roundoff();
  const scale = exponentOf(a) + exponentOf(b);
  return roundToFormat(negative ? -product : product, negative ? -error : error, scale, format, mode);
}

export function divide(a: number, b: number, format: FloatFormat, mode: RoundingMode): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.NaN;
  const negative = isNegative(a) !== isNegative(b);
  if (!Number.isFinite(a)) {
    if (!Number.isFinite(b)) return invalid();
    return negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!Number.isFinite(b)) return negative ? -0 : 0;
  if (b === 0) {
    if (a === 0) return invalid();
    raise(Flag.DIVIDE_BY_ZERO);
    return negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (a === 0) return negative ? -0 : 0;
  const dividend = significandOf(a);
  const divisor = significandOf(b);
  const quotient = dividend / divisor;
  // dividend - quotient * divisor is exactly representable, and TwoProduct makes its computation exact.
  const product = twoProduct(quotient, divisor);
  const remainder = dividend - product - roundoff();
  // The quotient's error is remainder / divisor, with divisor in [1, 2): a quarter of the remainder has
  // the same sign and a smaller magnitude, which is all roundToFormat needs of a quotient.
  const error = remainder * 0.25;
  const scale = exponentOf(a) - exponentOf(b);
  return roundToFormat(negative ? -quotient : quotient, negative ? -error : error, scale, format, mode);
}

export function squareRoot(a: number, format: FloatFormat, mode: RoundingMode): number {
  if (Number.isNaN(a)) return Number.NaN;
  if (a === 0) return a;
  if (a < 0) return invalid();
  if (a === Number.POSITIVE_INFINITY) return a;
  let exponent = exponentOf(a);
  let radicand = significandOf(a);
  // An even exponent halves exactly; the radicand absorbs the odd bit and lies in [1, 4).
  if ((exponent & 1) !== 0) {
    radicand *= 2;
    exponent -= 1;
  }
  const root = Math.sqrt(radicand);
  // radicand - root^2 is exactly representable when root is the correctly rounded square root.
  const square = twoProduct(root, root);
  const remainder = radicand - square - roundoff();
  // The root's error is remainder / (exact root + root), a divisor in [2, 4]: an eighth of the
  // remainder has its sign and a smaller magnitude.
  return roundToFormat(root, remainder * 0.125, exponent / 2, format, mode);
}

export function invalid(): number {
  raise(Flag.INVALID);
  return Number.NaN;
}
