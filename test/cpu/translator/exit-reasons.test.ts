/**
 * The exit map of `--stats` (translation-exits): every pc handed back to TypeScript is counted under
 * the reason translated code could not run it, and an instruction the translator leaves to the
 * interpreter is named by what it does.
 */
import assert from "node:assert/strict";
import { instructionKind } from "../../../src/cpu/riscv/translator/exit-reasons.js";
import { describe, it } from "../../support/test.js";
import { bType, iType, Opc, SPIN } from "../interpreter/encode.js";
import { cpuPair, hart0, RAM_BASE, startAt, writeWords, xOf } from "./machines.js";

const T0 = 5;
const T1 = 6;
const csrrs = (rd: number, csr: number, rs1: number) => iType(0x73, 2, rd, rs1, csr);
const csrrw = (rd: number, csr: number, rs1: number) => iType(0x73, 1, rd, rs1, csr);
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

  it("counts one exit per interpreted CSR read in a translated loop", { timeout: 10_000 }, () => {
    const { tr, translation } = cpuPair(1);
    const code = RAM_BASE + 0x1000;
    const rounds = 50;
    writeWords([tr], code, [
      iType(Opc.OP_IMM, 0, T0, 0, rounds),
      csrrs(T1, 0x340, 0),
      iType(Opc.OP_IMM, 0, T0, T0, -1),
      bType(1, T0, 0, -8),
      SPIN,
    ]);
    startAt([tr], code);
    for (let i = 0; i < 100 && hart0(tr).pcLo !== ((code + 16) | 0); i++) tr.runSlice(hart0(tr), 1000);
    assert.equal(xOf(tr, T0), 0n);
    // The first pass is the interpreter's anyway (it fills the fetch TLB, and runs on up to a jump).
    assert.equal(translation.exits.events.get("fetch-tlb-miss"), 1);
    assert.equal(translation.exits.events.get("csr-r-mscratch"), rounds - 1);
    assert.ok(translation.stats.translatedRetired > 0);
  });
});
