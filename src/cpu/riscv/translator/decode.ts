import { buildDecodeTree, type DecodeNode, decode } from "../codegen/decode-tree.js";
import { expandCompressed } from "../isa/compressed.js";
import { RV64G } from "../semantics/index.js";
import type { Instruction, Stmt } from "../semantics/ir.js";
import { csrInBlockAllowed } from "../system.js";
import type { BlockInsn } from "./emitter.js";

/** Longest block: bounds the wasm function size and the instructions run between budget checks. */
export const MAX_BLOCK_INSNS = 64;

let tree: DecodeNode | null = null;

export interface DecodedInsn extends BlockInsn {
  insn: Instruction;
}

const isJump = (body: readonly Stmt[]) => body.some((s) => s.k === "jump");

/** The target of `jal` (J-immediate), or null for any other jump. */
function jalTarget(insn: Instruction, word: number, pc: bigint): bigint | null {
  if (insn.name !== "jal") return null;
  const imm =
    ((word >> 31) << 20) |
    (((word >>> 12) & 0xff) << 12) |
    (((word >>> 20) & 1) << 11) |
    (((word >>> 21) & 0x3ff) << 1);
  return pc + BigInt(imm);
}
/** Instructions left to the interpreter: SYSTEM ones other than plain CSR accesses, and illegal ones. */
const needsHost = (body: readonly Stmt[], word: number) =>
  body.some((s) => (s.k === "host" && s.fn === "system" && !csrInBlockAllowed(word)) || s.k === "illegal");

/**
 * Decodes the block (a superblock: one entry, several exits) starting at guest virtual `pc`, whose page
 * holds `bytes` from `offset` on: conditional branches leave it when taken and carry on otherwise; a
 * `jal` to a not yet decoded place on the same page is followed; it ends at any other jump, FENCE.I
 * (included), an instruction the interpreter must run (SYSTEM other than a plain CSR access, illegal:
 * excluded; FPU arithmetic and plain CSR accesses call TypeScript and go on), the
 * end of the page, or MAX_BLOCK_INSNS. An empty result means the interpreter owns the first instruction.
 */
export function decodeBlock(bytes: Uint8Array, offset: number, pc: bigint): DecodedInsn[] {
  tree ??= buildDecodeTree(RV64G);
  const out: DecodedInsn[] = [];
  const pageStart = pc - BigInt(offset);
  const seen = new Set<number>();
  let at = offset;
  let at_pc = pc;
  while (out.length < MAX_BLOCK_INSNS && at + 2 <= bytes.length && !seen.has(at)) {
    seen.add(at);
    const half = (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
    let word: number;
    let raw: number;
    let length: 2 | 4;
    if ((half & 3) !== 3) {
      word = expandCompressed(half);
      raw = half;
      length = 2;
      if (word === 0) break;
    } else {
      if (at + 4 > bytes.length) break;
      word = (half | ((bytes[at + 2] as number) << 16) | ((bytes[at + 3] as number) << 24)) >>> 0;
      raw = word;
      length = 4;
    }
    const insn = decode(tree, word);
    if (insn === null || needsHost(insn.body, word)) break;
    out.push({ pc: at_pc, word, raw, length, insn });
    if (insn.name === "fence.i") break;
    if (isJump(insn.body)) {
      const target = jalTarget(insn, word, at_pc);
      const to = target === null ? -1 : Number(target - pageStart);
      if (target === null || target === pc || to < 0 || to >= bytes.length || seen.has(to)) break;
      at = to;
      at_pc = target;
      continue;
    }
    at += length;
    at_pc += BigInt(length);
  }
  return out;
}
