import {
  and32,
  c32,
  type Expr,
  f as freg,
  insn,
  or32,
  sext32of,
  shl32,
  shrS32,
  shrU32,
  x,
  zext32of,
} from "./ir.js";

/**
 * Instruction fields and immediates, as IR over the instruction word. The interpreter computes them at
 * run time; the translator evaluates the same expressions on a known word (see evaluate.ts).
 */
const bits = (lo: number, width: number): Expr => and32(shrU32(insn, c32(lo)), c32((1 << width) - 1));

export const rdField = bits(7, 5);
export const rs1Field = bits(15, 5);
export const rs2Field = bits(20, 5);

export const rs1 = x(rs1Field);
export const rs2 = x(rs2Field);
export const frs2 = freg(rs2Field);

/** I-type: insn[31:20], sign-extended. */
export const immI = sext32of(shrS32(insn, c32(20)));
/** S-type: insn[31:25] | insn[11:7]. */
export const immS = sext32of(or32(shl32(shrS32(insn, c32(25)), c32(5)), bits(7, 5)));
/** B-type: imm[12|10:5] in insn[31:25], imm[4:1|11] in insn[11:7]. */
export const immB = sext32of(
  or32(
    or32(shl32(shrS32(insn, c32(31)), c32(12)), shl32(bits(7, 1), c32(11))),
    or32(shl32(bits(25, 6), c32(5)), shl32(bits(8, 4), c32(1))),
  ),
);
/** U-type: insn[31:12] << 12, sign-extended. */
export const immU = sext32of(and32(insn, c32(0xfffff000 | 0)));
/** J-type: imm[20|10:1|11|19:12] in insn[31:12]. */
export const immJ = sext32of(
  or32(
    or32(shl32(shrS32(insn, c32(31)), c32(20)), and32(insn, c32(0xff000))),
    or32(shl32(bits(20, 1), c32(11)), shl32(bits(21, 10), c32(1))),
  ),
);
/** RV64 shift amount (6 bits) and word shift amount (5 bits). */
export const shamt = zext32of(bits(20, 6));
