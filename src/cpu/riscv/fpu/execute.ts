/**
 * Decoder and dispatcher of the RV64 F and D computational instructions (major opcodes OP-FP and
 * the four fused multiply-add opcodes). Loads and stores are handled elsewhere.
 *
 * Every encoding is fully checked before anything is written, so an illegal one leaves the registers
 * and fcsr untouched. Instructions with an rm field, exact conversions included, reject a reserved
 * rounding mode, as the reference simulator (Spike) does.
 */

import { add, divide, multiply, squareRoot } from "./arithmetic.js";
import { classifyRegister, injectSign, moveFromInteger, moveToInteger } from "./bitwise.js";
import { type Comparison, compare, maximum, minimum } from "./compare.js";
import { convertFromInteger, convertToInteger, narrowToSingle } from "./convert.js";
import { Flag, raise, takeFlags } from "./flags.js";
import { fusedMultiplyAdd } from "./fma.js";
import { isSignalling, readOperand, writeResult } from "./registers.js";
import { DOUBLE, type RoundingMode, SINGLE } from "./rounding.js";

export interface FpuRegisters {
  /** f0..f31 raw 64-bit patterns as u32 pairs: f[2*i] = low word, f[2*i+1] = high word. */
  readonly f: Uint32Array;
  /** Same 256 bytes viewed as doubles: f64[i] is register i. */
  readonly f64: Float64Array;
  /** x0..x31 as int32 pairs: x[2*i] low, x[2*i+1] high. Writing x0 is allowed (the caller re-zeroes it). */
  readonly x: Int32Array;
  /** fcsr[0] = accrued flags fflags (NV=16 DZ=8 OF=4 UF=2 NX=1), fcsr[1] = frm (dynamic rounding mode 0..7). */
  readonly fcsr: Int32Array;
}

enum Opcode {
  MADD = 0b1000011,
  MSUB = 0b1000111,
  NMSUB = 0b1001011,
  NMADD = 0b1001111,
  OP_FP = 0b1010011,
}

/** OP-FP's funct7 >> 2 (the low two bits are the format). */
enum Funct5 {
  ADD = 0b00000,
  SUB = 0b00001,
  MUL = 0b00010,
  DIV = 0b00011,
  SIGN_INJECT = 0b00100,
  MIN_MAX = 0b00101,
  CONVERT_FORMAT = 0b01000,
  SQRT = 0b01011,
  COMPARE = 0b10100,
  CONVERT_TO_INTEGER = 0b11000,
  CONVERT_FROM_INTEGER = 0b11010,
  MOVE_TO_INTEGER_OR_CLASSIFY = 0b11100,
  MOVE_FROM_INTEGER = 0b11110,
}

const DYNAMIC_ROUNDING = 7;
const ILLEGAL = -1;

/**
 * Executes one 32-bit F/D computational instruction. Returns false if the encoding is illegal
 * (unknown funct, reserved rm 5/6, or rm=7 while frm is 5..7): the caller raises illegal-instruction
 * and nothing has been modified.
 */
export function executeFp(insn: number, r: FpuRegisters): boolean {
  const opcode = insn & 0x7f;
  const done =
    opcode === Opcode.OP_FP
      ? executeOpFp(insn, r)
      : opcode === Opcode.MADD || opcode === Opcode.MSUB || opcode === Opcode.NMSUB || opcode === Opcode.NMADD
        ? executeFused(insn, opcode, r)
        : false;
  if (done) r.fcsr[0] |= takeFlags();
  return done;
}

/** The rm field resolved against frm, or ILLEGAL for the reserved encodings. */
function roundingMode(insn: number, r: FpuRegisters): RoundingMode | typeof ILLEGAL {
  let rm = (insn >>> 12) & 7;
  if (rm === DYNAMIC_ROUNDING) rm = r.fcsr[1];
  return rm >= 0 && rm <= 4 ? rm : ILLEGAL;
}

function executeFused(insn: number, opcode: Opcode, r: FpuRegisters): boolean {
  const fmt = (insn >>> 25) & 3;
  const mode = roundingMode(insn, r);
  if (fmt > 1 || mode === ILLEGAL) return false;
  const double = fmt === 1;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const rs3 = insn >>> 27;
  if (isSignalling(r, rs1, double) || isSignalling(r, rs2, double) || isSignalling(r, rs3, double)) {
    raise(Flag.INVALID);
  }
  let a = readOperand(r, rs1, double);
  let c = readOperand(r, rs3, double);
  // Negating operands rather than the result keeps the single rounding (and an exact zero's sign)
  // that of -(a * b) +/- c, as the spec defines these.
  if (opcode === Opcode.NMSUB || opcode === Opcode.NMADD) a = -a;
  if (opcode === Opcode.MSUB || opcode === Opcode.NMADD) c = -c;
  const result = fusedMultiplyAdd(a, readOperand(r, rs2, double), c, double ? DOUBLE : SINGLE, mode);
  writeResult(r, (insn >>> 7) & 31, result, double);
  return true;
}

function executeOpFp(insn: number, r: FpuRegisters): boolean {
  const fmt = (insn >>> 25) & 3;
  if (fmt > 1) return false;
  const double = fmt === 1;
  const rd = (insn >>> 7) & 31;
  const funct3 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  switch (insn >>> 27) {
    case Funct5.ADD:
    case Funct5.SUB:
    case Funct5.MUL:
    case Funct5.DIV:
    case Funct5.SQRT:
      return executeArithmetic(insn, r, double);
    case Funct5.SIGN_INJECT:
      if (funct3 > 2) return false;
      injectSign(r, funct3, rd, rs1, rs2, double);
      return true;
    case Funct5.MIN_MAX: {
      if (funct3 > 1) return false;
      flagSignalling(r, rs1, rs2, double);
      const a = readOperand(r, rs1, double);
      const b = readOperand(r, rs2, double);
      writeResult(r, rd, funct3 === 0 ? minimum(a, b) : maximum(a, b), double);
      return true;
    }
    case Funct5.COMPARE:
      if (funct3 > 2) return false;
      flagSignalling(r, rs1, rs2, double);
      r.x[2 * rd] = compare(readOperand(r, rs1, double), readOperand(r, rs2, double), funct3 as Comparison);
      r.x[2 * rd + 1] = 0;
      return true;
    case Funct5.MOVE_TO_INTEGER_OR_CLASSIFY:
      if (rs2 !== 0 || funct3 > 1) return false;
      if (funct3 === 0) moveToInteger(r, rd, rs1, double);
      else classifyRegister(r, rd, rs1, double);
      return true;
    case Funct5.MOVE_FROM_INTEGER:
      if (rs2 !== 0 || funct3 !== 0) return false;
      moveFromInteger(r, rd, rs1, double);
      return true;
    case Funct5.CONVERT_FORMAT:
    case Funct5.CONVERT_TO_INTEGER:
    case Funct5.CONVERT_FROM_INTEGER:
      return executeConversion(insn, r, double);
    default:
      return false;
  }
}

function flagSignalling(r: FpuRegisters, rs1: number, rs2: number, double: boolean): void {
  if (isSignalling(r, rs1, double) || isSignalling(r, rs2, double)) raise(Flag.INVALID);
}

/** FADD, FSUB, FMUL, FDIV, FSQRT. */
function executeArithmetic(insn: number, r: FpuRegisters, double: boolean): boolean {
  const funct5 = insn >>> 27;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const mode = roundingMode(insn, r);
  if (mode === ILLEGAL || (funct5 === Funct5.SQRT && rs2 !== 0)) return false;
  const format = double ? DOUBLE : SINGLE;
  const a = readOperand(r, rs1, double);
  let result: number;
  if (funct5 === Funct5.SQRT) {
    if (isSignalling(r, rs1, double)) raise(Flag.INVALID);
    result = squareRoot(a, format, mode);
  } else {
    flagSignalling(r, rs1, rs2, double);
    const b = readOperand(r, rs2, double);
    if (funct5 === Funct5.ADD) result = add(a, b, format, mode);
    else if (funct5 === Funct5.SUB) result = add(a, -b, format, mode);
    else if (funct5 === Funct5.MUL) result = multiply(a, b, format, mode);
    else result = divide(a, b, format, mode);
  }
  writeResult(r, (insn >>> 7) & 31, result, double);
  return true;
}

/** FCVT between the formats and to and from integers; double says which format the funct7 names. */
function executeConversion(insn: number, r: FpuRegisters, double: boolean): boolean {
  const funct5 = insn >>> 27;
  const rd = (insn >>> 7) & 31;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const mode = roundingMode(insn, r);
  if (mode === ILLEGAL || rs2 > 3) return false;
  switch (funct5) {
    case Funct5.CONVERT_TO_INTEGER:
      convertToInteger(readOperand(r, rs1, double), rs2, mode, r.x, rd);
      return true;
    case Funct5.CONVERT_FROM_INTEGER:
      writeResult(r, rd, convertFromInteger(r.x, rs1, rs2, double ? DOUBLE : SINGLE, mode), double);
      return true;
    default: {
      // FCVT.S.D has fmt S and rs2 = 1 (D); FCVT.D.S has fmt D and rs2 = 0 (S).
      if (rs2 !== (double ? 0 : 1)) return false;
      if (isSignalling(r, rs1, !double)) raise(Flag.INVALID);
      const value = readOperand(r, rs1, !double);
      writeResult(r, rd, double ? value : narrowToSingle(value, mode), double);
      return true;
    }
  }
}
