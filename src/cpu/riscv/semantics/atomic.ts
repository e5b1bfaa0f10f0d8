import { rs1, rs2 } from "./fields.js";
import { add, and, type Expr, geS, geU, type Instruction, ltS, ltU, or, select, xor } from "./ir.js";

/** RV64A. aq/rl (bits 26:25) are free: one thread runs every hart, so accesses are already ordered. */
const AMO_MASK = 0xf800707f;
const LR_MASK = 0xf9f0707f;
const AMO = 0x2f;
const encode = (funct5: number, width: 4 | 8) => (funct5 << 27) | ((width === 4 ? 2 : 3) << 12) | AMO;

const amo = (name: string, funct5: number, combine: (old: Expr, src: Expr) => Expr): Instruction[] =>
  ([4, 8] as const).map((width) => ({
    name: `${name}.${width === 4 ? "w" : "d"}`,
    mask: AMO_MASK,
    match: encode(funct5, width),
    body: [{ k: "amo", width, addr: rs1, value: rs2, combine }],
  }));

/** Word AMOs see sign-extended old values, so signed and unsigned 64-bit comparisons order them right. */
export const RV64A: Instruction[] = [
  ...([4, 8] as const).flatMap((width): Instruction[] => [
    {
      name: `lr.${width === 4 ? "w" : "d"}`,
      mask: LR_MASK,
      match: encode(0x02, width),
      body: [{ k: "loadReserved", width, addr: rs1 }],
    },
    {
      name: `sc.${width === 4 ? "w" : "d"}`,
      mask: AMO_MASK,
      match: encode(0x03, width),
      body: [{ k: "storeConditional", width, addr: rs1, value: rs2 }],
    },
  ]),
  ...amo("amoswap", 0x01, (_old, src) => src),
  ...amo("amoadd", 0x00, (old, src) => add(old, src)),
  ...amo("amoxor", 0x04, (old, src) => xor(old, src)),
  ...amo("amoand", 0x0c, (old, src) => and(old, src)),
  ...amo("amoor", 0x08, (old, src) => or(old, src)),
  ...amo("amomin", 0x10, (old, src) => select(ltS(old, src), old, src)),
  ...amo("amomax", 0x14, (old, src) => select(geS(old, src), old, src)),
  ...amo("amominu", 0x18, (old, src) => select(ltU(old, src), old, src)),
  ...amo("amomaxu", 0x1c, (old, src) => select(geU(old, src), old, src)),
];
