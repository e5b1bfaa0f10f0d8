/** Builds F/D instruction words for the tests. */

export enum Rm {
  RNE = 0,
  RTZ = 1,
  RDN = 2,
  RUP = 3,
  RMM = 4,
  DYN = 7,
}

/** fmt field: 0 = S, 1 = D (2 = H and 3 = Q are not implemented). */
export type Fmt = 0 | 1 | 2 | 3;

export const OP_FP = 0b1010011;
export const MADD = 0b1000011;
export const MSUB = 0b1000111;
export const NMSUB = 0b1001011;
export const NMADD = 0b1001111;

/** funct5 values of OP-FP. */
export const FADD = 0b00000;
export const FSUB = 0b00001;
export const FMUL = 0b00010;
export const FDIV = 0b00011;
export const FSGNJ = 0b00100;
export const FMINMAX = 0b00101;
export const FCVT_FMT = 0b01000;
export const FSQRT = 0b01011;
export const FCMP = 0b10100;
export const FCVT_TO_INT = 0b11000;
export const FCVT_FROM_INT = 0b11010;
export const FMV_X_OR_CLASS = 0b11100;
export const FMV_FROM_X = 0b11110;

/** An OP-FP instruction; funct3 is the rm field for rounding instructions. */
export function opFp(funct5: number, fmt: Fmt, rd: number, funct3: number, rs1: number, rs2: number): number {
  return (
    ((funct5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | OP_FP) >>> 0
  );
}

/** An R4-type fused multiply-add instruction. */
export function fused(
  opcode: number,
  fmt: Fmt,
  rd: number,
  rm: number,
  rs1: number,
  rs2: number,
  rs3: number,
) {
  return ((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | opcode) >>> 0;
}
