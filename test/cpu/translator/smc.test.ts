/**
 * Self-modifying code on the translating engine: an instruction that has run (translated) many times is
 * rewritten by a store — from its own page and from another page, followed by FENCE.I — or by a device
 * (a DMA-style write reported through GuestRam.written). Each program runs in lockstep with the
 * interpreter, and the final register shows the new instruction took effect.
 */
import assert from "node:assert/strict";
import { RiscvCpu } from "../../../src/cpu/riscv/cpu.js";
import type { Hart } from "../../../src/cpu/riscv/hart.js";
import { describe, it } from "../../support/test.js";
import { bType, iType, jal, Opc, SPIN, sType, uType } from "../interpreter/encode.js";
import { EmptyBus } from "../interpreter/harness.js";
import { lockstep } from "./lockstep.js";
import { cpuPair, RAM_BASE, startAt, writeWords, xOf } from "./machines.js";

const A0 = 10;
const A1 = 11;
const T0 = 5;
const T1 = 6;
const T2 = 7;
const addi = (rd: number, rs1: number, imm: number) => iType(Opc.OP_IMM, 0, rd, rs1, imm);
const sw = (rs1: number, rs2: number, imm: number) => sType(Opc.STORE, 2, rs1, rs2, imm);
const lw = (rd: number, rs1: number, imm: number) => iType(Opc.LOAD, 2, rd, rs1, imm);
const FENCE_I = iType(0x0f, 1, 0, 0, 0);
const bne = (a: number, b: number, off: number) => bType(1, a, b, off);

/**
 * Program: a0 = 0; 2 rounds of { t0 = 100; loop: TARGET (addi a0,a0,1); t0--; bnez t0, loop } with the
 * second round's TARGET replaced by `addi a0,a0,1000` (the word is taken from `patch`) by a store at
 * `storeAt` (which page is the point of the test), then FENCE.I. Expected a0 = 100 + 100 * 1000.
 */
function program(targetPage: number): { code: number; words: number[]; target: number; patchAt: number } {
  const code = RAM_BASE + 0x1000;
  const target = RAM_BASE + targetPage;
  const patchAt = code + 0x200;
  const delta = target - (code + 28);
  const hi = (delta + 0x800) >> 12;
  const words = [
    addi(A0, 0, 0),
    addi(T2, 0, 2),
    // round (index 2): call the loop
    addi(T0, 0, 100),
    jal(1, target - (code + 12)),
    addi(T2, T2, -1),
    uType(Opc.AUIPC, T1, 0),
    lw(A1, T1, patchAt - (code + 20)),
    uType(Opc.AUIPC, T1, hi),
    addi(T1, T1, delta - hi * 4096),
    sw(T1, A1, 0),
    FENCE_I,
    bne(T2, 0, (2 - 11) * 4),
    SPIN,
  ];
  return { code, words, target, patchAt };
}

describe("translator: self-modifying code", () => {
  for (const [name, page] of [
    ["same page", 0x1400],
    ["another page", 0x3000],
  ] as const) {
    it(`a rewritten translated instruction takes effect (${name}, FENCE.I)`, () => {
      const p = cpuPair(1);
      const { code, words, target, patchAt } = program(page);
      writeWords(p.both, code, words);
      writeWords(p.both, target, [
        addi(A0, A0, 1),
        addi(T0, T0, -1),
        bne(T0, 0, -8),
        iType(0x67, 0, 0, 1, 0),
      ]);
      writeWords(p.both, patchAt, [addi(A0, A0, 1000)]);
      startAt(p.both, code);
      const r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: 5000, compareRam: true });
      assert.equal(r.divergence, null);
      assert.equal(xOf(p.tr, A0), 100n + 100n * 1000n);
      assert.ok(r.translatedUnits > 0);
      assert.ok(p.translation.stats.translatedRetired > 100, "the loop ran translated");
      assert.ok(p.translation.stats.invalidations > 0, "the store invalidated the loop's translation");
    });
  }

  it("a store into the running block leaves it at once (no FENCE.I)", () => {
    const p = cpuPair(1);
    const code = RAM_BASE + 0x1000;
    // loop: t1 = &next; sw a1 -> next; next: addi a0,a0,1 (overwritten by a1 = addi a0,a0,7 after the
    // first pass); t0--; bnez loop.
    const words = [
      addi(T0, 0, 20),
      // loop (index 1):
      uType(Opc.AUIPC, T1, 0),
      sw(T1, A1, 12),
      addi(A0, A0, 1),
      addi(A0, A0, 1), // the store's target: pc(auipc) + 12
      addi(T0, T0, -1),
      bne(T0, 0, -20),
      SPIN,
    ];
    writeWords(p.both, code, words);
    startAt(p.both, code);
    for (const cpu of p.both) {
      const s = cpu.harts[0]?.state as Int32Array;
      s[2 * A1] = addi(A0, A0, 7) | 0;
    }
    const r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: 500, compareRam: true });
    assert.equal(r.divergence, null);
    assert.equal(xOf(p.tr, A0), 20n * 8n);
  });

  it("a device write over translated code (GuestRam.written) invalidates it", () => {
    const p = cpuPair(1);
    const code = RAM_BASE + 0x2000;
    writeWords(p.both, code, [addi(T0, 0, 50), addi(A0, A0, 1), addi(T0, T0, -1), bne(T0, 0, -8), SPIN]);
    startAt(p.both, code);
    let r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: 200, compareRam: true });
    assert.equal(r.divergence, null);
    assert.equal(xOf(p.tr, A0), 50n);
    const before = p.translation.stats.invalidations;
    assert.ok(p.translation.stats.blocks > 0);
    writeWords(p.both, code + 4, [addi(A0, A0, 3)]);
    assert.ok(p.translation.stats.invalidations > before);
    startAt(p.both, code);
    r = lockstep(p.ref, p.tr, p.translation, { maxInstructions: 200, compareRam: true });
    assert.equal(r.divergence, null);
    assert.equal(xOf(p.tr, A0), 150n);
  });
});

describe("translator: code rewritten by another hart", () => {
  it("a store from hart 1 through a TLB entry cached before the page held code invalidates hart 0's loop", () => {
    const cpu = new RiscvCpu({
      ramBase: RAM_BASE,
      ramSize: 1 << 20,
      harts: 2,
      bus: new EmptyBus(),
      clock: { ticks: () => 0 },
    });
    cpu.enableTranslation({ threshold: 1 });
    const [h0, h1] = cpu.harts as [Hart, Hart];
    const loop = RAM_BASE + 0x1000;
    const writer = RAM_BASE + 0x3000;
    // Hart 0: a0 += 1 forever (the addi is what hart 1 rewrites).
    writeWords([cpu], loop, [addi(A0, A0, 1), jal(0, -4)]);
    // Hart 1: warm its store TLB on hart 0's page, wait, then patch the addi to add 100.
    writeWords([cpu], writer, [
      sw(T1, 0, 0x100),
      addi(T2, 0, 200),
      addi(T2, T2, -1),
      bne(T2, 0, -4),
      sw(T1, A1, 0),
      SPIN,
    ]);
    h0.reset(loop | 0, 0);
    h1.reset(writer | 0, 0);
    h1.writeX(T1, loop | 0, 0);
    h1.writeX(A1, addi(A0, A0, 100) | 0, 0);
    cpu.runSlice(h1, 3);
    cpu.runSlice(h0, 1000);
    const before = Number(h0.state[2 * A0]);
    assert.ok(
      before > 0 && (cpu.translation?.stats.translatedRetired ?? 0) > 0,
      "hart 0's loop ran translated",
    );
    cpu.runSlice(h1, 1000);
    assert.ok((cpu.translation?.stats.invalidations ?? 0) > 0, "the patch invalidated the loop");
    cpu.runSlice(h0, 1000);
    // Each iteration is two instructions; after the patch each adds 100.
    assert.equal(Number(h0.state[2 * A0]), before + 500 * 100);
  });
});
