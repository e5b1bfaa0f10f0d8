/**
 * fast-check arbitraries of operand encodings that reach the hard cases of floating-point rounding:
 * subnormals, binade and overflow boundaries, short significands (exact halfway cases), near
 * cancellation, signed zeros, infinities and both kinds of NaN.
 */

import fc from "fast-check";
import type { Format } from "./exact.js";

const mask = (bits: number) => (1n << BigInt(bits)) - 1n;

function maxExponentField(format: Format): number {
  return (1 << format.exponentBits) - 1;
}

function assemble(format: Format, negative: boolean, exponentField: number, fraction: bigint): bigint {
  const sign = negative ? 1n << BigInt(format.width - 1) : 0n;
  return sign | (BigInt(exponentField) << BigInt(format.precision - 1)) | fraction;
}

function exponentField(format: Format): fc.Arbitrary<number> {
  const max = maxExponentField(format);
  const b = format.bias;
  const p = format.precision;
  const interesting = [
    0,
    1,
    2,
    3,
    p - 1,
    p,
    p + 1,
    b - 2,
    b - 1,
    b,
    b + 1,
    b + 2,
    b + p,
    max - p - 1,
    max - 2,
    max - 1,
  ];
  return fc.oneof(fc.constantFrom(...interesting), fc.integer({ min: 0, max }));
}

/** Fraction fields, favouring few significant bits (exact results, exact ties) and extreme patterns. */
export function fractionField(format: Format): fc.Arbitrary<bigint> {
  const bits = format.precision - 1;
  const all = mask(bits);
  const half = 1n << BigInt(bits - 1);
  return fc.oneof(
    fc.constantFrom(0n, 1n, 2n, all, all - 1n, half, half + 1n, half - 1n),
    fc.bigInt({ min: 0n, max: all }),
    fc
      .tuple(fc.bigInt({ min: 0n, max: all }), fc.integer({ min: 0, max: bits }))
      .map(([fraction, dropped]) => (fraction >> BigInt(dropped)) << BigInt(dropped)),
    fc.bigInt({ min: 0n, max: all }).map((fraction) => all ^ (fraction & 0xffn)),
  );
}

function specials(format: Format): fc.Arbitrary<bigint> {
  const max = maxExponentField(format);
  const all = mask(format.precision - 1);
  const values: bigint[] = [];
  for (const negative of [false, true]) {
    values.push(
      assemble(format, negative, 0, 0n),
      assemble(format, negative, 0, 1n),
      assemble(format, negative, 0, all),
      assemble(format, negative, 1, 0n),
      assemble(format, negative, format.bias, 0n),
      assemble(format, negative, max - 1, all),
      assemble(format, negative, max, 0n),
    );
  }
  return fc.constantFrom(...values);
}

function nans(format: Format): fc.Arbitrary<bigint> {
  const bits = format.precision - 1;
  const quietBit = 1n << BigInt(bits - 1);
  return fc
    .tuple(fc.boolean(), fc.boolean(), fc.bigInt({ min: 1n, max: quietBit - 1n }))
    .map(([negative, quiet, payload]) =>
      assemble(format, negative, maxExponentField(format), quiet ? quietBit | (payload & mask(8)) : payload),
    );
}

/** Any encoding of the format, with the interesting ones well represented. */
export function floatBits(format: Format): fc.Arbitrary<bigint> {
  const structured = fc
    .tuple(fc.boolean(), exponentField(format), fractionField(format))
    .map(([negative, exponent, fraction]) => assemble(format, negative, exponent, fraction));
  return fc.oneof(
    { arbitrary: structured, weight: 6 },
    { arbitrary: fc.bigInt({ min: 0n, max: mask(format.width) }), weight: 3 },
    { arbitrary: specials(format), weight: 1 },
    { arbitrary: nans(format), weight: 1 },
  );
}

/** Finite encodings whose unbiased exponent lies in [low, high]. */
export function floatBitsWithExponent(format: Format, low: number, high: number): fc.Arbitrary<bigint> {
  return fc
    .tuple(fc.boolean(), fc.integer({ min: low, max: high }), fractionField(format))
    .map(([negative, exponent, fraction]) => {
      const field = Math.min(Math.max(exponent + format.bias, 0), maxExponentField(format) - 1);
      return assemble(format, negative, field, fraction);
    });
}

/** An encoding of similar magnitude to a (possibly equal, negated, or a few ulps away). */
export function near(format: Format, a: bigint, exponentSpread = format.precision + 3): fc.Arbitrary<bigint> {
  const max = maxExponentField(format);
  const sign = 1n << BigInt(format.width - 1);
  const exponent = Number((a >> BigInt(format.precision - 1)) & mask(format.exponentBits));
  const nudged = fc.tuple(fc.integer({ min: -3, max: 3 }), fc.boolean()).map(([delta, flip]) => {
    const moved = (a & ~sign) + BigInt(delta);
    const magnitude = moved < 0n ? 0n : moved > mask(format.width - 1) ? mask(format.width - 1) : moved;
    return magnitude | ((a & sign) ^ (flip ? sign : 0n));
  });
  const rescaled = fc
    .tuple(fc.boolean(), fc.integer({ min: -exponentSpread, max: exponentSpread }), fractionField(format))
    .map(([negative, delta, fraction]) =>
      assemble(format, negative, Math.min(Math.max(exponent + delta, 0), max - 1), fraction),
    );
  return fc.oneof(nudged, rescaled);
}

/**
 * Two operands: independent; the second near the first (cancellation, alignment, ties); or the second
 * chosen so that the sum, product or quotient lands next to a boundary of the format.
 */
export function operandPair(format: Format): fc.Arbitrary<[bigint, bigint]> {
  const bits = floatBits(format);
  return fc.oneof(
    fc.tuple(bits, bits),
    fc
      .tuple(bits, fc.boolean())
      .chain(([a, swap]) => near(format, a).map((b): [bigint, bigint] => (swap ? [b, a] : [a, b]))),
    boundaryPair(format),
    overflowEdgeSum(format),
  );
}

/** A number in the top binade and one around its ulp: sums just past the largest finite number. */
function overflowEdgeSum(format: Format): fc.Arbitrary<[bigint, bigint]> {
  const top = maxExponentField(format) - 1;
  return fc
    .tuple(
      fc.boolean(),
      fractionField(format),
      fc.boolean(),
      fc.integer({ min: -2, max: 1 }),
      fractionField(format),
    )
    .map(([negativeA, fractionA, negativeB, offset, fractionB]): [bigint, bigint] => [
      assemble(format, negativeA, top, fractionA),
      assemble(format, negativeB, top - format.precision + 1 + offset, fractionB),
    ]);
}

/**
 * Results just around the smallest normal (where tininess after rounding differs from before), the
 * largest finite number and 1: b is T/a, a/T or T - a, rounded to the format and nudged a few ulps.
 */
function boundaryPair(format: Format): fc.Arbitrary<[bigint, bigint]> {
  const minNormal = 2 ** format.minExponent;
  const maxFinite = (2 - 2 ** (1 - format.precision)) * 2 ** format.maxExponent;
  const targets = [minNormal, minNormal * (1 - 2 ** -format.precision), maxFinite, 1, minNormal / 2];
  const operation = fc.constantFrom<(a: number, t: number) => number>(
    (a, t) => t / a,
    (a, t) => a / t,
    (a, t) => t - a,
  );
  return fc
    .tuple(
      floatBits(format),
      fc.constantFrom(...targets),
      operation,
      fc.integer({ min: -3, max: 3 }),
      fc.boolean(),
    )
    .map(([a, target, toward, nudge, negative]): [bigint, bigint] => {
      const exact = toward(toNumber(format, a), negative ? -target : target);
      const b = fromNumber(format, format.width === 32 ? Math.fround(exact) : exact);
      const nudged = b + BigInt(nudge);
      return [a, nudged >= 0n && nudged <= mask(format.width) ? nudged : b];
    });
}

const view = new DataView(new ArrayBuffer(8));

export function toNumber(format: Format, bits: bigint): number {
  if (format.width === 32) {
    view.setUint32(0, Number(bits));
    return view.getFloat32(0);
  }
  view.setBigUint64(0, bits);
  return view.getFloat64(0);
}

export function fromNumber(format: Format, value: number): bigint {
  if (format.width === 32) {
    view.setFloat32(0, value);
    return BigInt(view.getUint32(0));
  }
  view.setFloat64(0, value);
  return view.getBigUint64(0);
}

/**
 * Three FMA operands: independent; with the addend close to minus the product (massive cancellation)
 * or a chosen number of binades away from it (alignment and sticky cases); or with the addend placed
 * so that one part of the exact product lands on a halfway point of the other's grid, the cases where
 * rounding the sum in two steps goes wrong.
 */
export function operandTriple(format: Format): fc.Arbitrary<[bigint, bigint, bigint]> {
  const bits = floatBits(format);
  const spread = format.width === 32 ? 60 : 130;
  const related = fc.tuple(bits, bits).chain(([a, b]) => {
    const approximate = roundedProduct(format, a, b);
    if (!Number.isFinite(approximate) || approximate === 0) {
      return bits.map((c): [bigint, bigint, bigint] => [a, b, c]);
    }
    const productBits = fromNumber(format, -approximate);
    return near(format, productBits, spread).map((c): [bigint, bigint, bigint] => [a, b, c]);
  });
  return fc.oneof(
    { arbitrary: fc.tuple(bits, bits, bits), weight: 1 },
    { arbitrary: related, weight: 2 },
    { arbitrary: halfwayAddends(format), weight: 2 },
  );
}

function roundedProduct(format: Format, a: bigint, b: bigint): number {
  const approximate = toNumber(format, a) * toNumber(format, b);
  return format.width === 32 ? Math.fround(approximate) : approximate;
}

/**
 * a * b with b often close to 1/a or 2/a (a product just off a power of two), and c a short
 * significand about p binades above or below the product, so that the product's low part, or c,
 * sits at or near half an ulp of the larger term.
 */
function halfwayAddends(format: Format): fc.Arbitrary<[bigint, bigint, bigint]> {
  const p = format.precision;
  const finite = floatBitsWithExponent(format, -20, 20);
  const reciprocal = fc
    .tuple(finite, fc.constantFrom(1, 2), fc.integer({ min: -2, max: 2 }))
    .map(([a, numerator, nudge]): [bigint, bigint] => {
      const inverse =
        format.width === 32 ? Math.fround(numerator / toNumber(format, a)) : numerator / toNumber(format, a);
      return [a, fromNumber(format, inverse) + BigInt(nudge)];
    });
  const offsets = fc.constantFrom(-p - 2, -p - 1, -p, -p + 1, p - 1, p, p + 1, p + 2);
  return fc
    .tuple(fc.oneof(fc.tuple(finite, finite), reciprocal), offsets, fc.boolean(), fractionField(format))
    .map(([[a, b], offset, negative, fraction]): [bigint, bigint, bigint] => {
      const approximate = roundedProduct(format, a, b);
      if (!Number.isFinite(approximate) || approximate === 0) return [a, b, a];
      const exponent = Math.floor(Math.log2(Math.abs(approximate))) + offset;
      const field = Math.min(Math.max(exponent + format.bias, 0), maxExponentField(format) - 1);
      const short = (fraction >> BigInt(p - 8)) << BigInt(p - 8);
      return [a, b, assemble(format, negative, field, short)];
    });
}

/** 64-bit integer register contents around the edges of every integer type and of 2^p. */
export function integerRegister(): fc.Arbitrary<bigint> {
  const edges = [0n, 1n, 2n ** 24n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 54n, 2n ** 63n, 2n ** 64n];
  const nearEdge = fc
    .tuple(fc.constantFrom(...edges), fc.integer({ min: -5, max: 5 }), fc.boolean())
    .map(([edge, delta, negative]) => BigInt.asUintN(64, (negative ? -1n : 1n) * (edge + BigInt(delta))));
  const shortPattern = fc
    .tuple(
      fc.bigInt({ min: 0n, max: mask(64) }),
      fc.integer({ min: 0, max: 63 }),
      fc.integer({ min: 0, max: 63 }),
    )
    .map(([value, right, left]) => BigInt.asUintN(64, (value >> BigInt(right)) << BigInt(left)));
  return fc.oneof(nearEdge, shortPattern, fc.bigInt({ min: 0n, max: mask(64) }));
}
