/**
 * RVC: the 32-bit RV64G instruction that each 16-bit compressed instruction stands for.
 *
 * The interpreter never decodes compressed instructions itself. It looks the halfword up in a 64 K-entry
 * table filled by fillCompressedTable and executes the expansion like any other instruction (advancing PC
 * by 2). Bit layouts follow the "RVC Instruction Set Listings" chapter of the unprivileged spec.
 *
 * HINT encodings (e.g. C.ADDI with rd=0, C.SLLI with shamt 0) are legal and expand to the base
 * instruction they are carved out of, which writes x0 or otherwise does nothing. Reserved encodings give 0,
 * which the interpreter treats as an illegal instruction.
 */

/** Returned for reserved encodings; no valid 32-bit instruction is 0. */
const ILLEGAL = 0;

/** Major opcodes of the base instructions that compressed ones expand to. */
enum Opcode {
  LOAD = 0x03,
  LOAD_FP = 0x07,
  OP_IMM = 0x13,
  OP_IMM_32 = 0x1b,
  STORE = 0x23,
  STORE_FP = 0x27,
  OP = 0x33,
  LUI = 0x37,
  OP_32 = 0x3b,
  BRANCH = 0x63,
  JALR = 0x67,
  JAL = 0x6f,
}

const EBREAK = 0x0010_0073;
/** funct3 of SUB, XOR, OR, AND, indexed by bits 6:5 of the compressed register-register group. */
const REGISTER_GROUP_FUNCT3 = [0, 4, 6, 7];
const SP = 2;
const RA = 1;

export function expandCompressed(half: number): number {
  switch (half & 3) {
    case 0:
      return expandQuadrant0(half);
    case 1:
      return expandQuadrant1(half);
    case 2:
      return expandQuadrant2(half);
    default:
      return ILLEGAL; // low bits 11 mark a 32-bit instruction, not a compressed one
  }
}

export function fillCompressedTable(table: Uint32Array): void {
  if (table.length < 0x1_0000) throw new RangeError(`RVC table needs 65536 entries, got ${table.length}`);
  for (let half = 0; half < 0x1_0000; half++) table[half] = expandCompressed(half);
}

function expandQuadrant0(h: number): number {
  const rdOrRs2 = compactRegister(h, 4);
  const rs1 = compactRegister(h, 9);
  switch (field(h, 15, 13, 0)) {
    case 0: {
      // C.ADDI4SPN: nzuimm[5:4|9:6|2|3] in bits 12:5
      const imm = field(h, 12, 11, 4) | field(h, 10, 7, 6) | field(h, 6, 6, 2) | field(h, 5, 5, 3);
      return imm === 0 ? ILLEGAL : iType(Opcode.OP_IMM, 0, rdOrRs2, SP, imm);
    }
    case 1:
      return iType(Opcode.LOAD_FP, 3, rdOrRs2, rs1, compactDoubleOffset(h)); // C.FLD
    case 2:
      return iType(Opcode.LOAD, 2, rdOrRs2, rs1, compactWordOffset(h)); // C.LW
    case 3:
      return iType(Opcode.LOAD, 3, rdOrRs2, rs1, compactDoubleOffset(h)); // C.LD
    case 5:
      return sType(Opcode.STORE_FP, 3, rs1, rdOrRs2, compactDoubleOffset(h)); // C.FSD
    case 6:
      return sType(Opcode.STORE, 2, rs1, rdOrRs2, compactWordOffset(h)); // C.SW
    case 7:
      return sType(Opcode.STORE, 3, rs1, rdOrRs2, compactDoubleOffset(h)); // C.SD
    default:
      return ILLEGAL; // funct3 100 is reserved
  }
}

function expandQuadrant1(h: number): number {
  const rd = field(h, 11, 7, 0);
  const imm = signExtend(field(h, 12, 12, 5) | field(h, 6, 2, 0), 6);
  switch (field(h, 15, 13, 0)) {
    case 0:
      return iType(Opcode.OP_IMM, 0, rd, rd, imm); // C.ADDI (C.NOP when rd=0)
    case 1:
      return rd === 0 ? ILLEGAL : iType(Opcode.OP_IMM_32, 0, rd, rd, imm); // C.ADDIW
    case 2:
      return iType(Opcode.OP_IMM, 0, rd, 0, imm); // C.LI
    case 3:
      return rd === SP ? expandAddi16sp(h) : expandLui(rd, imm);
    case 4:
      return expandArithmetic(h, imm);
    case 5: {
      // C.J: offset[11|4|9:8|10|6|7|3:1|5] in bits 12:2
      const offset =
        field(h, 12, 12, 11) |
        field(h, 11, 11, 4) |
        field(h, 10, 9, 8) |
        field(h, 8, 8, 10) |
        field(h, 7, 7, 6) |
        field(h, 6, 6, 7) |
        field(h, 5, 3, 1) |
        field(h, 2, 2, 5);
      return jType(0, signExtend(offset, 12));
    }
    default:
      return expandBranch(h); // 110 C.BEQZ, 111 C.BNEZ
  }
}

function expandAddi16sp(h: number): number {
  // nzimm[9] in bit 12, nzimm[4|6|8:7|5] in bits 6:2
  const imm =
    field(h, 12, 12, 9) | field(h, 6, 6, 4) | field(h, 5, 5, 6) | field(h, 4, 3, 7) | field(h, 2, 2, 5);
  return imm === 0 ? ILLEGAL : iType(Opcode.OP_IMM, 0, SP, SP, signExtend(imm, 10));
}

/** C.LUI: the 6-bit immediate is nzimm[17:12], so it lands sign-extended in LUI's 20-bit field. */
function expandLui(rd: number, imm: number): number {
  if (imm === 0) return ILLEGAL;
  return (((imm & 0xf_ffff) << 12) | (rd << 7) | Opcode.LUI) >>> 0;
}

/** Quadrant 1, funct3 100: shifts, ANDI and the register-register group, all on x8..x15. */
function expandArithmetic(h: number, imm: number): number {
  const rd = compactRegister(h, 9);
  const shamt = field(h, 12, 12, 5) | field(h, 6, 2, 0);
  switch (field(h, 11, 10, 0)) {
    case 0:
      return iType(Opcode.OP_IMM, 5, rd, rd, shamt); // C.SRLI
    case 1:
      return iType(Opcode.OP_IMM, 5, rd, rd, 0x400 | shamt); // C.SRAI (funct6 010000)
    case 2:
      return iType(Opcode.OP_IMM, 7, rd, rd, imm); // C.ANDI
  }
  const rs2 = compactRegister(h, 4);
  const operation = field(h, 6, 5, 0);
  if (field(h, 12, 12, 0) === 0) {
    // C.SUB, C.XOR, C.OR, C.AND
    return rType(Opcode.OP, REGISTER_GROUP_FUNCT3[operation], operation === 0 ? 0x20 : 0, rd, rd, rs2);
  }
  if (operation === 0) return rType(Opcode.OP_32, 0, 0x20, rd, rd, rs2); // C.SUBW
  if (operation === 1) return rType(Opcode.OP_32, 0, 0, rd, rd, rs2); // C.ADDW
  return ILLEGAL; // reserved on RV64
}

/** C.BEQZ / C.BNEZ: offset[8|4:3] in bits 12:10, offset[7:6|2:1|5] in bits 6:2; compare with x0. */
function expandBranch(h: number): number {
  const offset =
    field(h, 12, 12, 8) | field(h, 11, 10, 3) | field(h, 6, 5, 6) | field(h, 4, 3, 1) | field(h, 2, 2, 5);
  const funct3 = field(h, 13, 13, 0); // 0 BEQ, 1 BNE
  return bType(funct3, compactRegister(h, 9), 0, signExtend(offset, 9));
}

function expandQuadrant2(h: number): number {
  const rd = field(h, 11, 7, 0);
  const rs2 = field(h, 6, 2, 0);
  switch (field(h, 15, 13, 0)) {
    case 0:
      return iType(Opcode.OP_IMM, 1, rd, rd, field(h, 12, 12, 5) | rs2); // C.SLLI
    case 1:
      return iType(Opcode.LOAD_FP, 3, rd, SP, stackDoubleLoadOffset(h)); // C.FLDSP (f0 is allowed)
    case 2: {
      // C.LWSP: uimm[5] in bit 12, uimm[4:2|7:6] in bits 6:2
      const offset = field(h, 12, 12, 5) | field(h, 6, 4, 2) | field(h, 3, 2, 6);
      return rd === 0 ? ILLEGAL : iType(Opcode.LOAD, 2, rd, SP, offset);
    }
    case 3:
      return rd === 0 ? ILLEGAL : iType(Opcode.LOAD, 3, rd, SP, stackDoubleLoadOffset(h)); // C.LDSP
    case 4:
      return expandJumpMoveAdd(h, rd, rs2);
    case 5:
      return sType(Opcode.STORE_FP, 3, SP, rs2, stackDoubleStoreOffset(h)); // C.FSDSP
    case 6: {
      // C.SWSP: uimm[5:2|7:6] in bits 12:7
      const offset = field(h, 12, 9, 2) | field(h, 8, 7, 6);
      return sType(Opcode.STORE, 2, SP, rs2, offset);
    }
    default:
      return sType(Opcode.STORE, 3, SP, rs2, stackDoubleStoreOffset(h)); // C.SDSP
  }
}

/** Quadrant 2, funct3 100: C.JR, C.MV, C.EBREAK, C.JALR, C.ADD, told apart by bit 12 and zero fields. */
function expandJumpMoveAdd(h: number, rd: number, rs2: number): number {
  if (field(h, 12, 12, 0) === 0) {
    if (rs2 !== 0) return rType(Opcode.OP, 0, 0, rd, 0, rs2); // C.MV
    return rd === 0 ? ILLEGAL : iType(Opcode.JALR, 0, 0, rd, 0); // C.JR
  }
  if (rs2 !== 0) return rType(Opcode.OP, 0, 0, rd, rd, rs2); // C.ADD
  return rd === 0 ? EBREAK : iType(Opcode.JALR, 0, RA, rd, 0); // C.EBREAK, C.JALR
}

/** C.LW/C.SW: uimm[5:3] in bits 12:10, uimm[2|6] in bits 6:5. */
function compactWordOffset(h: number): number {
  return field(h, 12, 10, 3) | field(h, 6, 6, 2) | field(h, 5, 5, 6);
}

/** C.LD/C.SD/C.FLD/C.FSD: uimm[5:3] in bits 12:10, uimm[7:6] in bits 6:5. */
function compactDoubleOffset(h: number): number {
  return field(h, 12, 10, 3) | field(h, 6, 5, 6);
}

/** C.LDSP/C.FLDSP: uimm[5] in bit 12, uimm[4:3|8:6] in bits 6:2. */
function stackDoubleLoadOffset(h: number): number {
  return field(h, 12, 12, 5) | field(h, 6, 5, 3) | field(h, 4, 2, 6);
}

/** C.SDSP/C.FSDSP: uimm[5:3|8:6] in bits 12:7. */
function stackDoubleStoreOffset(h: number): number {
  return field(h, 12, 10, 3) | field(h, 9, 7, 6);
}

/** Bits hi..lo of `value`, moved so that bit lo lands at bit `at`. */
function field(value: number, hi: number, lo: number, at: number): number {
  return ((value >>> lo) & ((1 << (hi - lo + 1)) - 1)) << at;
}

/** The 3-bit register fields of the compact formats name x8..x15 (or f8..f15). */
function compactRegister(h: number, hi: number): number {
  return 8 + field(h, hi, hi - 2, 0);
}

function signExtend(value: number, width: number): number {
  const shift = 32 - width;
  return (value << shift) >> shift;
}

function iType(opcode: Opcode, funct3: number, rd: number, rs1: number, imm: number): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode) >>> 0;
}

function sType(opcode: Opcode, funct3: number, rs1: number, rs2: number, imm: number): number {
  const high = (imm >> 5) & 0x7f;
  return ((high << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | ((imm & 0x1f) << 7) | opcode) >>> 0;
}

function rType(opcode: Opcode, funct3: number, funct7: number, rd: number, rs1: number, rs2: number): number {
  return ((funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode) >>> 0;
}

/** Branch immediate layout: imm[12|10:5] in bits 31:25, imm[4:1|11] in bits 11:7. */
function bType(funct3: number, rs1: number, rs2: number, offset: number): number {
  const high = field(offset, 12, 12, 6) | field(offset, 10, 5, 0);
  const low = field(offset, 4, 1, 1) | field(offset, 11, 11, 0);
  return ((high << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (low << 7) | Opcode.BRANCH) >>> 0;
}

/** Jump immediate layout: imm[20|10:1|11|19:12] in bits 31:12. */
function jType(rd: number, offset: number): number {
  const imm =
    field(offset, 20, 20, 19) | field(offset, 10, 1, 9) | field(offset, 11, 11, 8) | field(offset, 19, 12, 0);
  return ((imm << 12) | (rd << 7) | Opcode.JAL) >>> 0;
}
