/**
 * Bit-level views of doubles and floats, and exact scaling by powers of two.
 *
 * Everything goes through one module-level scratch buffer so that no helper allocates. The word order
 * assumes a little-endian host, like every other typed-array view on emulator memory.
 */

const scratch = new ArrayBuffer(8);
const scratchDouble = new Float64Array(scratch);
const scratchSingle = new Float32Array(scratch, 0, 1);
/** [0] = low word, [1] = high word (sign, exponent, top of the fraction) of scratchDouble. */
const scratchWords = new Uint32Array(scratch);

export function highWord(x: number): number {
  scratchDouble[0] = x;
  return scratchWords[1];
}

export function lowWord(x: number): number {
  scratchDouble[0] = x;
  return scratchWords[0];
}

/** The IEEE binary32 encoding of x, which must be exactly representable as a float (or be ±inf). */
export function singleToBits(x: number): number {
  scratchSingle[0] = x;
  return scratchWords[0];
}

/** The value of a binary32 encoding (any NaN encoding gives NaN). */
export function bitsToSingle(bits: number): number {
  scratchWords[0] = bits;
  return scratchSingle[0];
}

/** True for -0 and negative numbers: comparisons alone cannot see the sign of a zero. */
export function isNegative(x: number): boolean {
  return x < 0 || (x === 0 && 1 / x < 0);
}

const TWO_POW_64 = 2 ** 64;

/** floor(log2|x|) for finite nonzero x, subnormals included. */
export function exponentOf(x: number): number {
  const biased = (highWord(x) >>> 20) & 0x7ff;
  if (biased !== 0) return biased - 1023;
  return ((highWord(x * TWO_POW_64) >>> 20) & 0x7ff) - 1023 - 64;
}

/** |x| scaled by a power of two into [1, 2), for finite nonzero x. */
export function significandOf(x: number): number {
  scratchDouble[0] = x;
  if ((scratchWords[1] & 0x7ff00000) === 0) scratchDouble[0] = x * TWO_POW_64;
  scratchWords[1] = (scratchWords[1] & 0x000fffff) | 0x3ff00000;
  return scratchDouble[0];
}

/** Whether the last bit of x's 53-bit significand is 1 (x normal). */
export function hasOddSignificand(x: number): boolean {
  return (lowWord(x) & 1) === 1;
}

/** The neighbour of a finite nonzero x one unit in the last place further from zero (may be ±inf). */
export function stepAwayFromZero(x: number): number {
  scratchDouble[0] = x;
  const low = (scratchWords[0] + 1) >>> 0;
  scratchWords[0] = low;
  if (low === 0) scratchWords[1] += 1;
  return scratchDouble[0];
}

/** The neighbour of a finite nonzero x one unit in the last place closer to zero. */
export function stepTowardZero(x: number): number {
  scratchDouble[0] = x;
  if (scratchWords[0] === 0) scratchWords[1] -= 1;
  scratchWords[0] = (scratchWords[0] - 1) >>> 0;
  return scratchDouble[0];
}

const MIN_POWER = -1074;
const MAX_POWER = 1023;
/** 2^n for every n a double can hold, so scaling is a table look-up and a multiply. */
const powersOfTwo = new Float64Array(MAX_POWER - MIN_POWER + 1);
for (let n = 0, p = 1; n <= MAX_POWER; n++, p *= 2) powersOfTwo[n - MIN_POWER] = p;
for (let n = 0, p = 1; n >= MIN_POWER; n--, p /= 2) powersOfTwo[n - MIN_POWER] = p;

/**
 * x * 2^n for |n| <= 2044. The two factors have the same sign of exponent, so the intermediate lies
 * between x and the result: the product is exact whenever the result is representable.
 */
export function ldexp(x: number, n: number): number {
  const half = n >> 1;
  return x * powersOfTwo[half - MIN_POWER] * powersOfTwo[n - half - MIN_POWER];
}
