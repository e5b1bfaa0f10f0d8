import type { Instruction } from "../semantics/ir.js";

/**
 * A decision tree over instruction fields, built from the instructions' mask/match pairs, so the decoder
 * follows from the semantic table instead of being written by hand. Each inner node switches on one field
 * (a wasm br_table); a leaf checks whatever bits its path has not yet fixed.
 */
export interface Field {
  name: string;
  lo: number;
  width: number;
}

export type DecodeNode =
  | { kind: "leaf"; insn: Instruction; checkMask: number }
  | { kind: "switch"; field: Field; cases: Map<number, DecodeNode> }
  | { kind: "illegal" };

/** Fields tried in order; the first one every candidate fully specifies and that tells them apart wins. */
const FIELDS: Field[] = [
  { name: "opcode", lo: 0, width: 7 },
  { name: "funct3", lo: 12, width: 3 },
  { name: "funct7", lo: 25, width: 7 },
  { name: "funct6", lo: 26, width: 6 },
  { name: "funct5", lo: 27, width: 5 },
  { name: "fmt", lo: 25, width: 2 },
  { name: "rs2", lo: 20, width: 5 },
];

const fieldMask = (f: Field) => (((1 << f.width) - 1) << f.lo) >>> 0;

export function buildDecodeTree(instructions: readonly Instruction[], known = 0): DecodeNode {
  if (instructions.length === 0) return { kind: "illegal" };
  const only = instructions[0] as Instruction;
  if (instructions.length === 1) return { kind: "leaf", insn: only, checkMask: (only.mask & ~known) >>> 0 };
  for (const field of FIELDS) {
    const m = fieldMask(field);
    if ((known & m) === m) continue;
    if (!instructions.every((i) => (i.mask & m) >>> 0 === m)) continue;
    const groups = new Map<number, Instruction[]>();
    for (const i of instructions) {
      const value = ((i.match & m) >>> 0) >>> field.lo;
      const group = groups.get(value);
      if (group) group.push(i);
      else groups.set(value, [i]);
    }
    if (groups.size < 2) continue;
    const cases = new Map<number, DecodeNode>();
    for (const [value, group] of groups) cases.set(value, buildDecodeTree(group, (known | m) >>> 0));
    return { kind: "switch", field, cases };
  }
  throw new Error(`ambiguous encodings: ${instructions.map((i) => i.name).join(", ")}`);
}

/** Follows the tree for one instruction word (used by tests and the disassembler). */
export function decode(tree: DecodeNode, word: number): Instruction | null {
  let node = tree;
  for (;;) {
    if (node.kind === "illegal") return null;
    if (node.kind === "leaf") {
      return (word & node.checkMask) >>> 0 === (node.insn.match & node.checkMask) >>> 0 ? node.insn : null;
    }
    const value = (word >>> node.field.lo) & ((1 << node.field.width) - 1);
    const next = node.cases.get(value);
    if (!next) return null;
    node = next;
  }
}
