import assert from "node:assert/strict";
import fc from "fast-check";
import { CsrEffect, CsrFile } from "../../../src/cpu/riscv/csr/csr-file.js";
import { Pmp } from "../../../src/cpu/riscv/mmu/pmp.js";
import { HartOffset } from "../../../src/cpu/riscv/state.js";
import { describe, it } from "../../support/test.js";
import { ALL_ONES, bit, FakeCounters, M, makeHart, S, SLOT, U } from "./harness.js";

const MSTATUS = 0x300;
const SSTATUS = 0x100;
/** Field masks from the spec's mstatus figure (RV64). */
const SIE = bit(1);
const MIE = bit(3);
const SPIE = bit(5);
const MPIE = bit(7);
const SPP = bit(8);
const MPP = 3n << 11n;
const FS = 3n << 13n;
const MPRV = bit(17);
const SUM = bit(18);
const MXR = bit(19);
const TVM = bit(20);
const TW = bit(21);
const TSR = bit(22);
const UXL_SXL = (2n << 32n) | (2n << 34n);
const SD = bit(63);
const M_WRITABLE = SIE | MIE | SPIE | MPIE | SPP | MPP | FS | MPRV | SUM | MXR | TVM | TW | TSR;
const S_VISIBLE = SIE | SPIE | SPP | FS | SUM | MXR;

/** What mstatus should read after writing `value` over `old` (both full mstatus values). */
function expectedMstatus(old: bigint, value: bigint): bigint {
  let next = (old & ~M_WRITABLE) | (value & M_WRITABLE);
  if ((next & MPP) === 2n << 11n) next = (next & ~MPP) | (old & MPP);
  next = (next & ~SD) | UXL_SXL;
  return (next & FS) === FS ? next | SD : next;
}

describe("mstatus", () => {
  it("writes only the implemented fields (property)", () => {
    const h = makeHart();
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: ALL_ONES }), (value) => {
        const old = h.get(MSTATUS);
        h.write(MSTATUS, value);
        assert.equal(h.get(MSTATUS), expectedMstatus(old, value));
      }),
    );
  });

  it("MPP accepts U, S, M and keeps the old mode when written 2", () => {
    const h = makeHart();
    for (const mode of [3n, 1n, 0n]) {
      h.write(MSTATUS, mode << 11n);
      assert.equal((h.get(MSTATUS) & MPP) >> 11n, mode);
      h.write(MSTATUS, 2n << 11n);
      assert.equal((h.get(MSTATUS) & MPP) >> 11n, mode);
    }
  });

  it("UXL, SXL are 2 and UBE, SBE, MBE, VS, XS are 0 whatever is written", () => {
    const h = makeHart();
    h.write(MSTATUS, 0n);
    h.write(MSTATUS, ALL_ONES);
    const value = h.get(MSTATUS);
    assert.equal((value >> 32n) & 0xfn, 0xan);
    assert.equal(value & (bit(6) | bit(36) | bit(37) | (3n << 9n) | (3n << 15n)), 0n);
  });

  it("SD follows FS = dirty, including FS set by wasm in the hart block", () => {
    const h = makeHart();
    h.write(MSTATUS, 2n << 13n);
    assert.equal(h.get(MSTATUS) & SD, 0n);
    h.block[SLOT.FS] = 3;
    assert.equal(h.get(MSTATUS), UXL_SXL | FS | SD);
    assert.equal(h.get(SSTATUS) & (FS | SD), FS | SD);
  });

  it("FS written through mstatus or sstatus lands in the FS slot", () => {
    const h = makeHart();
    for (const fs of [1, 2, 3, 0]) {
      h.write(MSTATUS, BigInt(fs) << 13n);
      assert.equal(h.block[SLOT.FS], fs);
    }
    h.write(SSTATUS, 2n << 13n);
    assert.equal(h.block[SLOT.FS], 2);
  });
});

describe("sstatus is a restricted view of mstatus", () => {
  it("reads the S fields, UXL and SD only", () => {
    const h = makeHart();
    h.write(MSTATUS, M_WRITABLE);
    assert.equal(h.get(SSTATUS), S_VISIBLE | (2n << 32n) | SD);
  });

  it("writes only the S fields, leaving M fields alone (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: ALL_ONES }),
        fc.bigInt({ min: 0n, max: ALL_ONES }),
        (before, value) => {
          const h = makeHart();
          h.write(MSTATUS, before);
          const old = h.get(MSTATUS);
          h.csr.priv = S;
          h.write(SSTATUS, value);
          h.csr.priv = M;
          const expected = (old & ~S_VISIBLE) | (value & S_VISIBLE);
          const fsDirty = (expected & FS) === FS;
          assert.equal(h.get(MSTATUS), (expected & ~SD) | (fsDirty ? SD : 0n));
        },
      ),
    );
  });
});

describe("status write effects", () => {
  const cases: [name: string, field: bigint, effect: number][] = [
    ["MPRV", MPRV, CsrEffect.TLB_CONTEXT],
    ["MPP", 1n << 11n, CsrEffect.TLB_CONTEXT],
    ["SUM", SUM, CsrEffect.TLB_CONTEXT],
    ["MXR", MXR, CsrEffect.TLB_CONTEXT],
    ["MIE", MIE, CsrEffect.CHECK_INTERRUPTS],
    ["SIE", SIE, CsrEffect.CHECK_INTERRUPTS],
    ["TVM", TVM, CsrEffect.NONE],
    ["FS", FS, CsrEffect.NONE],
    ["SPIE", SPIE, CsrEffect.NONE],
  ];
  for (const [name, field, effect] of cases) {
    it(`changing ${name} reports ${effect}, setting it again reports nothing`, () => {
      const h = makeHart();
      assert.equal(h.write(MSTATUS, field), effect);
      assert.equal(h.write(MSTATUS, field), CsrEffect.NONE);
      assert.equal(h.write(MSTATUS, 0n), effect);
    });
  }

  it("sstatus reports SUM, MXR and SIE changes too", () => {
    const h = makeHart();
    h.csr.priv = S;
    assert.equal(h.write(SSTATUS, SUM | MXR), CsrEffect.TLB_CONTEXT);
    assert.equal(h.write(SSTATUS, SUM | MXR | SIE), CsrEffect.CHECK_INTERRUPTS);
  });
});

describe("translation state", () => {
  it("SUM, MXR, MPRV, MPP getters follow mstatus", () => {
    const h = makeHart();
    h.write(MSTATUS, SUM | MPRV | (1n << 11n));
    assert.deepEqual([h.csr.sum, h.csr.mxr, h.csr.mprv, h.csr.mpp], [true, false, true, S]);
    h.write(MSTATUS, MXR);
    assert.deepEqual([h.csr.sum, h.csr.mxr, h.csr.mprv, h.csr.mpp], [false, true, false, U]);
  });

  it("dataPriv is MPP only in M-mode with MPRV", () => {
    const h = makeHart();
    h.write(MSTATUS, 1n << 11n);
    assert.equal(h.csr.dataPriv, M);
    h.write(MSTATUS, MPRV | (1n << 11n));
    assert.equal(h.csr.dataPriv, S);
    h.write(MSTATUS, MPRV);
    assert.equal(h.csr.dataPriv, U);
    h.csr.priv = S;
    assert.equal(h.csr.dataPriv, S, "MPRV means nothing below M");
  });

  it("construction resets the mirrored slots: M-mode, FS off, fcsr zero", () => {
    const block = new Int32Array(HartOffset.TLB / 4).fill(-1);
    const csr = new CsrFile(0, block, new FakeCounters(), new Pmp());
    assert.deepEqual([block[SLOT.PRIV], block[SLOT.FS], block[SLOT.FRM], block[SLOT.FFLAGS]], [M, 0, 0, 0]);
    assert.equal(csr.priv, M);
  });

  it("priv setter keeps the PRIV slot", () => {
    const h = makeHart();
    assert.equal(h.block[SLOT.PRIV], M);
    h.csr.priv = U;
    assert.equal(h.block[SLOT.PRIV], U);
    assert.equal(h.csr.priv, U);
  });
});
