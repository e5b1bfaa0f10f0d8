/**
 * Error-free transforms: the host rounds every double operation to nearest-even, and these recover the
 * exact rounding error as a second double, so that hi + error equals the mathematical result.
 *
 * Each transform returns the rounded result and leaves the error in a module-level slot read with
 * roundoff(), which avoids allocating a pair per call. The slot is a typed array because storing a
 * double there never allocates, unlike a module-level variable.
 */

const error = new Float64Array(1);

/** The exact error of the last transform: (mathematical result) - (returned value). */
export function roundoff(): number {
  return error[0];
}

/**
 * a + b (Knuth's TwoSum, no ordering needed). Exact unless an intermediate overflows, which cannot
 * happen for operands below 2^1020 in magnitude; callers with larger operands use fastTwoSum.
 */
export function twoSum(a: number, b: number): number {
  const sum = a + b;
  const bPart = sum - a;
  const aPart = sum - bPart;
  error[0] = a - aPart + (b - bPart);
  return sum;
}

/**
 * a + b for |a| >= |b| (Dekker's Fast2Sum). Exact for all finite operands whose rounded sum is
 * finite: none of its intermediates can overflow.
 */
export function fastTwoSum(a: number, b: number): number {
  const sum = a + b;
  error[0] = b - (sum - a);
  return sum;
}

/** 2^27 + 1: Veltkamp's constant, splitting a double into two halves of 26 and 27 bits. */
const SPLITTER = 134217729;

/**
 * a * b (Dekker's TwoProduct). Exact when |a|, |b| < 2^995 (so splitting cannot overflow) and the
 * product's error stays above the subnormal range; callers pass significands in [1, 4).
 */
export function twoProduct(a: number, b: number): number {
  const product = a * b;
  let scaled = SPLITTER * a;
  const aHigh = scaled - (scaled - a);
  const aLow = a - aHigh;
  scaled = SPLITTER * b;
  const bHigh = scaled - (scaled - b);
  const bLow = b - bHigh;
  error[0] = aLow * bLow - (product - aHigh * bHigh - aLow * bHigh - aHigh * bLow);
  return product;
}
