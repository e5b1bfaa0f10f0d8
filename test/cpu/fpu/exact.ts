/**
 * Exact reference arithmetic for the FPU tests, with BigInt: encodings are decoded to rationals, results
 * are computed exactly and rounded by a direct reading of IEEE 754's definitions (nearest neighbours on
 * the format's grid, tininess after rounding with an unbounded exponent, overflow of the unbounded
 * rounding). It shares no code or technique with the implementation under test.
 */

export interface Format {
  readonly name: "S" | "D";
  readonly width: 32 | 64;
  readonly precision: number;
  readonly exponentBits: number;
  readonly bias: number;
  readonly minExponent: number;
  readonly maxExponent: number;
}

export const F32: Format = {
  name: "S",
  width: 32,
  precision: 24,
  exponentBits: 8,
  bias: 127,
  minExponent: -126,
  maxExponent: 127,
};
export const F64: Format = {
  name: "D",
  width: 64,
  precision: 53,
  exponentBits: 11,
  bias: 1023,
  minExponent: -1022,
  maxExponent: 1023,
};

export enum Mode {
  RNE = 0,
  RTZ = 1,
  RDN = 2,
  RUP = 3,
  RMM = 4,
}

export const NV = 16;
export const DZ = 8;
export const OF = 4;
export const UF = 2;
export const NX = 1;

/** A rational num / den with den > 0. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

export type Decoded =
  | { readonly kind: "nan"; readonly signalling: boolean; readonly negative: boolean }
  | { readonly kind: "inf"; readonly negative: boolean }
  | { readonly kind: "zero"; readonly negative: boolean }
  | {
      readonly kind: "finite";
      readonly negative: boolean;
      readonly subnormal: boolean;
      readonly value: Rational;
    };

function fieldMask(bits: number): bigint {
  return (1n << BigInt(bits)) - 1n;
}

export function decode(bits: bigint, format: Format): Decoded {
  const fractionBits = format.precision - 1;
  const negative = ((bits >> BigInt(format.width - 1)) & 1n) === 1n;
  const biased = Number((bits >> BigInt(fractionBits)) & fieldMask(format.exponentBits));
  const fraction = bits & fieldMask(fractionBits);
  if (biased === Number(fieldMask(format.exponentBits))) {
    if (fraction === 0n) return { kind: "inf", negative };
    return { kind: "nan", signalling: ((fraction >> BigInt(fractionBits - 1)) & 1n) === 0n, negative };
  }
  if (biased === 0 && fraction === 0n) return { kind: "zero", negative };
  const subnormal = biased === 0;
  const significand = subnormal ? fraction : fraction | (1n << BigInt(fractionBits));
  const exponent = (subnormal ? format.minExponent : biased - format.bias) - fractionBits;
  const magnitude = scaled(significand, exponent);
  const value = negative ? { num: -magnitude.num, den: magnitude.den } : magnitude;
  return { kind: "finite", negative, subnormal, value };
}

/** m * 2^e as a rational. */
export function scaled(m: bigint, e: number): Rational {
  return e >= 0 ? { num: m << BigInt(e), den: 1n } : { num: m, den: 1n << BigInt(-e) };
}

export function sum(a: Rational, b: Rational): Rational {
  return { num: a.num * b.den + b.num * a.den, den: a.den * b.den };
}

export function product(a: Rational, b: Rational): Rational {
  return { num: a.num * b.num, den: a.den * b.den };
}

export function quotient(a: Rational, b: Rational): Rational {
  const num = a.num * b.den;
  const den = a.den * b.num;
  return den < 0n ? { num: -num, den: -den } : { num, den };
}

/** Sign of a - b. */
export function compareRationals(a: Rational, b: Rational): number {
  const difference = a.num * b.den - b.num * a.den;
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}

export function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Where a positive real lies between two consecutive multiples of a power of two. */
type Rest = "zero" | "below" | "half" | "above";

/** A positive real known exactly enough to be placed on any power-of-two grid. */
export interface Magnitude {
  /** floor(log2(value)). */
  log2Floor(): number;
  /** floor(value / 2^e), and where value / 2^e lies against that integer and the next. */
  quantize(e: number): { n: bigint; rest: Rest };
}

function restOf(twiceRemainder: bigint, divisor: bigint): Rest {
  if (twiceRemainder === 0n) return "zero";
  return twiceRemainder < divisor ? "below" : twiceRemainder === divisor ? "half" : "above";
}

/** |r| for a nonzero rational. */
export function rationalMagnitude(r: Rational): Magnitude {
  const num = r.num < 0n ? -r.num : r.num;
  const den = r.den;
  return {
    log2Floor() {
      const k = bitLength(num) - bitLength(den);
      const below = k >= 0 ? num < den << BigInt(k) : num << BigInt(-k) < den;
      return below ? k - 1 : k;
    },
    quantize(e) {
      const n = e >= 0 ? num : num << BigInt(-e);
      const d = e >= 0 ? den << BigInt(e) : den;
      return { n: n / d, rest: restOf(2n * (n % d), d) };
    },
  };
}

export function integerSquareRoot(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const next = (x + n / x) >> 1n;
    if (next >= x) return x;
    x = next;
  }
}

/** sqrt(r) for a positive rational, placed on grids by comparing squares. */
export function squareRootMagnitude(r: Rational): Magnitude {
  const inner = rationalMagnitude(r);
  return {
    log2Floor: () => Math.floor(inner.log2Floor() / 2),
    quantize(e) {
      // sqrt(r) / 2^e = sqrt(y) with y = r / 4^e = num / den.
      const num = e >= 0 ? r.num : r.num << BigInt(-2 * e);
      const den = e >= 0 ? r.den << BigInt(2 * e) : r.den;
      const n = integerSquareRoot(num / den);
      if (n * n * den === num) return { n, rest: "zero" };
      // Against n + 1/2: compare y with (2n + 1)^2 / 4.
      const midpoint = (2n * n + 1n) ** 2n * den;
      const rest: Rest = 4n * num < midpoint ? "below" : 4n * num === midpoint ? "half" : "above";
      return { n, rest };
    },
  };
}

export interface Result {
  /** The encoding in the format's width. */
  readonly bits: bigint;
  readonly flags: number;
}

export function infinityBits(format: Format, negative: boolean): bigint {
  return signBit(format, negative) | (fieldMask(format.exponentBits) << BigInt(format.precision - 1));
}

export function zeroBits(format: Format, negative: boolean): bigint {
  return signBit(format, negative);
}

function maxFiniteBits(format: Format, negative: boolean): bigint {
  return signBit(format, negative) | (infinityBits(format, false) - 1n);
}

function signBit(format: Format, negative: boolean): bigint {
  return negative ? 1n << BigInt(format.width - 1) : 0n;
}

/** Rounds value / 2^e to an integer per the mode: returns it and whether that was inexact. */
function roundAt(magnitude: Magnitude, e: number, negative: boolean, mode: Mode) {
  const { n, rest } = magnitude.quantize(e);
  if (rest === "zero") return { n, inexact: false };
  let up: boolean;
  switch (mode) {
    case Mode.RNE:
      up = rest === "above" || (rest === "half" && (n & 1n) === 1n);
      break;
    case Mode.RTZ:
      up = false;
      break;
    case Mode.RDN:
      up = negative;
      break;
    case Mode.RUP:
      up = !negative;
      break;
    default:
      up = rest !== "below";
  }
  return { n: up ? n + 1n : n, inexact: true };
}

/** Rounds (-1)^negative * magnitude to the format with IEEE 754 default exception handling. */
export function roundTo(format: Format, negative: boolean, magnitude: Magnitude, mode: Mode): Result {
  const exponent = magnitude.log2Floor();
  const unboundedQuantum = exponent - format.precision + 1;
  const unbounded = roundAt(magnitude, unboundedQuantum, negative, mode);
  const unboundedExponent = bitLength(unbounded.n) - 1 + unboundedQuantum;
  if (unboundedExponent > format.maxExponent) {
    const toInfinity =
      mode === Mode.RNE ||
      mode === Mode.RMM ||
      (mode === Mode.RDN && negative) ||
      (mode === Mode.RUP && !negative);
    return {
      bits: toInfinity ? infinityBits(format, negative) : maxFiniteBits(format, negative),
      flags: OF | NX,
    };
  }
  const quantum = Math.max(exponent, format.minExponent) - format.precision + 1;
  const { n, inexact } = roundAt(magnitude, quantum, negative, mode);
  const tiny = unboundedExponent < format.minExponent;
  const flags = (inexact ? NX : 0) | (inexact && tiny ? UF : 0);
  return { bits: encode(format, negative, n, quantum), flags };
}

/** The encoding of (-1)^negative * n * 2^e, which must be representable. */
function encode(format: Format, negative: boolean, n: bigint, e: number): bigint {
  if (n === 0n) return zeroBits(format, negative);
  const fractionBits = format.precision - 1;
  const exponent = bitLength(n) - 1 + e;
  if (exponent < format.minExponent) {
    const shift = e - (format.minExponent - fractionBits);
    if (shift < 0) throw new Error("reference: subnormal not on the grid");
    return signBit(format, negative) | (n << BigInt(shift));
  }
  const shift = format.precision - bitLength(n);
  const significand = shift >= 0 ? n << BigInt(shift) : n >> BigInt(-shift);
  if (shift < 0 && significand << BigInt(-shift) !== n) throw new Error("reference: value not representable");
  const fraction = significand - (1n << BigInt(fractionBits));
  return signBit(format, negative) | (BigInt(exponent + format.bias) << BigInt(fractionBits)) | fraction;
}

/** A nonzero rational rounded to the format. */
export function roundRational(format: Format, value: Rational, mode: Mode): Result {
  return roundTo(format, value.num < 0n, rationalMagnitude(value), mode);
}
