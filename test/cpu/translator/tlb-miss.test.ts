/**
 * Loads that miss the soft TLB inside translated code: the block leaves before the load (and, when the
 * load is its first instruction, says so, and the interpreter runs from there), so nothing is counted twice
 * and nothing is skipped. A loop reads the first word of 200 pages it has not touched yet, then reads them
 * again with the TLB warm; both engines must agree at every step and on the sum.
 */
import assert from "node:assert/strict";
import { describe, it } from "../../support/test.js";
import { bType, iType, Opc, rType, SPIN, uType } from "../interpreter/encode.js";
import { lockstep } from "./lockstep.js";
import { cpuPair, RAM_BASE, startAt, writeWords, xOf } from "./machines.js";

const A0 = 10;
const A1 = 11;
const S1 = 9;
const T0 = 5;
const T1 = 6;
const T2 = 7;
const T3 = 28;
const PAGES = 200;
const DATA = RAM_BASE + 0x10000;
const addi = (rd: number, rs1: number, imm: number) => iType(Opc.OP_IMM, 0, rd, rs1, imm);
const ld = (rd: number, rs1: number, imm: number) => iType(Opc.LOAD, 3, rd, rs1, imm);
const add = (rd: number, rs1: number, rs2: number) => rType(Opc.OP, 0, 0, rd, rs1, rs2);
const bne = (a: number, b: number, offset: number) => bType(1, a, b, offset);

/** Two rounds over the pages; `before`: instructions ahead of the load in the loop's block. */
function program(before: number[]): number[] {
  const loopAt = 5 * 4;
  const body = [...before, ld(T1, T0, 0), add(A0, A0, T1), add(T0, T0, T3)];
  const words = [
    addi(S1, 0, 2),
    uType(Opc.LUI, T3, 1),
    // round (index 2): t0 = DATA, t2 = PAGES
    // auipc at code + 8 (code = RAM_BASE + 0x1000): t0 = code + 8 + 0xf000 = DATA + 8
    uType(Opc.AUIPC, T0, 0xf),
    addi(T0, T0, -8),
    addi(T2, 0, PAGES),
    ...body,
    addi(T2, T2, -1),
  ];
  words.push(bne(T2, 0, loopAt - 4 * words.length));
  words.push(addi(S1, S1, -1));
  words.push(bne(S1, 0, 8 - 4 * words.length));
  words.push(SPIN);
  return words;
}

function run(before: number[], slice?: number) {
  const p = cpuPair(1);
  const code = RAM_BASE + 0x1000;
  writeWords(p.both, code, program(before));
  for (let k = 0; k < PAGES; k++) writeWords(p.both, DATA + k * 4096, [k + 1, 0]);
  startAt(p.both, code);
  const r = lockstep(p.ref, p.tr, p.translation, {
    maxInstructions: 2 * PAGES * (before.length + 5) + 20,
    compareRam: true,
    ...(slice === undefined ? {} : { slice }),
  });
  return { p, r };
}

const SUM = BigInt((PAGES * (PAGES + 1)) / 2);

describe("translator: loads that miss the TLB", () => {
  for (const [where, before] of [
    ["as the block's first instruction", []],
    ["in the middle of the block", [addi(A1, A1, 1), addi(A1, A1, 2)]],
  ] as const) {
    for (const mode of ["one unit at a time", "free-running"] as const) {
      it(`a load that misses the TLB ${where} runs once (${mode})`, () => {
        const { p, r } = run([...before], mode === "free-running" ? 64 : undefined);
        assert.equal(r.divergence, null);
        assert.equal(xOf(p.tr, A0), 2n * SUM, "each page's word added once per round");
        assert.equal(xOf(p.tr, A1), BigInt(2 * PAGES * 3 * (before.length / 2)));
        assert.equal(xOf(p.tr, S1), 0n, "both rounds finished");
        assert.ok(p.translation.stats.translatedRetired > PAGES, "the warm round ran translated");
      });
    }
  }
});
