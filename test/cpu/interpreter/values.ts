/**
 * fast-check arbitraries for interpreter tests: 64-bit operands biased towards the values where integer
 * semantics go wrong (sign boundaries, 32-bit boundaries, all ones), registers biased towards x0 and
 * aliasing, and immediates biased towards their extremes.
 */
import fc from "fast-check";

const P31 = 1n << 31n;
const P32 = 1n << 32n;
const P63 = 1n << 63n;

/** Interesting 64-bit values (signed notation; callers reduce them mod 2^64). */
export const EDGES64: readonly bigint[] = [
  0n,
  1n,
  2n,
  -1n,
  -2n,
  -P63,
  -P63 + 1n,
  P63 - 1n,
  P63 - 2n,
  P31,
  P31 - 1n,
  P31 + 1n,
  -P31,
  -P31 - 1n,
  -P31 + 1n,
  P32 - 1n,
  P32,
  P32 + 1n,
  -P32,
  0xffff_ffff_0000_0000n,
  0x8000_0000_8000_0000n,
  0x0000_0001_8000_0000n,
  0x5555_5555_5555_5555n,
  31n,
  32n,
  63n,
  64n,
];

/** Interesting low words for W-form instructions. */
export const EDGES32: readonly bigint[] = [
  0n,
  1n,
  2n,
  P31 - 1n,
  P31,
  P31 + 1n,
  P32 - 1n,
  P32 - 2n,
  31n,
  32n,
  0x8000_ffffn,
];

const random64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

/** 64-bit values as unsigned BigInts in [0, 2^64). */
export const value64: fc.Arbitrary<bigint> = fc
  .oneof(
    { weight: 4, arbitrary: fc.constantFrom(...EDGES64) },
    { weight: 4, arbitrary: random64 },
    { weight: 1, arbitrary: fc.bigInt({ min: -70n, max: 70n }) },
    {
      // Random high word over an interesting low word: the W forms must ignore the high half.
      weight: 2,
      arbitrary: fc
        .tuple(fc.bigInt({ min: 0n, max: P32 - 1n }), fc.constantFrom(...EDGES32))
        .map(([hi, lo]) => (hi << 32n) | lo),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...EDGES64), fc.bigInt({ min: -3n, max: 3n }))
        .map(([e, d]) => e + d),
    },
  )
  .map((v) => BigInt.asUintN(64, v));

/** A register number, often x0, x1 or x31. */
export const register: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 31 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 31) },
);

/** (rd, rs1, rs2) with every aliasing pattern well represented. */
export const registers3: fc.Arbitrary<{ rd: number; rs1: number; rs2: number }> = fc
  .tuple(
    register,
    register,
    register,
    fc.constantFrom("free", "free", "rs1=rs2", "rd=rs1", "rd=rs2", "all", "rd=0") as fc.Arbitrary<string>,
  )
  .map(([rd, rs1, rs2, pattern]) => {
    switch (pattern) {
      case "rs1=rs2":
        return { rd, rs1, rs2: rs1 };
      case "rd=rs1":
        return { rd: rs1, rs1, rs2 };
      case "rd=rs2":
        return { rd: rs2, rs1, rs2 };
      case "all":
        return { rd, rs1: rd, rs2: rd };
      case "rd=0":
        return { rd: 0, rs1, rs2 };
      default:
        return { rd, rs1, rs2 };
    }
  });

/** A signed immediate of `bits` bits, biased towards 0, ±1 and both extremes. */
export function signedImm(bits: number): fc.Arbitrary<number> {
  const max = 2 ** (bits - 1) - 1;
  const min = -(2 ** (bits - 1));
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min, max }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, -1, max, min, max - 1, min + 1) },
  );
}

/** fast-check parameters used throughout. */
export const runs = (numRuns: number) => ({ numRuns });
