import assert from "node:assert/strict";
import { CsrEffect } from "../../../src/cpu/riscv/csr/csr-file.js";
import { enterTrap, mret, sfenceVmaIllegal, sret, wfiIllegal } from "../../../src/cpu/riscv/csr/trap.js";
import { describe, it } from "../../support/test.js";
import { bit, type Hart, join, M, makeHart, PRIV_NAMES, PRIVS, S, SLOT, split, U } from "./harness.js";

const MSTATUS = 0x300;
const SIE = bit(1);
const MIE = bit(3);
const SPIE = bit(5);
const MPIE = bit(7);
const SPP = bit(8);
const MPRV = bit(17);
const TVM = bit(20);
const TW = bit(21);
const TSR = bit(22);
const INTERRUPT = bit(63);
const pc = new Int32Array(2);

function trap(h: Hart, cause: number, interrupt: boolean, epc: bigint, tval: bigint): number {
  const [epcLo, epcHi] = split(epc);
  const [tvalLo, tvalHi] = split(tval);
  return enterTrap(h.csr, cause, interrupt, epcLo, epcHi, tvalLo, tvalHi, pc);
}

function newPc(): bigint {
  return join(pc[0], pc[1]);
}

function mpp(h: Hart): number {
  return Number((h.get(MSTATUS) >> 11n) & 3n);
}

describe("trap delegation matrix", () => {
  const exceptions = Array.from({ length: 16 }, (_, i) => i);
  const interrupts = [1, 3, 5, 7, 9, 11];
  for (const interrupt of [false, true]) {
    for (const cause of interrupt ? interrupts : exceptions) {
      it(`${interrupt ? "interrupt" : "exception"} ${cause}`, () => {
        for (const priv of PRIVS) {
          for (const delegate of [false, true]) {
            const h = makeHart();
            h.write(interrupt ? 0x303 : 0x302, delegate ? bit(cause) : 0n);
            h.write(0x305, 0x8000_0000n);
            h.write(0x105, 0x4000_0000n);
            h.write(MSTATUS, MIE | SIE);
            h.csr.priv = priv;
            // Delegable: S-level interrupts, and exceptions other than ecall from M.
            const delegable = interrupt ? [1, 5, 9].includes(cause) : cause !== 11;
            const toS = delegate && delegable && priv !== M;
            const where = `${PRIV_NAMES[priv]} delegate=${delegate}`;

            assert.equal(trap(h, cause, interrupt, 0x1234n, 0xbadn), CsrEffect.TLB_CONTEXT);
            assert.equal(h.csr.priv, toS ? S : M, where);
            assert.equal(h.block[SLOT.PRIV], toS ? S : M);
            const [epc, causeCsr, tval, other] = toS
              ? [0x141, 0x142, 0x143, 0x341]
              : [0x341, 0x342, 0x343, 0x141];
            h.csr.priv = M;
            assert.equal(h.get(epc), 0x1234n, where);
            assert.equal(h.get(causeCsr), BigInt(cause) | (interrupt ? INTERRUPT : 0n), where);
            assert.equal(h.get(tval), 0xbadn, where);
            assert.equal(h.get(other), 0n, `${where}: the other level's registers are untouched`);
            assert.equal(newPc(), toS ? 0x4000_0000n : 0x8000_0000n, where);

            const status = h.get(MSTATUS);
            if (toS) {
              assert.equal(
                status & (SIE | SPIE | SPP | MIE | MPIE),
                SPIE | MIE | (priv === S ? SPP : 0n),
                where,
              );
            } else {
              assert.equal(status & (SIE | MIE | MPIE), SIE | MPIE, where);
              assert.equal(mpp(h), priv, where);
            }
          }
        }
      });
    }
  }

  it("causes beyond 31 never delegate (no shift wrap-around)", () => {
    const h = makeHart();
    h.write(0x302, bit(8));
    h.csr.priv = U;
    trap(h, 40, false, 0n, 0n);
    assert.equal(h.csr.priv, M);
    assert.equal(h.get(0x342), 40n);
  });

  it("xPIE records a cleared xIE, and the epc keeps all 64 bits minus bit 0", () => {
    const h = makeHart();
    h.write(0x302, bit(8));
    h.csr.priv = U;
    trap(h, 8, false, 0xffff_ffff_ffff_fffen, 0xffff_0000_0000_0001n);
    assert.equal(h.csr.priv, S);
    h.csr.priv = M;
    assert.equal(h.get(MSTATUS) & (SIE | SPIE | SPP), 0n);
    assert.equal(h.get(0x141), 0xffff_ffff_ffff_fffen);
    assert.equal(h.get(0x143), 0xffff_0000_0000_0001n);
  });
});

describe("xtvec modes", () => {
  for (const [name, tvec, deleg, priv] of [
    ["mtvec", 0x305, 0x303, M],
    ["stvec", 0x105, 0x303, U],
  ] as const) {
    it(`${name} direct: every trap goes to BASE`, () => {
      const h = makeHart();
      h.write(deleg, 0x222n);
      h.write(tvec, 0x8000_0100n);
      h.csr.priv = priv;
      trap(h, 9, true, 0n, 0n);
      assert.equal(newPc(), 0x8000_0100n);
    });

    it(`${name} vectored: interrupts go to BASE + 4 * cause, exceptions to BASE`, () => {
      for (const cause of [1, 5, 9]) {
        const h = makeHart();
        h.write(deleg, 0x222n);
        h.write(0x302, 0xffffn);
        h.write(tvec, 0x8000_0101n);
        h.csr.priv = priv;
        trap(h, cause, true, 0n, 0n);
        assert.equal(newPc(), 0x8000_0100n + 4n * BigInt(cause));
        h.csr.priv = priv;
        trap(h, 2, false, 0n, 0n);
        assert.equal(newPc(), 0x8000_0100n);
      }
    });
  }

  it("vector offsets carry into the high word", () => {
    const h = makeHart();
    h.write(0x305, 0x1_ffff_fff1n);
    h.csr.priv = U;
    trap(h, 11, true, 0n, 0n);
    assert.equal(newPc(), 0x1_ffff_fff0n + 44n);
  });
});

describe("MRET", () => {
  for (const target of PRIVS) {
    it(`returns to MPP = ${PRIV_NAMES[target]}: MIE from MPIE, MPIE = 1, MPP = U`, () => {
      for (const mpie of [false, true]) {
        const h = makeHart();
        h.write(MSTATUS, (BigInt(target) << 11n) | (mpie ? MPIE : 0n) | MPRV);
        h.write(0x341, 0x8020_0000n);
        assert.equal(mret(h.csr, pc), CsrEffect.TLB_CONTEXT | CsrEffect.CHECK_INTERRUPTS);
        assert.equal(h.csr.priv, target);
        assert.equal(newPc(), 0x8020_0000n);
        h.csr.priv = M;
        const status = h.get(MSTATUS);
        assert.equal(status & MIE, mpie ? MIE : 0n);
        assert.equal(status & MPIE, MPIE);
        assert.equal(mpp(h), U);
        assert.equal(status & MPRV, target === M ? MPRV : 0n, "MPRV cleared unless returning to M");
      }
    });
  }

  it("is illegal below M-mode", () => {
    for (const priv of [U, S]) {
      const h = makeHart();
      h.csr.priv = priv;
      assert.equal(mret(h.csr, pc), -1);
      assert.equal(h.csr.priv, priv);
    }
  });
});

describe("SRET", () => {
  for (const target of [U, S]) {
    it(`returns to SPP = ${PRIV_NAMES[target]}: SIE from SPIE, SPIE = 1, SPP = U, MPRV = 0`, () => {
      for (const spie of [false, true]) {
        for (const from of [S, M]) {
          const h = makeHart();
          h.write(MSTATUS, (target === S ? SPP : 0n) | (spie ? SPIE : 0n) | MPRV);
          h.write(0x141, 0x1000n);
          h.csr.priv = from;
          assert.equal(sret(h.csr, pc), CsrEffect.TLB_CONTEXT | CsrEffect.CHECK_INTERRUPTS);
          assert.equal(h.csr.priv, target);
          assert.equal(newPc(), 0x1000n);
          h.csr.priv = M;
          assert.equal(h.get(MSTATUS) & (SIE | SPIE | SPP | MPRV), SPIE | (spie ? SIE : 0n));
        }
      }
    });
  }

  it("is illegal in U-mode, and in S-mode with TSR = 1 (not in M)", () => {
    const cases: [priv: number, tsr: boolean, illegal: boolean][] = [
      [U, false, true],
      [U, true, true],
      [S, false, false],
      [S, true, true],
      [M, true, false],
    ];
    for (const [priv, tsr, illegal] of cases) {
      const h = makeHart();
      h.write(MSTATUS, tsr ? TSR : 0n);
      h.csr.priv = priv as typeof U;
      assert.equal(sret(h.csr, pc) === -1, illegal, `${PRIV_NAMES[priv]} TSR=${tsr}`);
    }
  });
});

describe("WFI and SFENCE.VMA permissions", () => {
  it("matrix over privilege and TW/TVM", () => {
    for (const priv of PRIVS) {
      for (const set of [false, true]) {
        const h = makeHart();
        h.write(MSTATUS, set ? TW | TVM : 0n);
        h.csr.priv = priv;
        const where = `${PRIV_NAMES[priv]} TW=TVM=${set}`;
        // U-mode WFI is always illegal once S-mode exists (spec 3.1.6.5, time limit zero here).
        assert.equal(wfiIllegal(h.csr), priv === U || (priv === S && set), where);
        assert.equal(sfenceVmaIllegal(h.csr), priv === U || (priv === S && set), where);
      }
    }
  });
});

describe("trap round trip", () => {
  it("U ecall to delegated S handler and back with SRET", () => {
    const h = makeHart();
    h.write(0x302, bit(8));
    h.write(0x105, 0x8000_2000n);
    h.write(MSTATUS, SIE);
    h.csr.priv = U;
    trap(h, 8, false, 0x1_0000n, 0n);
    assert.equal(h.csr.priv, S);
    assert.equal(newPc(), 0x8000_2000n);
    assert.equal(h.get(0x141), 0x1_0000n);
    h.write(0x141, 0x1_0004n);
    sret(h.csr, pc);
    assert.equal(h.csr.priv, U);
    assert.equal(newPc(), 0x1_0004n);
    h.csr.priv = M;
    assert.equal(h.get(MSTATUS) & (SIE | SPIE | SPP), SIE | SPIE);
  });
});
