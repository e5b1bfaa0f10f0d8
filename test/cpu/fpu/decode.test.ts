import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import {
  FADD,
  FCMP,
  FCVT_FMT,
  FCVT_FROM_INT,
  FCVT_TO_INT,
  FMINMAX,
  FMV_FROM_X,
  FMV_X_OR_CLASS,
  FSGNJ,
  FSQRT,
  fused,
  MADD,
  MSUB,
  NMADD,
  NMSUB,
  OP_FP,
  opFp,
  Rm,
} from "./encode.js";
import { execute, registers, reset, setF, setX, snapshot } from "./harness.js";

/** Fills the register file with arbitrary contents so that any write would show. */
function scramble(frm: number): void {
  reset(0b10101, frm);
  for (let i = 0; i < 32; i++) {
    setF(i, BigInt(i) * 0x0123456789abcdefn);
    setX(i, BigInt(i) * 0x0fedcba987654321n);
  }
}

function expectIllegal(insn: number, frm = 0): void {
  scramble(frm);
  const before = snapshot();
  assert.equal(execute(insn), false, `0x${insn.toString(16)} should be illegal (frm=${frm})`);
  assert.equal(snapshot(), before, `0x${insn.toString(16)} modified state`);
}

function expectLegal(insn: number, frm = 0): void {
  scramble(frm);
  assert.equal(execute(insn), true, `0x${insn.toString(16)} should be legal (frm=${frm})`);
}

describe("illegal encodings leave everything untouched", () => {
  it("reserved static rounding modes", () => {
    for (const rm of [5, 6]) {
      expectIllegal(opFp(FADD, 1, 4, rm, 1, 2));
      expectIllegal(opFp(FSQRT, 0, 4, rm, 1, 0));
      expectIllegal(fused(MADD, 1, 4, rm, 1, 2, 3));
      expectIllegal(opFp(FCVT_TO_INT, 0, 4, rm, 1, 0));
      expectIllegal(opFp(FCVT_FROM_INT, 1, 4, rm, 1, 2));
      // Exact conversions still have an rm field, which is checked (as Spike does).
      expectIllegal(opFp(FCVT_FMT, 1, 4, rm, 1, 0));
    }
  });

  it("dynamic rounding with a reserved frm", () => {
    for (const frm of [5, 6, 7]) {
      expectIllegal(opFp(FADD, 0, 4, Rm.DYN, 1, 2), frm);
      expectIllegal(fused(NMADD, 0, 4, Rm.DYN, 1, 2, 3), frm);
      expectIllegal(opFp(FCVT_FROM_INT, 0, 4, Rm.DYN, 1, 3), frm);
    }
  });

  it("half and quad formats", () => {
    for (const fmt of [2, 3] as const) {
      expectIllegal(opFp(FADD, fmt, 4, 0, 1, 2));
      expectIllegal(fused(MADD, fmt, 4, 0, 1, 2, 3));
      expectIllegal(opFp(FSGNJ, fmt, 4, 0, 1, 2));
      expectIllegal(opFp(FMV_FROM_X, fmt, 4, 0, 1, 0));
    }
  });

  it("unused funct3, rs2 and funct5 values", () => {
    expectIllegal(opFp(FSQRT, 1, 4, 0, 1, 1));
    expectIllegal(opFp(FSGNJ, 0, 4, 3, 1, 2));
    expectIllegal(opFp(FMINMAX, 1, 4, 2, 1, 2));
    expectIllegal(opFp(FCMP, 0, 4, 3, 1, 2));
    expectIllegal(opFp(FMV_X_OR_CLASS, 0, 4, 2, 1, 0));
    expectIllegal(opFp(FMV_X_OR_CLASS, 1, 4, 0, 1, 1));
    expectIllegal(opFp(FMV_FROM_X, 0, 4, 1, 1, 0));
    expectIllegal(opFp(FMV_FROM_X, 1, 4, 0, 1, 2));
    expectIllegal(opFp(FCVT_FMT, 0, 4, 0, 1, 0)); // FCVT.S.S
    expectIllegal(opFp(FCVT_FMT, 1, 4, 0, 1, 1)); // FCVT.D.D
    expectIllegal(opFp(FCVT_FMT, 0, 4, 0, 1, 2)); // FCVT.S.H
    expectIllegal(opFp(FCVT_TO_INT, 0, 4, 0, 1, 4));
    expectIllegal(opFp(FCVT_FROM_INT, 1, 4, 0, 1, 5));
    for (const funct5 of [0b00110, 0b00111, 0b01001, 0b01100, 0b10000, 0b11001, 0b11101, 0b11111]) {
      expectIllegal(opFp(funct5, 0, 4, 0, 1, 2));
    }
  });

  it("other major opcodes", () => {
    expectIllegal(0x00000013); // addi x0, x0, 0
    expectIllegal(0x00003007); // fld f0, 0(x0): a load, not handled here
    expectIllegal((OP_FP & ~0b11) | 0b01);
  });

  const opcodes = fc.constantFrom(OP_FP, MADD, MSUB, NMSUB, NMADD);
  it("every random word is either executed or refused without side effects", () => {
    fc.assert(
      fc.property(
        opcodes,
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 7 }),
        (opcode, word, frm) => {
          const insn = ((word & ~0x7f) | opcode) >>> 0;
          scramble(frm);
          const before = snapshot();
          if (!execute(insn)) assert.equal(snapshot(), before);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("legal encodings that a strict decoder might refuse", () => {
  it("ignores frm when the rounding mode is static", () => {
    for (const frm of [5, 6, 7]) {
      expectLegal(opFp(FADD, 1, 4, Rm.RTZ, 1, 2), frm);
      expectLegal(fused(MADD, 0, 4, Rm.RMM, 1, 2, 3), frm);
    }
  });

  it("non-rounding instructions do not look at frm", () => {
    for (const frm of [5, 7]) {
      expectLegal(opFp(FSGNJ, 1, 4, 2, 1, 2), frm);
      expectLegal(opFp(FMINMAX, 0, 4, 1, 1, 2), frm);
      expectLegal(opFp(FCMP, 1, 4, 2, 1, 2), frm);
      expectLegal(opFp(FMV_X_OR_CLASS, 0, 4, 1, 1, 0), frm);
      expectLegal(opFp(FMV_FROM_X, 1, 4, 0, 1, 0), frm);
    }
    assert.equal(registers.fcsr[1], 7);
  });
});
