/**
 * The translator's wasm cap: past it the least recently entered blocks are evicted. A program calls a
 * hot subroutine (a counted loop) between cold blocks that each run once; under a cap that holds only a
 * few blocks, the cold ones are evicted and the hot ones stay, so nothing is compiled twice. Run in
 * lockstep with the interpreter (every unit its own slice, so entry stamps order every block).
 */
import assert from "node:assert/strict";
import { describe, it } from "../../support/test.js";
import { bType, iType, jal, Opc, SPIN } from "../interpreter/encode.js";
import { lockstep } from "./lockstep.js";
import { cpuPair, RAM_BASE, startAt, writeWords, xOf } from "./machines.js";

const RA = 1;
const T0 = 5;
const A0 = 10;
const addi = (rd: number, rs1: number, imm: number) => iType(Opc.OP_IMM, 0, rd, rs1, imm);
const bne = (a: number, b: number, off: number) => bType(1, a, b, off);
const ret = iType(0x67, 0, 0, RA, 0);

describe("translator: least recently used eviction", () => {
  it("evicts the cold blocks and keeps the hot ones under a small cap", () => {
    const cold = 40;
    const p = cpuPair(1, { maxWasmBytes: 8 << 10 });
    const code = RAM_BASE + 0x1000;
    const hot = RAM_BASE + 0x3000;
    const words: number[] = [];
    for (let k = 0; k < cold; k++) {
      const at = code + words.length * 4;
      words.push(addi(A0, A0, 1), jal(RA, hot - (at + 4)));
    }
    words.push(SPIN);
    writeWords(p.both, code, words);
    // hot: t0 = 3; loop: t0--; bnez t0, loop; ret
    writeWords(p.both, hot, [addi(T0, 0, 3), addi(T0, T0, -1), bne(T0, 0, -4), ret]);
    startAt(p.both, code);
    const r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: cold * 12, compareRam: true });
    assert.equal(r.divergence, null);
    assert.equal(xOf(p.tr, A0), BigInt(cold));
    const s = p.translation.stats;
    console.log(
      `${s.blocks} blocks compiled, ${s.evictions} evicted, ${Math.round(s.liveWasmBytes)} bytes live`,
    );
    assert.ok(s.evictions > 0, "the cap made room by evicting");
    assert.ok(s.liveWasmBytes <= 8 << 10);
    // Each cold block once, and the hot subroutine's blocks (entry, loop, return) once: none came back.
    assert.ok(s.blocks <= cold + 4, `${s.blocks} blocks compiled for ${cold} cold ones and the hot loop`);
  });
});
