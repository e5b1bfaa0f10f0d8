/**
 * The exit map of `--stats` (translation-exits): every pc handed back to TypeScript is counted under
 * the reason translated code could not run it, and an instruction the translator leaves to the
 * interpreter is named by what it does.
 */
import assert from "node:assert/strict";
import { instructionKind } from "../../../src/cpu/riscv/translator/exit-reasons.js";
import { describe, it } from "../../support/test.js";
import { bType, iType, Opc, rType, SPIN, uType } from "../interpreter/encode.js";
import { lockstep } from "./lockstep.js";
import { cpuPair, hart0, RAM_BASE, startAt, writeWords, xOf } from "./machines.js";

const T0 = 5;
const T1 = 6;
const T2 = 7;
const csrrs = (rd: number, csr: number, rs1: number) => iType(0x73, 2, rd, rs1, csr);
const csrrw = (rd: number, csr: number, rs1: number) => iType(0x73, 1, rd, rs1, csr);
const csrrc = (rd: number, csr: number, rs1: number) => iType(0x73, 3, rd, rs1, csr);
const bytesOf = (word: number) => new Uint8Array(new Uint32Array([word]).buffer);

describe("translator exit map", () => {
  it("names the instructions the interpreter keeps", { timeout: 10_000 }, () => {
    assert.equal(instructionKind(bytesOf(csrrs(T1, 0x340, 0)), 0), "csr-r-mscratch");
    assert.equal(instructionKind(bytesOf(csrrw(0, 0x100, T0)), 0), "csr-w-sstatus");
    assert.equal(instructionKind(bytesOf(csrrs(0, 0x100, T0)), 0), "csr-w-sstatus");
    assert.equal(instructionKind(bytesOf(0x10500073), 0), "wfi");
    assert.equal(instructionKind(bytesOf(0x12000073), 0), "sfence.vma");
    // fadd.d f1, f2, f3
    assert.equal(instructionKind(bytesOf(0x023100d3), 0), "fpu");
    assert.equal(instructionKind(bytesOf(0x00000073).subarray(0, 2), 0), "page-end");
  });

  it("counts one exit per interpreted CSR write in a loop; plain CSR accesses stay in blocks", {
    timeout: 10_000,
  }, () => {
    const { tr, translation } = cpuPair(1);
    const code = RAM_BASE + 0x1000;
    const rounds = 50;
    writeWords([tr], code, [
      iType(Opc.OP_IMM, 0, T0, 0, 77),
      csrrw(0, 0x340, T0),
      iType(Opc.OP_IMM, 0, T0, 0, rounds),
      // loop: t1 = mscratch (in the block); mstatus &= ~t2 (t2 = 0: a write all the same, not in blocks)
      csrrs(T1, 0x340, 0),
      csrrc(0, 0x300, T2),
      iType(Opc.OP_IMM, 0, T0, T0, -1),
      bType(1, T0, 0, -12),
      SPIN,
    ]);
    startAt([tr], code);
    const spin = (code + 28) | 0;
    for (let i = 0; i < 200 && hart0(tr).pcLo !== spin; i++) tr.runSlice(hart0(tr), 1000);
    assert.equal(hart0(tr).pcLo, spin);
    assert.equal(xOf(tr, T0), 0n);
    assert.equal(xOf(tr, T1), 77n);
    // The first instructions are the interpreter's (it fills the fetch TLB) up to the CSR write it ends at.
    assert.equal(translation.exits.events.get("fetch-tlb-miss"), 1);
    assert.equal(translation.exits.events.get("csr-w-mstatus"), rounds);
    assert.equal(translation.exits.events.get("csr-r-mscratch"), undefined);
    assert.ok(translation.stats.translatedRetired > 0);
  });

  it("runs FPU arithmetic and fflags reads inside blocks, in lockstep with the interpreter", {
    timeout: 10_000,
  }, () => {
    const p = cpuPair(1);
    const code = RAM_BASE + 0x1000;
    const A0 = 10;
    const fcvtDL = (rd: number, rs1: number) => rType(0x53, 7, 0x69, rd, rs1, 2);
    const fcvtLD = (rd: number, rs1: number) => rType(0x53, 1, 0x61, rd, rs1, 2);
    const faddD = (rd: number, a: number, b: number) => rType(0x53, 7, 0x01, rd, a, b);
    writeWords(p.both, code, [
      uType(0x37, T0, 2), // t0 = 0x2000: mstatus.FS = Initial
      csrrs(0, 0x300, T0),
      iType(Opc.OP_IMM, 0, T0, 0, 3),
      fcvtDL(1, T0),
      iType(Opc.OP_IMM, 0, T1, 0, 40),
      fcvtDL(2, 0),
      // loop: f2 += f1; t2 = fflags; t1--
      faddD(2, 2, 1),
      csrrs(T2, 0x001, 0),
      iType(Opc.OP_IMM, 0, T1, T1, -1),
      bType(1, T1, 0, -12),
      fcvtLD(A0, 2),
      SPIN,
    ]);
    startAt(p.both, code);
    const r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: 200, compareRam: true });
    assert.equal(r.divergence, null);
    assert.equal(xOf(p.tr, A0), 120n);
    assert.equal(p.translation.exits.events.get("fpu"), undefined);
    assert.equal(p.translation.exits.events.get("csr-r-fflags"), undefined);
    // The loop (40 passes of 4 instructions) runs as one block that loops to itself.
    const retired = p.translation.stats.translatedRetired;
    assert.ok(retired >= 160, `${retired} instructions translated`);
  });
});
