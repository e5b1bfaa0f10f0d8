/**
 * Property: any straight-line sequence of RV64IM computation, loads and stores (x0 as source and
 * destination included, misaligned and page-crossing accesses included) runs the same translated as
 * interpreted. The sequence is the body of a loop run three times, so it is both a block's first
 * (interpreted) run and its translated self-loop; registers start from random values. The seed is the
 * suite's (FC_SEED, printed by scripts/run-tests.js).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import { bType, iType, Opc, rType, SPIN, shiftImm, sType, uType } from "../interpreter/encode.js";
import { lockstep } from "./lockstep.js";
import { cpuPair, RAM_BASE, setX, startAt, writeWords } from "./machines.js";

const BASE = 30;
const COUNTER = 31;
const DATA = RAM_BASE + 0x8000;

const reg = fc.integer({ min: 0, max: 29 });
const R_OPS: [number, number, number][] = [
  [Opc.OP, 0, 0x00],
  [Opc.OP, 0, 0x20],
  [Opc.OP, 1, 0],
  [Opc.OP, 2, 0],
  [Opc.OP, 3, 0],
  [Opc.OP, 4, 0],
  [Opc.OP, 5, 0],
  [Opc.OP, 5, 0x20],
  [Opc.OP, 6, 0],
  [Opc.OP, 7, 0],
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((f3): [number, number, number] => [Opc.OP, f3, 1]),
  [Opc.OP_32, 0, 0],
  [Opc.OP_32, 0, 0x20],
  [Opc.OP_32, 1, 0],
  [Opc.OP_32, 5, 0],
  [Opc.OP_32, 5, 0x20],
  ...[0, 4, 5, 6, 7].map((f3): [number, number, number] => [Opc.OP_32, f3, 1]),
];

const rInsn = fc
  .tuple(fc.constantFrom(...R_OPS), reg, reg, reg)
  .map(([[op, f3, f7], rd, a, b]) => rType(op, f3, f7, rd, a, b));
const iInsn = fc
  .tuple(fc.constantFrom(0, 2, 3, 4, 6, 7), reg, reg, fc.integer({ min: -2048, max: 2047 }))
  .map(([f3, rd, a, imm]) => iType(Opc.OP_IMM, f3, rd, a, imm));
const shift = fc
  .tuple(fc.constantFrom([1, 0], [5, 0], [5, 0x10]), reg, reg, fc.integer({ min: 0, max: 63 }))
  .map(([[f3, high], rd, a, sh]) => shiftImm(Opc.OP_IMM, f3 as number, high as number, 6, rd, a, sh));
const word = fc
  .tuple(reg, reg, fc.integer({ min: -2048, max: 2047 }))
  .map(([rd, a, imm]) => iType(Opc.OP_IMM_32, 0, rd, a, imm));
const upper = fc
  .tuple(fc.constantFrom(Opc.LUI, Opc.AUIPC), reg, fc.integer({ min: 0, max: 0xfffff }))
  .map(([op, rd, imm]) => uType(op, rd, imm));
/** Loads and stores at base + offset: offsets near the end of the data page cross into the next. */
const offset = fc.integer({ min: 0, max: 4095 + 8 }).map((o) => o - 2048);
const load = fc
  .tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 6), reg, offset)
  .map(([f3, rd, imm]) => iType(Opc.LOAD, f3, rd, BASE, Math.min(imm, 2047)));
const store = fc
  .tuple(fc.constantFrom(0, 1, 2, 3), reg, offset)
  .map(([f3, src, imm]) => sType(Opc.STORE, f3, BASE, src, Math.min(imm, 2047)));
const insn = fc.oneof(rInsn, iInsn, shift, word, upper, load, store);
const value = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constantFrom(0n, 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 0xffffffffn, 0x80000000n),
);

describe("translator: random straight-line code", () => {
  it("runs the same translated as interpreted (lockstep)", { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(
        fc.array(insn, { minLength: 1, maxLength: 40 }),
        fc.array(value, { minLength: 30, maxLength: 30 }),
        (body, values) => {
          const p = cpuPair(1);
          const code = RAM_BASE + 0x1000;
          const loop = [
            ...body,
            iType(Opc.OP_IMM, 0, COUNTER, COUNTER, -1),
            bType(1, COUNTER, 0, -4 * (body.length + 1)),
            SPIN,
          ];
          writeWords(p.both, code, loop);
          startAt(p.both, code);
          values.forEach((v, r) => {
            if (r > 0) setX(p.both, r, v);
          });
          setX(p.both, BASE, BigInt(DATA + 2048));
          setX(p.both, COUNTER, 3n);
          const r = lockstep(p.ref, p.tr, p.translation, {
            maxInstructions: 3 * (body.length + 2) + 2,
            compareRam: true,
          });
          assert.equal(r.divergence, null);
          assert.ok(p.translation.stats.translatedRetired > 0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
