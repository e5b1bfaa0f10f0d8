import { immB, immI, immJ, immS, immU, rs1, rs2, shamt } from "./fields.js";
import {
  add,
  and,
  bool,
  c64,
  call,
  type Expr,
  eq,
  geS,
  geU,
  type Instruction,
  load,
  ltS,
  ltU,
  mul,
  ne,
  or,
  pc,
  type Stmt,
  sext32,
  shl,
  shrS,
  shrU,
  sub,
  type Width,
  wrap,
  xor,
  zext32of,
} from "./ir.js";

/** RV64I and RV64M. Masks: R-type funct7|funct3|opcode, I-type funct3|opcode, RV64 shifts funct6. */
const R = 0xfe00707f;
const I = 0x0000707f;
const SHIFT64 = 0xfc00707f;
const U = 0x0000007f;

const setRd = (value: Expr): Stmt[] => [{ k: "setRd", value }];
const rType = (opcode: number, funct3: number, funct7: number) => (funct7 << 25) | (funct3 << 12) | opcode;
const iType = (opcode: number, funct3: number) => (funct3 << 12) | opcode;

const OP = 0x33;
const OP_IMM = 0x13;
const OP_32 = 0x3b;
const OP_IMM_32 = 0x1b;
const LOAD = 0x03;
const STORE = 0x23;
const BRANCH = 0x63;

const alu = (name: string, funct3: number, funct7: number, value: Expr): Instruction => ({
  name,
  mask: R,
  match: rType(OP, funct3, funct7),
  body: setRd(value),
});
const aluW = (name: string, funct3: number, funct7: number, value: Expr): Instruction => ({
  name,
  mask: R,
  match: rType(OP_32, funct3, funct7),
  body: setRd(sext32(value)),
});
const imm = (name: string, funct3: number, value: Expr): Instruction => ({
  name,
  mask: I,
  match: iType(OP_IMM, funct3),
  body: setRd(value),
});
const shiftImm = (name: string, funct3: number, funct6: number, value: Expr): Instruction => ({
  name,
  mask: SHIFT64,
  match: (funct6 << 26) | iType(OP_IMM, funct3),
  body: setRd(value),
});
const shiftImmW = (name: string, funct3: number, funct7: number, value: Expr): Instruction => ({
  name,
  mask: R,
  match: rType(OP_IMM_32, funct3, funct7),
  body: setRd(sext32(value)),
});
const loadInsn = (name: string, funct3: number, width: Width, signed: boolean): Instruction => ({
  name,
  mask: I,
  match: iType(LOAD, funct3),
  body: setRd(load(width, signed, add(rs1, immI))),
});
const storeInsn = (name: string, funct3: number, width: Width): Instruction => ({
  name,
  mask: I,
  match: iType(STORE, funct3),
  body: [{ k: "store", width, addr: add(rs1, immS), value: rs2 }],
});
const branch = (name: string, funct3: number, cond: Expr): Instruction => ({
  name,
  mask: I,
  match: iType(BRANCH, funct3),
  body: [{ k: "branch", cond, target: add(pc, immB) }],
});

const low5 = (v: Expr) => and(v, c64(31));
/** 32-bit shifts: operate on the low word, amount mod 32. */
const word = (v: Expr) => zext32of(wrap(v));

export const RV64I: Instruction[] = [
  { name: "lui", mask: U, match: 0x37, body: setRd(immU) },
  { name: "auipc", mask: U, match: 0x17, body: setRd(add(pc, immU)) },
  { name: "jal", mask: U, match: 0x6f, body: [{ k: "jump", target: add(pc, immJ), link: true }] },
  {
    name: "jalr",
    mask: I,
    match: iType(0x67, 0),
    body: [{ k: "jump", target: and(add(rs1, immI), c64(-2)), link: true }],
  },
  branch("beq", 0, eq(rs1, rs2)),
  branch("bne", 1, ne(rs1, rs2)),
  branch("blt", 4, ltS(rs1, rs2)),
  branch("bge", 5, geS(rs1, rs2)),
  branch("bltu", 6, ltU(rs1, rs2)),
  branch("bgeu", 7, geU(rs1, rs2)),
  loadInsn("lb", 0, 1, true),
  loadInsn("lh", 1, 2, true),
  loadInsn("lw", 2, 4, true),
  loadInsn("ld", 3, 8, true),
  loadInsn("lbu", 4, 1, false),
  loadInsn("lhu", 5, 2, false),
  loadInsn("lwu", 6, 4, false),
  storeInsn("sb", 0, 1),
  storeInsn("sh", 1, 2),
  storeInsn("sw", 2, 4),
  storeInsn("sd", 3, 8),
  imm("addi", 0, add(rs1, immI)),
  imm("slti", 2, bool(ltS(rs1, immI))),
  imm("sltiu", 3, bool(ltU(rs1, immI))),
  imm("xori", 4, xor(rs1, immI)),
  imm("ori", 6, or(rs1, immI)),
  imm("andi", 7, and(rs1, immI)),
  shiftImm("slli", 1, 0x00, shl(rs1, shamt)),
  shiftImm("srli", 5, 0x00, shrU(rs1, shamt)),
  shiftImm("srai", 5, 0x10, shrS(rs1, shamt)),
  alu("add", 0, 0x00, add(rs1, rs2)),
  alu("sub", 0, 0x20, sub(rs1, rs2)),
  alu("sll", 1, 0x00, shl(rs1, rs2)),
  alu("slt", 2, 0x00, bool(ltS(rs1, rs2))),
  alu("sltu", 3, 0x00, bool(ltU(rs1, rs2))),
  alu("xor", 4, 0x00, xor(rs1, rs2)),
  alu("srl", 5, 0x00, shrU(rs1, rs2)),
  alu("sra", 5, 0x20, shrS(rs1, rs2)),
  alu("or", 6, 0x00, or(rs1, rs2)),
  alu("and", 7, 0x00, and(rs1, rs2)),
  { name: "addiw", mask: I, match: iType(OP_IMM_32, 0), body: setRd(sext32(add(rs1, immI))) },
  shiftImmW("slliw", 1, 0x00, shl(rs1, low5(shamt))),
  shiftImmW("srliw", 5, 0x00, shrU(word(rs1), low5(shamt))),
  shiftImmW("sraiw", 5, 0x20, shrS(sext32(rs1), low5(shamt))),
  aluW("addw", 0, 0x00, add(rs1, rs2)),
  aluW("subw", 0, 0x20, sub(rs1, rs2)),
  aluW("sllw", 1, 0x00, shl(rs1, low5(rs2))),
  aluW("srlw", 5, 0x00, shrU(word(rs1), low5(rs2))),
  aluW("sraw", 5, 0x20, shrS(sext32(rs1), low5(rs2))),
  /** FENCE orders memory for other harts and devices; one thread runs all harts, so it has no effect. */
  { name: "fence", mask: I, match: iType(0x0f, 0), body: [] },
  /** No decoded instructions are cached by the interpreter, so FENCE.I has nothing to flush. */
  { name: "fence.i", mask: I, match: iType(0x0f, 1), body: [] },
  /** CSR access, ECALL/EBREAK, xRET, WFI and SFENCE.VMA are done in TypeScript (hart-system.ts). */
  { name: "system", mask: U, match: 0x73, body: [{ k: "host", fn: "system" }] },
];

const M = 0x01;
export const RV64M: Instruction[] = [
  alu("mul", 0, M, mul(rs1, rs2)),
  alu("mulh", 1, M, call("mulh", rs1, rs2)),
  alu("mulhsu", 2, M, call("mulhsu", rs1, rs2)),
  alu("mulhu", 3, M, call("mulhu", rs1, rs2)),
  alu("div", 4, M, call("div", rs1, rs2)),
  alu("divu", 5, M, call("divu", rs1, rs2)),
  alu("rem", 6, M, call("rem", rs1, rs2)),
  alu("remu", 7, M, call("remu", rs1, rs2)),
  aluW("mulw", 0, M, mul(rs1, rs2)),
  { name: "divw", mask: R, match: rType(OP_32, 4, M), body: setRd(call("divw", rs1, rs2)) },
  { name: "divuw", mask: R, match: rType(OP_32, 5, M), body: setRd(call("divuw", rs1, rs2)) },
  { name: "remw", mask: R, match: rType(OP_32, 6, M), body: setRd(call("remw", rs1, rs2)) },
  { name: "remuw", mask: R, match: rType(OP_32, 7, M), body: setRd(call("remuw", rs1, rs2)) },
];
