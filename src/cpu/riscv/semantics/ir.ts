import { Op } from "../../../wasm/opcodes.js";

/**
 * The semantic IR: each RISC-V instruction is described once as a few statements over expressions.
 * Code generators turn it into wasm: the interpreter reads operands out of the instruction word at run
 * time, the translator (later) folds the same expressions into constants and wasm locals. Expressions are
 * pure except `load`, which may trap (the generator then abandons the instruction).
 */
export type Type = "i32" | "i64";

export type Expr =
  /** The 32-bit instruction word (compressed instructions arrive already expanded). */
  | { k: "insn"; t: "i32" }
  /** Integer register x[index] as i64; index is an i32 expression (usually an instruction field). */
  | { k: "x"; t: "i64"; index: Expr }
  /** Raw 64-bit pattern of floating-point register f[index]. */
  | { k: "f"; t: "i64"; index: Expr }
  /** Address of this instruction / of the next one (pc + 2 or 4). */
  | { k: "pc"; t: "i64" }
  | { k: "nextPc"; t: "i64" }
  | { k: "const"; t: Type; lo: number; hi: number }
  /** A wasm operator applied to its operands, in order. */
  | { k: "op"; t: Type; op: Op; args: Expr[] }
  /** A helper function of the generated module (see helpers.ts). */
  | { k: "call"; t: Type; helper: string; args: Expr[] }
  /** Parameter of a helper function (i64). */
  | { k: "param"; t: "i64"; index: number }
  /** A wasm local the code generator owns. */
  | { k: "local"; t: Type; index: number }
  /** Guest memory read through the MMU; zero- or sign-extended to i64. */
  | { k: "load"; t: "i64"; width: Width; signed: boolean; addr: Expr };

export type Width = 1 | 2 | 4 | 8;

export type Stmt =
  | { k: "setRd"; value: Expr }
  /** Write a floating-point register (raw bits) and mark mstatus.FS dirty. */
  | { k: "setFrd"; value: Expr }
  /** Illegal instruction unless the FPU is enabled (mstatus.FS != Off). */
  | { k: "requireFpu" }
  /** Continue at `target`; with `link`, rd = nextPc (written after the target is computed). */
  | { k: "jump"; target: Expr; link: boolean }
  /** Continue at `target` when `cond` (i32) is non-zero. */
  | { k: "branch"; cond: Expr; target: Expr }
  | { k: "store"; width: Width; addr: Expr; value: Expr }
  /** Atomic read-modify-write: rd = old value (sign-extended); memory = combine(old, value). */
  | { k: "amo"; width: 4 | 8; addr: Expr; value: Expr; combine: (old: Expr, src: Expr) => Expr }
  | { k: "loadReserved"; width: 4 | 8; addr: Expr }
  | { k: "storeConditional"; width: 4 | 8; addr: Expr; value: Expr }
  /** The whole instruction is carried out by TypeScript (CSRs, traps, FPU arithmetic...). */
  | { k: "host"; fn: HostFunction }
  | { k: "illegal" };

/** TypeScript entry points for instructions not worth expressing in wasm. */
export type HostFunction = "system" | "fpu";

export interface Instruction {
  name: string;
  /** Bits that identify the instruction, and their values. */
  mask: number;
  match: number;
  body: Stmt[];
}

const i32c = (value: number): Expr => ({ k: "const", t: "i32", lo: value | 0, hi: 0 });
const i64c = (value: number): Expr => ({
  k: "const",
  t: "i64",
  lo: (value % 0x1_0000_0000) >>> 0,
  hi: Math.floor(value / 0x1_0000_0000) | 0,
});
export const c32 = i32c;
export const c64 = i64c;
export const c64bits = (lo: number, hi: number): Expr => ({ k: "const", t: "i64", lo: lo >>> 0, hi: hi | 0 });

const op =
  (t: Type, code: Op) =>
  (...args: Expr[]): Expr => ({ k: "op", t, op: code, args });

export const insn: Expr = { k: "insn", t: "i32" };
export const pc: Expr = { k: "pc", t: "i64" };
export const nextPc: Expr = { k: "nextPc", t: "i64" };
export const x = (index: Expr): Expr => ({ k: "x", t: "i64", index });
export const f = (index: Expr): Expr => ({ k: "f", t: "i64", index });
export const load = (width: Width, signed: boolean, addr: Expr): Expr => ({
  k: "load",
  t: "i64",
  width,
  signed,
  addr,
});
export const call = (helper: string, ...args: Expr[]): Expr => ({ k: "call", t: "i64", helper, args });
export const param = (index: number): Expr => ({ k: "param", t: "i64", index });

// 64-bit integer operators.
export const add = op("i64", Op.I64Add);
export const sub = op("i64", Op.I64Sub);
export const mul = op("i64", Op.I64Mul);
export const and = op("i64", Op.I64And);
export const or = op("i64", Op.I64Or);
export const xor = op("i64", Op.I64Xor);
/** Shifts use the low 6 bits of the amount, as both wasm and RV64 do. */
export const shl = op("i64", Op.I64Shl);
export const shrU = op("i64", Op.I64ShrU);
export const shrS = op("i64", Op.I64ShrS);
export const divS = op("i64", Op.I64DivS);
export const divU = op("i64", Op.I64DivU);
export const remS = op("i64", Op.I64RemS);
export const remU = op("i64", Op.I64RemU);
export const sext32 = op("i64", Op.I64Extend32S);
export const sext32of = op("i64", Op.I64ExtendI32S);
export const zext32of = op("i64", Op.I64ExtendI32U);
export const wrap = op("i32", Op.I32WrapI64);
/** Comparisons give an i32 0 or 1. */
export const eq = op("i32", Op.I64Eq);
export const ne = op("i32", Op.I64Ne);
export const ltS = op("i32", Op.I64LtS);
export const ltU = op("i32", Op.I64LtU);
export const geS = op("i32", Op.I64GeS);
export const geU = op("i32", Op.I64GeU);
export const eqz = op("i32", Op.I64Eqz);
/** 0/1 as an i64. */
export const bool = (cond: Expr): Expr => zext32of(cond);
/** cond ? a : b (both evaluated; they must not trap). */
export const select = (cond: Expr, a: Expr, b: Expr): Expr => ({
  k: "op",
  t: a.t,
  op: Op.Select,
  args: [a, b, cond],
});

// 32-bit operators (instruction fields, W-form arithmetic).
export const add32 = op("i32", Op.I32Add);
export const sub32 = op("i32", Op.I32Sub);
export const mul32 = op("i32", Op.I32Mul);
export const and32 = op("i32", Op.I32And);
export const or32 = op("i32", Op.I32Or);
export const shl32 = op("i32", Op.I32Shl);
export const shrU32 = op("i32", Op.I32ShrU);
export const shrS32 = op("i32", Op.I32ShrS);
export const divS32 = op("i32", Op.I32DivS);
export const divU32 = op("i32", Op.I32DivU);
export const remS32 = op("i32", Op.I32RemS);
export const remU32 = op("i32", Op.I32RemU);
export const eq32 = op("i32", Op.I32Eq);
