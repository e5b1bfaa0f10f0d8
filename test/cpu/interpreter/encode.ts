/**
 * A small RV64 instruction encoder for the interpreter tests, written from the base-format pictures of
 * the unprivileged spec (chapter "RV32I Base Integer Instruction Set", section "Immediate Encoding
 * Variants"). Independent of src/: the tests use it to produce the words the interpreter must execute.
 * Every function returns the word as an unsigned 32-bit number.
 */

const reg = (r: number): number => {
  if (!Number.isInteger(r) || r < 0 || r > 31) throw new RangeError(`register ${r}`);
  return r;
};

function checkSigned(value: number, bits: number, what: string): void {
  const limit = 2 ** (bits - 1);
  if (!Number.isInteger(value) || value < -limit || value >= limit) {
    throw new RangeError(`${what} ${value} does not fit in ${bits} signed bits`);
  }
}

/** Bits [hi:lo] of a (possibly negative) integer, as an unsigned number. */
const slice = (value: number, hi: number, lo: number): number =>
  Math.floor(value / 2 ** lo) & (2 ** (hi - lo + 1) - 1);

export function rType(opcode: number, funct3: number, funct7: number, rd: number, rs1: number, rs2: number) {
  return (
    ((funct7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode) >>> 0
  );
}

export function iType(opcode: number, funct3: number, rd: number, rs1: number, imm: number): number {
  checkSigned(imm, 12, "I-immediate");
  return ((slice(imm, 11, 0) << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export function sType(opcode: number, funct3: number, rs1: number, rs2: number, imm: number): number {
  checkSigned(imm, 12, "S-immediate");
  return (
    ((slice(imm, 11, 5) << 25) |
      (reg(rs2) << 20) |
      (reg(rs1) << 15) |
      (funct3 << 12) |
      (slice(imm, 4, 0) << 7) |
      opcode) >>>
    0
  );
}

export function bType(funct3: number, rs1: number, rs2: number, offset: number): number {
  checkSigned(offset, 13, "B-offset");
  if (offset % 2 !== 0) throw new RangeError("branch offsets are even");
  return (
    ((slice(offset, 12, 12) << 31) |
      (slice(offset, 10, 5) << 25) |
      (reg(rs2) << 20) |
      (reg(rs1) << 15) |
      (funct3 << 12) |
      (slice(offset, 4, 1) << 8) |
      (slice(offset, 11, 11) << 7) |
      0x63) >>>
    0
  );
}

/** U-type: `imm20` is the 20-bit field value (0..0xfffff), placed in bits 31:12. */
export function uType(opcode: number, rd: number, imm20: number): number {
  if (!Number.isInteger(imm20) || imm20 < 0 || imm20 > 0xfffff) throw new RangeError(`U-immediate ${imm20}`);
  return ((imm20 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export function jal(rd: number, offset: number): number {
  checkSigned(offset, 21, "J-offset");
  if (offset % 2 !== 0) throw new RangeError("jump offsets are even");
  return (
    ((slice(offset, 20, 20) << 31) |
      (slice(offset, 10, 1) << 21) |
      (slice(offset, 11, 11) << 20) |
      (slice(offset, 19, 12) << 12) |
      (reg(rd) << 7) |
      0x6f) >>>
    0
  );
}

export const jalr = (rd: number, rs1: number, imm: number): number => iType(0x67, 0, rd, rs1, imm);

/** Shift-immediate: funct6 (RV64, 6-bit shamt) or funct7 (W forms, 5-bit shamt) above the amount. */
export function shiftImm(
  opcode: number,
  funct3: number,
  high: number,
  shamtBits: 5 | 6,
  rd: number,
  rs1: number,
  shamt: number,
) {
  if (!Number.isInteger(shamt) || shamt < 0 || shamt >= 2 ** shamtBits)
    throw new RangeError(`shamt ${shamt}`);
  const imm = (high << shamtBits) | shamt;
  return ((imm << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode) >>> 0;
}

export const Opc = {
  LOAD: 0x03,
  OP_IMM: 0x13,
  AUIPC: 0x17,
  OP_IMM_32: 0x1b,
  STORE: 0x23,
  OP: 0x33,
  LUI: 0x37,
  OP_32: 0x3b,
  BRANCH: 0x63,
  JALR: 0x67,
  JAL: 0x6f,
  SYSTEM: 0x73,
} as const;

/** `jal x0, 0`: a one-instruction infinite loop. */
export const SPIN = jal(0, 0);
/** `addi x0, x0, 0`. */
export const NOP = iType(Opc.OP_IMM, 0, 0, 0, 0);
