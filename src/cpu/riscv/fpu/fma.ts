/**
 * Fused multiply-add a * b + c with a single rounding, for either format.
 *
 * The product of the significands is exact as ph + pl (TwoProduct), so the task is a correctly rounded
 * sum of three doubles. Following Boldo and Melquiond's round-to-odd method:
 *   (th, tl) = TwoSum(c, ph); v = tl + pl rounded to odd; y = th + v.
 * If c + ph was inexact there was no cancellation, so |tl + pl| is below 2 ulp(th) and v's grid is at
 * least 2^51 times finer than th's. y is then the odd neighbour of the exact sum on that fine grid, and
 * any rounding of y to 53 bits or fewer equals the rounding of the exact sum. (If c + ph was exact, v is
 * tl + pl exactly and y is the exact sum.) y itself is represented exactly by TwoSum(th, v).
 */

import { add, invalid, multiply } from "./arithmetic.js";
import {
  exponentOf,
  hasOddSignificand,
  isNegative,
  ldexp,
  significandOf,
  stepAwayFromZero,
  stepTowardZero,
} from "./bits.js";
import { roundoff, twoProduct, twoSum } from "./eft.js";
import { type FloatFormat, RoundingMode, roundToFormat } from "./rounding.js";

/**
 * Exponent gaps beyond which one term only breaks ties. In units where the product's significand is
 * in [1, 4), ph + pl is a multiple of 2^-104, so an addend below 2^-110 cannot reach the next multiple:
 * any addend of the same sign that small has the same effect. Symmetrically, a product more than 2^60
 * below c is under a quarter of c's ulp and acts on the rounding only through its sign.
 */
const NEGLIGIBLE_ADDEND_GAP = -110;
const NEGLIGIBLE_PRODUCT_GAP = 60;

export function fusedMultiplyAdd(
  a: number,
  b: number,
  c: number,
  format: FloatFormat,
  mode: RoundingMode,
): number {
  if (Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(c)) {
    // RISC-V flags infinity times zero even when the addend is a quiet NaN.
    if (
      (Math.abs(a) === Number.POSITIVE_INFINITY && b === 0) ||
      (a === 0 && Math.abs(b) === Number.POSITIVE_INFINITY)
    ) {
      return invalid();
    }
    return Number.NaN;
  }
  const productNegative = isNegative(a) !== isNegative(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    if (a === 0 || b === 0) return invalid();
    if (!Number.isFinite(c) && isNegative(c) !== productNegative) return invalid();
    return productNegative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!Number.isFinite(c)) return c;
  // An exactly zero product leaves a plain sum (with its zero-sign rules); a zero addend, a product.
  if (a === 0 || b === 0) return add(productNegative ? -0 : 0, c, format, mode);
  if (c === 0) return multiply(a, b, format, mode);

  let scale = exponentOf(a) + exponentOf(b);
  const significandProduct = twoProduct(significandOf(a), significandOf(b));
  let productHigh = productNegative ? -significandProduct : significandProduct;
  let productLow = productNegative ? -roundoff() : roundoff();
  const addendSign = c < 0 ? -1 : 1;
  const gap = exponentOf(c) - scale;
  let addend: number;
  if (gap > NEGLIGIBLE_PRODUCT_GAP) {
    scale = exponentOf(c) - NEGLIGIBLE_PRODUCT_GAP;
    addend = addendSign * ldexp(significandOf(c), NEGLIGIBLE_PRODUCT_GAP);
    productHigh = productNegative ? -1 : 1;
    productLow = 0;
  } else if (gap < NEGLIGIBLE_ADDEND_GAP) {
    addend = addendSign * ldexp(1, NEGLIGIBLE_ADDEND_GAP);
  } else {
    addend = addendSign * ldexp(significandOf(c), gap);
  }

  const high = twoSum(addend, productHigh);
  const highError = roundoff();
  const tailNearest = twoSum(highError, productLow);
  const tail = roundToOdd(tailNearest, roundoff());
  const sum = twoSum(high, tail);
  if (sum === 0) return mode === RoundingMode.DOWN ? -0 : 0;
  return roundToFormat(sum, roundoff(), scale, format, mode);
}

/** Given nearest = RN(t) and the exact error t - nearest, returns t rounded to odd (53 bits). */
function roundToOdd(nearest: number, error: number): number {
  if (error === 0 || hasOddSignificand(nearest)) return nearest;
  // t lies between nearest and its neighbour on the error's side, and that neighbour is odd.
  return error > 0 === nearest > 0 ? stepAwayFromZero(nearest) : stepTowardZero(nearest);
}
