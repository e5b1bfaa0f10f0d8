import assert from "node:assert/strict";
import { CsrEffect } from "../../../src/cpu/riscv/csr/csr-file.js";
import { describe, it } from "../../support/test.js";
import { ALL_ONES, makeHart, S } from "./harness.js";

const SATP = 0x180;

function satp(mode: bigint, asid: bigint, ppn: bigint): bigint {
  return (mode << 60n) | (asid << 44n) | ppn;
}

describe("satp", () => {
  it("Sv39 and Sv48 are stored whole, with 16 ASID bits and 44 PPN bits", () => {
    const h = makeHart();
    for (const mode of [8n, 9n]) {
      const value = satp(mode, 0xffffn, 0xfff_ffff_ffffn);
      assert.equal(h.write(SATP, value), CsrEffect.FLUSH_TLB);
      assert.equal(h.get(SATP), value);
      assert.equal(h.csr.satpMode, Number(mode));
      assert.equal(h.csr.asid, 0xffff);
      assert.equal(h.csr.satpPpn, 0xfff_ffff_ffff);
    }
  });

  it("decodes mode, ASID and root PPN for translation", () => {
    const h = makeHart();
    h.write(SATP, satp(8n, 0x1234n, 0x8_0123n));
    assert.deepEqual([h.csr.satpMode, h.csr.asid, h.csr.satpPpn], [8, 0x1234, 0x8_0123]);
  });

  it("writes naming an unsupported mode change nothing", () => {
    const h = makeHart();
    const before = satp(9n, 7n, 0x8_0000n);
    h.write(SATP, before);
    for (let mode = 1n; mode < 16n; mode++) {
      if (mode === 8n || mode === 9n) continue;
      assert.equal(h.write(SATP, satp(mode, 1n, 0x1234n)), CsrEffect.NONE, `mode ${mode}`);
      assert.equal(h.get(SATP), before);
      assert.equal(h.csr.satpMode, 9);
    }
  });

  it("Bare clears the whole register", () => {
    const h = makeHart();
    h.write(SATP, satp(8n, 3n, 0x8_0000n));
    assert.equal(h.write(SATP, satp(0n, 3n, 0x8_0000n)), CsrEffect.FLUSH_TLB);
    assert.equal(h.get(SATP), 0n);
    assert.deepEqual([h.csr.satpMode, h.csr.asid, h.csr.satpPpn], [0, 0, 0]);
  });

  it("is writable from S-mode", () => {
    const h = makeHart();
    h.csr.priv = S;
    assert.equal(h.write(SATP, satp(8n, 0n, 5n)), CsrEffect.FLUSH_TLB);
    assert.equal(h.get(SATP), satp(8n, 0n, 5n));
  });
});

describe("pmpcfg and pmpaddr", () => {
  it("pmpcfg0 packs entries 0-7 and pmpcfg2 entries 8-15, byte per entry", () => {
    const h = makeHart();
    // R, RW, X, RWX with A = TOR/NA4/NAPOT; bits 6:5 are not writable.
    const cfg0 = 0x1f_0d_19_0b_07_63_0f_01n;
    assert.equal(h.write(0x3a0, cfg0), CsrEffect.FLUSH_TLB);
    const expected = cfg0 & 0x9f9f_9f9f_9f9f_9f9fn;
    assert.equal(h.get(0x3a0), expected);
    assert.equal(h.pmp.cfg[0], 0x01);
    assert.equal(h.pmp.cfg[2], 0x63 & 0x9f);
    assert.equal(h.pmp.cfg[7], 0x1f);
    h.write(0x3a2, 0x0100n);
    assert.equal(h.pmp.cfg[9], 1);
    assert.equal(h.get(0x3a2), 0x0100n);
  });

  it("pmpcfg4-14 (entries 16-63) read 0 and ignore writes", () => {
    const h = makeHart();
    for (let num = 0x3a4; num <= 0x3ae; num += 2) {
      assert.equal(h.write(num, ALL_ONES), CsrEffect.NONE);
      assert.equal(h.get(num), 0n);
    }
  });

  it("pmpaddr0-15 go to the PMP (54 bits), 16-63 read 0", () => {
    const h = makeHart();
    assert.equal(h.write(0x3b0, ALL_ONES), CsrEffect.FLUSH_TLB);
    assert.equal(h.get(0x3b0), (1n << 54n) - 1n);
    h.write(0x3bf, 0x1234_5678_9an);
    assert.equal(h.get(0x3bf), 0x1234_5678_9an);
    assert.equal(h.pmp.addrLo[15], 0x3456_789a);
    for (const num of [0x3c0, 0x3ef]) {
      assert.equal(h.write(num, ALL_ONES), CsrEffect.NONE);
      assert.equal(h.get(num), 0n);
    }
  });

  it("locked entries keep their values (the PMP's rule, seen through the CSRs)", () => {
    const h = makeHart();
    h.write(0x3b0, 0x100n);
    h.write(0x3a0, 0x80n | 0x08n | 0x01n); // L, TOR, R
    h.write(0x3a0, 0n);
    assert.equal(h.get(0x3a0) & 0xffn, 0x89n);
    h.write(0x3b0, 0x200n);
    assert.equal(h.get(0x3b0), 0x100n);
  });
});
