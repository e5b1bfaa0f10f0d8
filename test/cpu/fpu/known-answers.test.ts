import assert from "node:assert/strict";
import { describe, it } from "../../support/test.js";
import {
  FADD,
  FCMP,
  FCVT_FMT,
  FCVT_FROM_INT,
  FCVT_TO_INT,
  FDIV,
  FMINMAX,
  FMUL,
  FMV_X_OR_CLASS,
  FSQRT,
  FSUB,
  fused,
  MADD,
  NMADD,
  opFp,
  Rm,
} from "./encode.js";
import { box, execute, getF, getX, hex, registers, reset, setF, setX } from "./harness.js";

const NV = 16;
const DZ = 8;
const OF = 4;
const UF = 2;
const NX = 1;
const S = 0;
const D = 1;

/** Runs insn with f1..f3 = fOperands (x1 = xOperand) and returns f4, x4 and the flags. */
function run(insn: number, fOperands: bigint[], xOperand?: bigint) {
  reset();
  fOperands.forEach((value, i) => {
    setF(i + 1, value);
  });
  if (xOperand !== undefined) setX(1, xOperand);
  assert.equal(execute(insn), true);
  return { f: getF(4), x: getX(4), flags: registers.fcsr[0] };
}

function expectF(insn: number, fOperands: bigint[], bits: bigint, flags: number, xOperand?: bigint) {
  const { f, flags: raised } = run(insn, fOperands, xOperand);
  assert.equal(`${hex(f)} flags=${raised}`, `${hex(bits)} flags=${flags}`);
}

function expectX(insn: number, fOperands: bigint[], bits: bigint, flags: number) {
  const { x, flags: raised } = run(insn, fOperands);
  assert.equal(`${hex(x)} flags=${raised}`, `${hex(bits)} flags=${flags}`);
}

const ONE_D = 0x3ff0000000000000n;
const THREE_D = 0x4008000000000000n;
const ONE_S = box(0x3f800000n);
const THREE_S = box(0x40400000n);

describe("known answers", () => {
  it("1/3 and -1/3 in every rounding mode", () => {
    const third = [0x3fd5555555555555n, 0x3fd5555555555555n, 0x3fd5555555555555n, 0x3fd5555555555556n];
    third.push(0x3fd5555555555555n);
    third.forEach((bits, rm) => {
      expectF(opFp(FDIV, D, 4, rm, 1, 2), [ONE_D, THREE_D], bits, NX);
    });
    const thirdS = [0x3eaaaaabn, 0x3eaaaaaan, 0x3eaaaaaan, 0x3eaaaaabn, 0x3eaaaaabn];
    thirdS.forEach((bits, rm) => {
      expectF(opFp(FDIV, S, 4, rm, 1, 2), [ONE_S, THREE_S], box(bits), NX);
    });
    const minusOne = 0xbff0000000000000n;
    expectF(opFp(FDIV, D, 4, Rm.RDN, 1, 2), [minusOne, THREE_D], 0xbfd5555555555556n, NX);
    expectF(opFp(FDIV, D, 4, Rm.RUP, 1, 2), [minusOne, THREE_D], 0xbfd5555555555555n, NX);
    expectF(opFp(FDIV, D, 4, Rm.RTZ, 1, 2), [minusOne, THREE_D], 0xbfd5555555555555n, NX);
  });

  it("takes the dynamic rounding mode from frm", () => {
    reset(0, Rm.RUP);
    setF(1, ONE_D);
    setF(2, THREE_D);
    assert.equal(execute(opFp(FDIV, D, 4, Rm.DYN, 1, 2)), true);
    assert.equal(hex(getF(4)), hex(0x3fd5555555555556n));
  });

  it("FCVT.W.S and friends saturate with NV", () => {
    const cvtW = (rm: number) => opFp(FCVT_TO_INT, S, 4, rm, 1, 0);
    expectX(cvtW(Rm.RNE), [box(0x4f000000n)], 0x7fffffffn, NV); // 2^31
    expectX(cvtW(Rm.RNE), [box(0xcf000000n)], 0xffffffff80000000n, 0); // -2^31
    expectX(cvtW(Rm.RNE), [box(0x7fc00000n)], 0x7fffffffn, NV); // NaN
    expectX(cvtW(Rm.RNE), [box(0xff800000n)], 0xffffffff80000000n, NV); // -inf
    expectX(cvtW(Rm.RNE), [box(0x7f800000n)], 0x7fffffffn, NV); // +inf
    expectX(cvtW(Rm.RNE), [0x000000003f800000n], 0x7fffffffn, NV); // unboxed: canonical NaN
    const cvtWU = (rm: number) => opFp(FCVT_TO_INT, S, 4, rm, 1, 1);
    expectX(cvtWU(Rm.RNE), [box(0xbf800000n)], 0n, NV); // -1.0
    expectX(cvtWU(Rm.RTZ), [box(0xbf000000n)], 0n, NX); // -0.5 truncates to 0: in range
    expectX(cvtWU(Rm.RNE), [box(0x4f800000n)], 0xffffffffffffffffn, NV); // 2^32
    expectX(cvtWU(Rm.RNE), [box(0x4f7fffffn)], 0xffffffffffffff00n, 0); // 2^32 - 256, sign-extended
    expectX(opFp(FCVT_TO_INT, D, 4, Rm.RNE, 1, 2), [0x43e0000000000000n], 0x7fffffffffffffffn, NV); // 2^63
    expectX(opFp(FCVT_TO_INT, D, 4, Rm.RNE, 1, 2), [0xc3e0000000000000n], 0x8000000000000000n, 0); // -2^63
    expectX(opFp(FCVT_TO_INT, D, 4, Rm.RNE, 1, 3), [0x7ff8000000000000n], 0xffffffffffffffffn, NV);
    expectX(opFp(FCVT_TO_INT, D, 4, Rm.RNE, 1, 3), [0x43efffffffffffffn], 0xfffffffffffff800n, 0);
  });

  it("FCVT.W.D rounds 2.5 and -2.5 per mode", () => {
    const twoAndHalf = 0x4004000000000000n;
    const minusTwoAndHalf = 0xc004000000000000n;
    const positive = [2n, 2n, 2n, 3n, 3n];
    const negative = [-2n, -2n, -3n, -2n, -3n];
    for (let rm = 0; rm < 5; rm++) {
      expectX(opFp(FCVT_TO_INT, D, 4, rm, 1, 0), [twoAndHalf], positive[rm], NX);
      expectX(opFp(FCVT_TO_INT, D, 4, rm, 1, 0), [minusTwoAndHalf], BigInt.asUintN(64, negative[rm]), NX);
    }
  });

  it("integer to float conversions round once", () => {
    const cvt = (fmt: 0 | 1, type: number, rm: number) => opFp(FCVT_FROM_INT, fmt, 4, rm, 1, type);
    expectF(cvt(S, 2, Rm.RNE), [], box(0x5f000000n), NX, 0x7fffffffffffffffn); // 2^63 - 1
    expectF(cvt(D, 3, Rm.RTZ), [], 0x43efffffffffffffn, NX, 0xffffffffffffffffn); // 2^64 - 1
    expectF(cvt(D, 3, Rm.RNE), [], 0x43f0000000000000n, NX, 0xffffffffffffffffn);
    expectF(cvt(D, 2, Rm.RNE), [], 0xc3e0000000000000n, 0, 0x8000000000000000n); // -2^63
    expectF(cvt(D, 0, Rm.RNE), [], 0xc1e0000000000000n, 0, 0x1234567880000000n); // W ignores the upper word
    expectF(cvt(D, 2, Rm.RNE), [], 0x4340000000000000n, NX, 0x0020000000000001n); // 2^53 + 1: tie to even
    expectF(cvt(D, 2, Rm.RMM), [], 0x4340000000000001n, NX, 0x0020000000000001n);
  });

  it("FMA rounds once where a*b+c in two steps would not", () => {
    // (1 + 2^-52)^2 - (1 + 2^-51) = 2^-104, while the rounded product minus c is 0.
    expectF(
      fused(MADD, D, 4, Rm.RNE, 1, 2, 3),
      [0x3ff0000000000001n, 0x3ff0000000000001n, 0xbff0000000000002n],
      0x3970000000000000n,
      0,
    );
    // 1 + a*b with a*b = 2^-53 (1 + 2^-78): just above the halfway point, which rounding a*b first loses.
    const a = 0x3ff0000004000000n; // 1 + 2^-26
    const b = 0x3c9ffffff8000002n; // (1 - 2^-26 + 2^-52) * 2^-53
    expectF(fused(MADD, D, 4, Rm.RNE, 1, 2, 3), [a, b, ONE_D], 0x3ff0000000000001n, NX);
    // Single: (1 + 2^-12)^2 + 2^-60 is above a float halfway point that double rounding would hit.
    const s = box(0x3f800800n); // 1 + 2^-12
    expectF(fused(MADD, S, 4, Rm.RNE, 1, 2, 3), [s, s, box(0x21800000n)], box(0x3f801001n), NX);
  });

  it("FNMADD negates before its single rounding", () => {
    // -(1 * 1) - (-1) is an exact zero: +0 in RNE, where negating 1*1 + -1 would give -0.
    expectF(fused(NMADD, D, 4, Rm.RNE, 1, 2, 3), [ONE_D, ONE_D, 0xbff0000000000000n], 0n, 0);
    expectF(fused(NMADD, D, 4, Rm.RDN, 1, 2, 3), [ONE_D, ONE_D, 0xbff0000000000000n], 0x8000000000000000n, 0);
    // inf * 0 is invalid even with a quiet NaN addend.
    expectF(
      fused(MADD, D, 4, Rm.RNE, 1, 2, 3),
      [0x7ff0000000000000n, 0n, 0x7ff8000000000000n],
      0x7ff8000000000000n,
      NV,
    );
  });

  it("signed zeros of sums, square roots and min/max", () => {
    const minusZero = 0x8000000000000000n;
    expectF(opFp(FSUB, D, 4, Rm.RNE, 1, 2), [ONE_D, ONE_D], 0n, 0);
    expectF(opFp(FSUB, D, 4, Rm.RDN, 1, 2), [ONE_D, ONE_D], minusZero, 0);
    expectF(opFp(FADD, D, 4, Rm.RNE, 1, 2), [minusZero, minusZero], minusZero, 0);
    expectF(opFp(FADD, D, 4, Rm.RDN, 1, 2), [0n, 0n], 0n, 0);
    expectF(opFp(FSQRT, D, 4, Rm.RNE, 1, 0), [minusZero], minusZero, 0);
    expectF(opFp(FMINMAX, D, 4, 0, 1, 2), [0n, minusZero], minusZero, 0);
    expectF(opFp(FMINMAX, D, 4, 1, 1, 2), [minusZero, 0n], 0n, 0);
    expectF(opFp(FMINMAX, S, 4, 0, 1, 2), [box(0x80000000n), box(0n)], box(0x80000000n), 0);
  });

  it("NaN handling of min/max and comparisons", () => {
    const qnan = 0x7ff8000000000123n;
    const snan = 0x7ff0000000000001n;
    expectF(opFp(FMINMAX, D, 4, 0, 1, 2), [qnan, ONE_D], ONE_D, 0);
    expectF(opFp(FMINMAX, D, 4, 1, 1, 2), [ONE_D, snan], ONE_D, NV);
    expectF(opFp(FMINMAX, D, 4, 0, 1, 2), [qnan, qnan], 0x7ff8000000000000n, 0);
    expectX(opFp(FCMP, D, 4, 2, 1, 2), [qnan, ONE_D], 0n, 0); // FEQ is quiet
    expectX(opFp(FCMP, D, 4, 2, 1, 2), [snan, ONE_D], 0n, NV);
    expectX(opFp(FCMP, D, 4, 1, 1, 2), [qnan, ONE_D], 0n, NV); // FLT signals
    expectX(opFp(FCMP, D, 4, 0, 1, 2), [0x8000000000000000n, 0n], 1n, 0); // -0 <= +0
    expectX(opFp(FCMP, D, 4, 1, 1, 2), [0x8000000000000000n, 0n], 0n, 0); // -0 < +0 is false
  });

  it("special cases of arithmetic", () => {
    expectF(opFp(FDIV, D, 4, Rm.RNE, 1, 2), [ONE_D, 0n], 0x7ff0000000000000n, DZ);
    expectF(opFp(FDIV, D, 4, Rm.RNE, 1, 2), [0n, 0n], 0x7ff8000000000000n, NV);
    expectF(opFp(FSQRT, S, 4, Rm.RNE, 1, 0), [box(0xbf800000n)], box(0x7fc00000n), NV);
    expectF(
      opFp(FADD, D, 4, Rm.RNE, 1, 2),
      [0x7ff0000000000000n, 0xfff0000000000000n],
      0x7ff8000000000000n,
      NV,
    );
    expectF(opFp(FMUL, S, 4, Rm.RNE, 1, 2), [box(0x7f800000n), box(0n)], box(0x7fc00000n), NV);
    // Payloads are not propagated: any NaN result is canonical.
    expectF(opFp(FADD, S, 4, Rm.RNE, 1, 2), [box(0xffc12345n), ONE_S], box(0x7fc00000n), 0);
    expectF(opFp(FADD, S, 4, Rm.RNE, 1, 2), [box(0x7f812345n), ONE_S], box(0x7fc00000n), NV);
    // An improperly boxed single is the canonical (quiet) NaN.
    expectF(opFp(FADD, S, 4, Rm.RNE, 1, 2), [0x3f800000n, ONE_S], box(0x7fc00000n), 0);
  });

  it("overflow and underflow", () => {
    const max = 0x7fefffffffffffffn;
    expectF(opFp(FADD, D, 4, Rm.RNE, 1, 2), [max, max], 0x7ff0000000000000n, OF | NX);
    expectF(opFp(FADD, D, 4, Rm.RTZ, 1, 2), [max, max], max, OF | NX);
    // max + 3/4 ulp: RNE overflows, but RTZ's unbounded result is max itself, so only NX.
    expectF(opFp(FADD, D, 4, Rm.RTZ, 1, 2), [max, 0x7c98000000000000n], max, NX);
    expectF(opFp(FADD, D, 4, Rm.RNE, 1, 2), [max, 0x7c98000000000000n], 0x7ff0000000000000n, OF | NX);
    const maxS = box(0x7f7fffffn);
    const two = box(0x40000000n);
    expectF(opFp(FMUL, S, 4, Rm.RDN, 1, 2), [maxS, two], maxS, OF | NX);
    expectF(opFp(FMUL, S, 4, Rm.RDN, 1, 2), [box(0xff7fffffn), two], box(0xff800000n), OF | NX);
    // 2^-126 (1 - 2^-25) to single: RNE rounds up to the smallest normal and, after rounding, is not
    // tiny (no UF); RTZ gives the largest subnormal, tiny and inexact.
    const belowMinNormal = 0x380ffffff0000000n;
    expectF(opFp(FCVT_FMT, S, 4, Rm.RNE, 1, 1), [belowMinNormal], box(0x00800000n), NX);
    expectF(opFp(FCVT_FMT, S, 4, Rm.RTZ, 1, 1), [belowMinNormal], box(0x007fffffn), UF | NX);
    // The smallest subnormal squared: 0 or the smallest subnormal, always UF | NX.
    expectF(opFp(FMUL, D, 4, Rm.RNE, 1, 2), [1n, 1n], 0n, UF | NX);
    expectF(opFp(FMUL, D, 4, Rm.RUP, 1, 2), [1n, 1n], 1n, UF | NX);
    // Exact subnormal results raise nothing.
    expectF(opFp(FSUB, D, 4, Rm.RNE, 1, 2), [0x0010000000000000n, 0x000fffffffffffffn], 1n, 0);
  });

  it("FCLASS of every class", () => {
    const doubles: [bigint, bigint][] = [
      [0xfff0000000000000n, 1n << 0n],
      [0xbff0000000000000n, 1n << 1n],
      [0x800fffffffffffffn, 1n << 2n],
      [0x8000000000000000n, 1n << 3n],
      [0x0000000000000000n, 1n << 4n],
      [0x0000000000000001n, 1n << 5n],
      [0x3ff0000000000000n, 1n << 6n],
      [0x7ff0000000000000n, 1n << 7n],
      [0x7ff0000000000001n, 1n << 8n],
      [0x7ff8000000000000n, 1n << 9n],
    ];
    for (const [bits, mask] of doubles) expectX(opFp(FMV_X_OR_CLASS, D, 4, 1, 1, 0), [bits], mask, 0);
    const singles: [bigint, bigint][] = [
      [0xff800000n, 1n << 0n],
      [0xbf800000n, 1n << 1n],
      [0x807fffffn, 1n << 2n],
      [0x80000000n, 1n << 3n],
      [0x00000000n, 1n << 4n],
      [0x00000001n, 1n << 5n],
      [0x3f800000n, 1n << 6n],
      [0x7f800000n, 1n << 7n],
      [0x7f800001n, 1n << 8n],
      [0x7fc00000n, 1n << 9n],
    ];
    for (const [bits, mask] of singles) expectX(opFp(FMV_X_OR_CLASS, S, 4, 1, 1, 0), [box(bits)], mask, 0);
    expectX(opFp(FMV_X_OR_CLASS, S, 4, 1, 1, 0), [0xff800000n], 1n << 9n, 0); // unboxed: quiet NaN
  });

  it("works when the destination is also a source", () => {
    reset();
    setF(1, ONE_D);
    assert.equal(execute(opFp(FADD, D, 1, Rm.RNE, 1, 1)), true);
    assert.equal(hex(getF(1)), hex(0x4000000000000000n));
    reset();
    setF(1, 0x8000000000000000n | ONE_D);
    setF(2, ONE_D);
    assert.equal(execute(fused(MADD, D, 2, Rm.RNE, 1, 2, 2)), true); // -1 * 1 + 1
    assert.equal(hex(getF(2)), hex(0n));
  });

  it("only ORs into fflags", () => {
    reset(NV | DZ);
    setF(1, ONE_D);
    setF(2, THREE_D);
    assert.equal(execute(opFp(FDIV, D, 4, Rm.RNE, 1, 2)), true);
    assert.equal(registers.fcsr[0], NV | DZ | NX);
    assert.equal(registers.fcsr[1], 0);
  });
});
