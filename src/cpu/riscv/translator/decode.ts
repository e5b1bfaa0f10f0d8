import { buildDecodeTree, type DecodeNode, decode } from "../codegen/decode-tree.js";
import { expandCompressed } from "../isa/compressed.js";
import { RV64G } from "../semantics/index.js";
import type { Instruction, Stmt } from "../semantics/ir.js";
import type { BlockInsn } from "./emitter.js";

/** Longest block: bounds the wasm function size and the instructions run between budget checks. */
export const MAX_BLOCK_INSNS = 64;

let tree: DecodeNode | null = null;

export interface DecodedInsn extends BlockInsn {
  insn: Instruction;
}

const endsBlock = (body: readonly Stmt[]) => body.some((s) => s.k === "jump" || s.k === "branch");
const needsHost = (body: readonly Stmt[]) => body.some((s) => s.k === "host" || s.k === "illegal");

/**
 * Decodes the block starting at guest virtual `pc` whose bytes start at `bytes[offset]` (the page's
 * remaining bytes): up to a jump, branch or FENCE.I (included), up to an instruction the interpreter
 * must run (system, FPU arithmetic, illegal: excluded), the end of the page, or MAX_BLOCK_INSNS. An
 * empty result means the first instruction belongs to the interpreter.
 */
export function decodeBlock(bytes: Uint8Array, offset: number, pc: bigint): DecodedInsn[] {
  tree ??= buildDecodeTree(RV64G);
  const out: DecodedInsn[] = [];
  let at = offset;
  while (out.length < MAX_BLOCK_INSNS && at + 2 <= bytes.length) {
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
    if (insn === null || needsHost(insn.body)) break;
    out.push({ pc: pc + BigInt(at - offset), word, raw, length, insn });
    at += length;
    if (endsBlock(insn.body) || insn.name === "fence.i") break;
  }
  return out;
}
