/**
 * Reference semantics of the F/D instructions, written from the RISC-V unprivileged spec on top of the
 * exact arithmetic of exact.ts. Operands and results are encodings (bigint) of the format's width;
 * single-precision operands are passed already unboxed (canonical NaN if the box was broken).
 */

import {
  compareRationals,
  type Decoded,
  DZ,
  decode,
  type Format,
  infinityBits,
  Mode,
  NV,
  NX,
  product,
  quotient,
  type Rational,
  type Result,
  rationalMagnitude,
  roundRational,
  roundTo,
  squareRootMagnitude,
  sum,
  zeroBits,
} from "./exact.js";

export function canonicalNan(format: Format): bigint {
  return format.width === 32 ? 0x7fc00000n : 0x7ff8000000000000n;
}

function isSignalling(d: Decoded): boolean {
  return d.kind === "nan" && d.signalling;
}

function nanResult(format: Format, ...operands: Decoded[]): Result {
  return { bits: canonicalNan(format), flags: operands.some(isSignalling) ? NV : 0 };
}

const invalid = (format: Format): Result => ({ bits: canonicalNan(format), flags: NV });

/** Value of a zero or finite operand. */
function exactValue(d: Decoded): Rational {
  return d.kind === "finite" ? d.value : { num: 0n, den: 1n };
}

/** Rounds an exact sum; an exact zero gets the sign IEEE 754 gives sums (6.3). */
function roundSum(format: Format, exact: Rational, mode: Mode, bothZeroNegative: boolean | null): Result {
  if (exact.num !== 0n) return roundRational(format, exact, mode);
  const negative = bothZeroNegative ?? mode === Mode.RDN;
  return { bits: zeroBits(format, negative), flags: 0 };
}

/** Same-signed zero operands keep their sign in a sum; null otherwise. */
function zeroSumSign(x: { kind: string; negative: boolean }, y: { kind: string; negative: boolean }) {
  return x.kind === "zero" && y.kind === "zero" && x.negative === y.negative ? x.negative : null;
}

export function refAdd(format: Format, a: bigint, b: bigint, mode: Mode, subtract = false): Result {
  const x = decode(a, format);
  const y0 = decode(b, format);
  if (x.kind === "nan" || y0.kind === "nan") return nanResult(format, x, y0);
  const y = negate(y0, subtract);
  if (x.kind === "inf" && y.kind === "inf") {
    return x.negative === y.negative ? { bits: infinityBits(format, x.negative), flags: 0 } : invalid(format);
  }
  if (x.kind === "inf" || y.kind === "inf") {
    return { bits: infinityBits(format, x.kind === "inf" ? x.negative : y.negative), flags: 0 };
  }
  return roundSum(format, sum(exactValue(x), exactValue(y)), mode, zeroSumSign(x, y));
}

function negate(d: Decoded, really: boolean): Decoded {
  if (!really) return d;
  if (d.kind === "finite") {
    return { ...d, negative: !d.negative, value: { num: -d.value.num, den: d.value.den } };
  }
  return { ...d, negative: !d.negative } as Decoded;
}

export function refMul(format: Format, a: bigint, b: bigint, mode: Mode): Result {
  const x = decode(a, format);
  const y = decode(b, format);
  if (x.kind === "nan" || y.kind === "nan") return nanResult(format, x, y);
  const negative = x.negative !== y.negative;
  if (x.kind === "inf" || y.kind === "inf") {
    if (x.kind === "zero" || y.kind === "zero") return invalid(format);
    return { bits: infinityBits(format, negative), flags: 0 };
  }
  if (x.kind === "zero" || y.kind === "zero") return { bits: zeroBits(format, negative), flags: 0 };
  return roundRational(format, product(exactValue(x), exactValue(y)), mode);
}

export function refDiv(format: Format, a: bigint, b: bigint, mode: Mode): Result {
  const x = decode(a, format);
  const y = decode(b, format);
  if (x.kind === "nan" || y.kind === "nan") return nanResult(format, x, y);
  const negative = x.negative !== y.negative;
  if (x.kind === "inf") {
    return y.kind === "inf" ? invalid(format) : { bits: infinityBits(format, negative), flags: 0 };
  }
  if (y.kind === "inf") return { bits: zeroBits(format, negative), flags: 0 };
  if (y.kind === "zero") {
    return x.kind === "zero" ? invalid(format) : { bits: infinityBits(format, negative), flags: DZ };
  }
  if (x.kind === "zero") return { bits: zeroBits(format, negative), flags: 0 };
  return roundRational(format, quotient(exactValue(x), exactValue(y)), mode);
}

export function refSqrt(format: Format, a: bigint, mode: Mode): Result {
  const x = decode(a, format);
  if (x.kind === "nan") return nanResult(format, x);
  if (x.kind === "zero") return { bits: a, flags: 0 };
  if (x.negative) return invalid(format);
  if (x.kind === "inf") return { bits: a, flags: 0 };
  return roundTo(format, false, squareRootMagnitude(x.value), mode);
}

/** (negateProduct ? -1 : 1) * a * b + (negateAddend ? -1 : 1) * c with one rounding. */
export function refFma(
  format: Format,
  a: bigint,
  b: bigint,
  c: bigint,
  mode: Mode,
  negateProduct: boolean,
  negateAddend: boolean,
): Result {
  const x = decode(a, format);
  const y = decode(b, format);
  const z0 = decode(c, format);
  const infinityTimesZero =
    (x.kind === "inf" && y.kind === "zero") || (x.kind === "zero" && y.kind === "inf");
  if (x.kind === "nan" || y.kind === "nan" || z0.kind === "nan") {
    const result = nanResult(format, x, y, z0);
    return { bits: result.bits, flags: result.flags | (infinityTimesZero ? NV : 0) };
  }
  if (infinityTimesZero) return invalid(format);
  const z = negate(z0, negateAddend);
  const productNegative = (x.negative !== y.negative) !== negateProduct;
  if (x.kind === "inf" || y.kind === "inf") {
    if (z.kind === "inf" && z.negative !== productNegative) return invalid(format);
    return { bits: infinityBits(format, productNegative), flags: 0 };
  }
  if (z.kind === "inf") return { bits: infinityBits(format, z.negative), flags: 0 };
  const exactProduct = product(exactValue(x), exactValue(y));
  const signedProduct = negateProduct ? { num: -exactProduct.num, den: exactProduct.den } : exactProduct;
  const productKind = x.kind === "zero" || y.kind === "zero" ? "zero" : "finite";
  return roundSum(
    format,
    sum(signedProduct, exactValue(z)),
    mode,
    zeroSumSign({ kind: productKind, negative: productNegative }, z),
  );
}

/** FMIN (max = false) / FMAX: returns the chosen operand's encoding unchanged. */
export function refMinMax(format: Format, a: bigint, b: bigint, max: boolean): Result {
  const x = decode(a, format);
  const y = decode(b, format);
  const flags = isSignalling(x) || isSignalling(y) ? NV : 0;
  if (x.kind === "nan" && y.kind === "nan") return { bits: canonicalNan(format), flags };
  if (x.kind === "nan") return { bits: b, flags };
  if (y.kind === "nan") return { bits: a, flags };
  let order = compareOrdered(x, y);
  if (order === 0 && x.kind === "zero" && y.kind === "zero")
    order = (x.negative ? -1 : 0) + (y.negative ? 1 : 0);
  const pickA = max ? order >= 0 : order <= 0;
  return { bits: pickA ? a : b, flags };
}

/** Numeric order of two non-NaN operands (zeros equal). */
function compareOrdered(x: Decoded, y: Decoded): number {
  const rank = (d: Decoded) => (d.kind === "inf" ? (d.negative ? -1 : 1) : 0);
  if (rank(x) !== rank(y)) return Math.sign(rank(x) - rank(y));
  if (x.kind === "inf") return 0;
  return compareRationals(exactValue(x), exactValue(y));
}

/** FEQ (quiet), FLT and FLE (signalling): the 0/1 result in bits. */
export function refCompare(format: Format, a: bigint, b: bigint, relation: "eq" | "lt" | "le"): Result {
  const x = decode(a, format);
  const y = decode(b, format);
  if (x.kind === "nan" || y.kind === "nan") {
    const signals = relation === "eq" ? isSignalling(x) || isSignalling(y) : true;
    return { bits: 0n, flags: signals ? NV : 0 };
  }
  const order = compareOrdered(x, y);
  const holds = relation === "eq" ? order === 0 : relation === "lt" ? order < 0 : order <= 0;
  return { bits: holds ? 1n : 0n, flags: 0 };
}

export function refClass(format: Format, a: bigint): bigint {
  const x = decode(a, format);
  switch (x.kind) {
    case "nan":
      return x.signalling ? 1n << 8n : 1n << 9n;
    case "inf":
      return x.negative ? 1n << 0n : 1n << 7n;
    case "zero":
      return x.negative ? 1n << 3n : 1n << 4n;
    default:
      if (x.subnormal) return x.negative ? 1n << 2n : 1n << 5n;
      return x.negative ? 1n << 1n : 1n << 6n;
  }
}

/** FSGNJ (0), FSGNJN (1), FSGNJX (2). */
export function refSignInject(format: Format, a: bigint, b: bigint, kind: number): bigint {
  const signMask = 1n << BigInt(format.width - 1);
  const signB = b & signMask;
  const sign = kind === 0 ? signB : kind === 1 ? signB ^ signMask : (a & signMask) ^ signB;
  return (a & ~signMask) | sign;
}

export interface IntegerType {
  readonly name: "W" | "WU" | "L" | "LU";
  readonly min: bigint;
  readonly max: bigint;
  readonly width: 32 | 64;
}

export const INTEGER_TYPES: readonly IntegerType[] = [
  { name: "W", min: -(2n ** 31n), max: 2n ** 31n - 1n, width: 32 },
  { name: "WU", min: 0n, max: 2n ** 32n - 1n, width: 32 },
  { name: "L", min: -(2n ** 63n), max: 2n ** 63n - 1n, width: 64 },
  { name: "LU", min: 0n, max: 2n ** 64n - 1n, width: 64 },
];

/** FCVT.<int>.<fmt>: the result as the 64-bit x register contents (W and WU sign-extended). */
export function refToInteger(format: Format, a: bigint, type: IntegerType, mode: Mode): Result {
  const x = decode(a, format);
  let value: bigint;
  let flags = 0;
  if (x.kind === "nan") {
    value = type.max;
    flags = NV;
  } else if (x.kind === "inf") {
    value = x.negative ? type.min : type.max;
    flags = NV;
  } else if (x.kind === "zero") {
    value = 0n;
  } else {
    const integer = roundToIntegerReference(x.value, mode);
    if (integer.value < type.min || integer.value > type.max) {
      value = integer.value < type.min ? type.min : type.max;
      flags = NV;
    } else {
      value = integer.value;
      flags = integer.inexact ? NX : 0;
    }
  }
  return { bits: BigInt.asUintN(64, BigInt.asIntN(type.width, value)), flags };
}

function roundToIntegerReference(value: Rational, mode: Mode): { value: bigint; inexact: boolean } {
  const negative = value.num < 0n;
  const { n, rest } = rationalMagnitude(value).quantize(0);
  if (rest === "zero") return { value: negative ? -n : n, inexact: false };
  const up =
    mode === Mode.RNE
      ? rest === "above" || (rest === "half" && (n & 1n) === 1n)
      : mode === Mode.RMM
        ? rest !== "below"
        : mode === Mode.RUP
          ? !negative
          : mode === Mode.RDN
            ? negative
            : false;
  const magnitude = up ? n + 1n : n;
  return { value: negative ? -magnitude : magnitude, inexact: true };
}

/** FCVT.<fmt>.<int> of the 64-bit x register contents. */
export function refFromInteger(format: Format, register: bigint, type: IntegerType, mode: Mode): Result {
  const truncated = BigInt.asUintN(type.width, register);
  const value = type.min < 0n ? BigInt.asIntN(type.width, truncated) : truncated;
  if (value === 0n) return { bits: 0n, flags: 0 };
  return roundRational(format, { num: value, den: 1n }, mode);
}

/** FCVT.S.D and FCVT.D.S. */
export function refConvertFormat(from: Format, to: Format, a: bigint, mode: Mode): Result {
  const x = decode(a, from);
  if (x.kind === "nan") return nanResult(to, x);
  if (x.kind === "inf") return { bits: infinityBits(to, x.negative), flags: 0 };
  if (x.kind === "zero") return { bits: zeroBits(to, x.negative), flags: 0 };
  return roundRational(to, x.value, mode);
}
