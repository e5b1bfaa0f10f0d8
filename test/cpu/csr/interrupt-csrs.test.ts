import assert from "node:assert/strict";
import fc from "fast-check";
import { CsrEffect } from "../../../src/cpu/riscv/csr/csr-file.js";
import { pendingInterrupt } from "../../../src/cpu/riscv/csr/trap.js";
import { describe, it } from "../../support/test.js";
import { ALL_ONES, bit, makeHart, S } from "./harness.js";

const MIE = 0x304;
const MIP = 0x344;
const SIE = 0x104;
const SIP = 0x144;
const MIDELEG = 0x303;
const MENVCFG = 0x30a;
const STIMECMP = 0x14d;
const SSIP = bit(1);
const MSIP = bit(3);
const STIP = bit(5);
const MTIP = bit(7);
const SEIP = bit(9);
const MEIP = bit(11);
const STCE = bit(63);

describe("sie and sip views through mideleg", () => {
  it("sie reads and writes only delegated bits of mie (property)", () => {
    fc.assert(
      fc.property(fc.nat(0xfff), fc.nat(0xfff), fc.nat(0xfff), (deleg, mie, written) => {
        const h = makeHart();
        h.write(MIDELEG, BigInt(deleg));
        h.write(MIE, BigInt(mie));
        const delegated = BigInt(deleg) & 0x222n;
        const enabled = BigInt(mie) & 0xaaan;
        h.csr.priv = S;
        assert.equal(h.get(SIE), enabled & delegated);
        h.write(SIE, BigInt(written));
        h.csr.priv = 3;
        assert.equal(h.get(MIE), (enabled & ~delegated) | (BigInt(written) & delegated));
      }),
    );
  });

  it("sip shows only delegated pending bits", () => {
    const h = makeHart();
    h.write(MIP, SSIP | STIP | SEIP);
    for (const line of [3, 7, 11]) h.csr.setInterruptLine(line, true);
    assert.equal(h.get(SIP), 0n);
    h.write(MIDELEG, SSIP | SEIP);
    assert.equal(h.get(SIP), SSIP | SEIP);
    assert.equal(h.get(MIP), SSIP | MSIP | STIP | MTIP | SEIP | MEIP);
  });

  it("through sip, S-mode can set and clear SSIP only when delegated, and nothing else", () => {
    const h = makeHart();
    h.csr.priv = S;
    h.write(SIP, ALL_ONES);
    h.csr.priv = 3;
    assert.equal(h.get(MIP), 0n, "SSIP not delegated");
    h.write(MIDELEG, 0x222n);
    h.csr.priv = S;
    h.write(SIP, ALL_ONES);
    assert.equal(h.get(SIP), SSIP);
    h.write(SIP, 0n);
    assert.equal(h.get(SIP), 0n);
  });
});

describe("mip", () => {
  it("M-mode writes SSIP, STIP and SEIP; the M bits ignore writes", () => {
    const h = makeHart();
    h.write(MIP, ALL_ONES);
    assert.equal(h.get(MIP), SSIP | STIP | SEIP);
    h.write(MIP, 0n);
    assert.equal(h.get(MIP), 0n);
  });

  it("device lines set and clear MSIP, MTIP, MEIP, SEIP, STIP; other bits are ignored", () => {
    const h = makeHart();
    for (const line of [3, 7, 11, 9, 5, 1, 13, 0]) h.csr.setInterruptLine(line, true);
    assert.equal(h.get(MIP), MSIP | MTIP | MEIP | SEIP | STIP);
    h.csr.setInterruptLine(7, false);
    assert.equal(h.get(MIP), MSIP | MEIP | SEIP | STIP);
    h.write(MIP, 0n);
    assert.equal(h.get(MIP), MSIP | MEIP | SEIP | STIP, "writes do not clear lines");
  });

  it("SEIP reads as software bit OR line", () => {
    const h = makeHart();
    h.write(MIP, SEIP);
    h.csr.setInterruptLine(9, true);
    h.write(MIP, 0n);
    assert.equal(h.get(MIP), SEIP, "line still high");
    h.csr.setInterruptLine(9, false);
    assert.equal(h.get(MIP), 0n);
  });

  it("CSRRS on mip while the SEIP line is high does not latch a software SEIP", () => {
    const h = makeHart();
    h.csr.setInterruptLine(9, true);
    // csrs mip, SSIP: read (sees SEIP from the line), then write the merged value.
    const old = h.get(MIP);
    h.write(MIP, old | SSIP);
    h.csr.setInterruptLine(9, false);
    assert.equal(h.get(MIP), SSIP);
  });

  it("a software SEIP already set survives a CSRRS while the line is high", () => {
    const h = makeHart();
    h.write(MIP, SEIP);
    h.csr.setInterruptLine(9, true);
    h.write(MIP, h.get(MIP) | SSIP);
    h.csr.setInterruptLine(9, false);
    assert.equal(h.get(MIP), SEIP | SSIP);
  });

  it("interrupt CSR writes report CHECK_INTERRUPTS", () => {
    const h = makeHart();
    for (const num of [MIE, MIP, MIDELEG, SIE, SIP, STIMECMP]) {
      assert.equal(h.write(num, 0n), CsrEffect.CHECK_INTERRUPTS, num.toString(16));
    }
  });
});

describe("Sstc", () => {
  it("with STCE = 0, STIP is software-written and stimecmp does nothing", () => {
    const h = makeHart();
    h.write(STIMECMP, 0n);
    assert.equal(h.get(MIP) & STIP, 0n);
    h.write(MIP, STIP);
    assert.equal(h.get(MIP) & STIP, STIP);
  });

  it("with STCE = 1, STIP is time >= stimecmp and ignores mip writes", () => {
    const h = makeHart();
    h.write(MIP, STIP);
    assert.equal(h.write(MENVCFG, STCE), CsrEffect.CHECK_INTERRUPTS);
    assert.equal(h.write(MENVCFG, STCE), CsrEffect.NONE);
    assert.equal(h.get(MIP) & STIP, 0n, "stimecmp resets to all ones; the software bit no longer counts");
    h.counters.now = 1000;
    h.write(STIMECMP, 1001n);
    assert.equal(h.get(MIP) & STIP, 0n);
    h.counters.now = 1001;
    assert.equal(h.get(MIP) & STIP, STIP);
    h.write(MIP, 0n);
    assert.equal(h.get(MIP) & STIP, STIP, "read-only while Sstc drives it");
    h.write(STIMECMP, ALL_ONES);
    assert.equal(h.get(MIP) & STIP, 0n);
  });

  it("compares unsigned over 64 bits (property)", () => {
    fc.assert(
      fc.property(fc.nat(2 ** 53 - 1), fc.bigInt({ min: 0n, max: ALL_ONES }), (now, cmp) => {
        const h = makeHart();
        h.write(MENVCFG, STCE);
        h.write(STIMECMP, cmp);
        h.counters.now = now;
        assert.equal((h.get(MIP) & STIP) !== 0n, BigInt(now) >= cmp);
      }),
    );
  });

  it("comparison edges around the 32-bit boundary", () => {
    const h = makeHart();
    h.write(MENVCFG, STCE);
    const cases: [now: number, cmp: bigint, fires: boolean][] = [
      [2 ** 32, 0xffff_ffffn, true],
      [2 ** 32 - 1, 0x1_0000_0000n, false],
      [2 ** 32 + 5, 0x1_0000_0005n, true],
      [2 ** 32 + 4, 0x1_0000_0005n, false],
      [2 ** 52, 0x8000_0000_0000_0000n, false],
    ];
    for (const [now, cmp, fires] of cases) {
      h.counters.now = now;
      h.write(STIMECMP, cmp);
      assert.equal((h.get(MIP) & STIP) !== 0n, fires, `${now} vs ${cmp}`);
    }
  });

  it("stimecmpDeadline reports the compare value while STCE = 1", () => {
    const h = makeHart();
    h.write(STIMECMP, 12345n);
    assert.equal(h.csr.stimecmpDeadline, Number.POSITIVE_INFINITY);
    h.write(MENVCFG, STCE);
    assert.equal(h.csr.stimecmpDeadline, 12345);
    h.write(STIMECMP, 0x1_0000_0002n);
    assert.equal(h.csr.stimecmpDeadline, 2 ** 32 + 2);
  });

  it("a delegated STIP from stimecmp is taken in U-mode", () => {
    const h = makeHart();
    h.write(MENVCFG, STCE);
    h.write(MIDELEG, STIP);
    h.write(MIE, STIP);
    h.write(STIMECMP, 50n);
    h.csr.priv = 0;
    h.counters.now = 49;
    assert.equal(pendingInterrupt(h.csr), -1);
    h.counters.now = 50;
    assert.equal(pendingInterrupt(h.csr), 5);
  });
});
