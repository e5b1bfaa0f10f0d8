import { Op } from "../../../wasm/opcodes.js";
import type { Expr } from "../semantics/ir.js";

/**
 * Compile-time evaluation of IR expressions over a known instruction word and pc: register numbers and
 * immediates become constants, so the translated code carries none of the field extraction the
 * interpreter does at run time. Values are BigInts here (translation time only, never per instruction).
 */
type Value = bigint;

const I32_OPS: Partial<Record<Op, (a: number, b: number) => number>> = {
  [Op.I32Add]: (a, b) => (a + b) | 0,
  [Op.I32Sub]: (a, b) => (a - b) | 0,
  [Op.I32Mul]: (a, b) => Math.imul(a, b),
  [Op.I32And]: (a, b) => a & b,
  [Op.I32Or]: (a, b) => a | b,
  [Op.I32Xor]: (a, b) => a ^ b,
  [Op.I32Shl]: (a, b) => a << (b & 31),
  [Op.I32ShrS]: (a, b) => a >> (b & 31),
  [Op.I32ShrU]: (a, b) => (a >>> (b & 31)) | 0,
  [Op.I32Eq]: (a, b) => (a === b ? 1 : 0),
  [Op.I32Ne]: (a, b) => (a !== b ? 1 : 0),
};

const s64 = (v: bigint) => BigInt.asIntN(64, v);
const u64 = (v: bigint) => BigInt.asUintN(64, v);
const I64_OPS: Partial<Record<Op, (a: bigint, b: bigint) => bigint>> = {
  [Op.I64Add]: (a, b) => s64(a + b),
  [Op.I64Sub]: (a, b) => s64(a - b),
  [Op.I64Mul]: (a, b) => s64(a * b),
  [Op.I64And]: (a, b) => s64(a & b),
  [Op.I64Or]: (a, b) => s64(a | b),
  [Op.I64Xor]: (a, b) => s64(a ^ b),
  [Op.I64Shl]: (a, b) => s64(a << (b & 63n)),
  [Op.I64ShrS]: (a, b) => s64(a >> (b & 63n)),
  [Op.I64ShrU]: (a, b) => s64(u64(a) >> (b & 63n)),
};

const I64_UNARY: Partial<Record<Op, (a: bigint) => bigint>> = {
  [Op.I64Extend32S]: (a) => BigInt.asIntN(32, a),
  [Op.I64Extend16S]: (a) => BigInt.asIntN(16, a),
  [Op.I64Extend8S]: (a) => BigInt.asIntN(8, a),
  [Op.I64ExtendI32S]: (a) => BigInt.asIntN(32, a),
  [Op.I64ExtendI32U]: (a) => BigInt.asUintN(32, a),
  [Op.I32WrapI64]: (a) => BigInt.asIntN(32, a),
};

export interface Known {
  insn: number;
  pc: bigint;
  nextPc: bigint;
}

/** The expression's value when it depends only on the instruction word and pc, else null. */
export function evaluate(e: Expr, k: Known): Value | null {
  switch (e.k) {
    case "insn":
      return BigInt(k.insn | 0);
    case "pc":
      return k.pc;
    case "nextPc":
      return k.nextPc;
    case "const":
      return e.t === "i32" ? BigInt(e.lo | 0) : s64((BigInt(e.hi) << 32n) | BigInt(e.lo >>> 0));
    case "op": {
      const args: bigint[] = [];
      for (const a of e.args) {
        const v = evaluate(a, k);
        if (v === null) return null;
        args.push(v);
      }
      if (args.length === 2) {
        const [a, b] = args as [bigint, bigint];
        const f32 = I32_OPS[e.op];
        if (f32) return BigInt(f32(Number(a), Number(b)));
        const f64 = I64_OPS[e.op];
        if (f64) return f64(a, b);
      }
      if (args.length === 1) {
        const f = I64_UNARY[e.op];
        if (f) return f(args[0] as bigint);
      }
      return null;
    }
    default:
      return null;
  }
}

/** A constant IR expression holding `v` (of type t). */
export function constant(t: "i32" | "i64", v: bigint): Expr {
  const bits = BigInt.asUintN(64, v);
  return { k: "const", t, lo: Number(bits & 0xffffffffn) | 0, hi: Number(bits >> 32n) | 0 };
}
