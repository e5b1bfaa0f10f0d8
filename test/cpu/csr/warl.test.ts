import assert from "node:assert/strict";
import fc from "fast-check";
import { csrName } from "../../../src/cpu/riscv/csr/csr-numbers.js";
import { describe, it } from "../../support/test.js";
import { ALL_ONES, bit, makeHart, SLOT } from "./harness.js";

const MISA = 0x8000_0000_0014_112dn;

describe("registers that hold any 64-bit value", () => {
  // mscratch, mcause, mtval, sscratch, scause, stval, stimecmp
  for (const num of [0x340, 0x342, 0x343, 0x140, 0x142, 0x143, 0x14d]) {
    it(`${csrName(num)} reads back what was written`, () => {
      const h = makeHart();
      h.write(0x30a, bit(63)); // stimecmp's Sstc gate does not matter in M, but keep STIP out of the way
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: ALL_ONES }), (value) => {
          h.write(num, value);
          assert.equal(h.get(num), value);
        }),
      );
    });
  }
});

describe("WARL registers", () => {
  const cases: [name: string, num: number, written: bigint, readBack: bigint][] = [
    ["misa is read-only", 0x301, 0n, MISA],
    ["medeleg: causes 0-15 except 11", 0x302, ALL_ONES, 0xf7ffn],
    ["mideleg: only SSI, STI, SEI", 0x303, ALL_ONES, 0x222n],
    ["mie: the six standard interrupts", 0x304, ALL_ONES, 0xaaan],
    ["mepc: bit 0 cleared (IALIGN = 16)", 0x341, ALL_ONES, ALL_ONES - 1n],
    ["sepc: bit 0 cleared", 0x141, 0x8000_0000_0000_0003n, 0x8000_0000_0000_0002n],
    ["mcounteren is 32 bits, zero-extended", 0x306, ALL_ONES, 0xffff_ffffn],
    ["scounteren is 32 bits, zero-extended", 0x106, ALL_ONES, 0xffff_ffffn],
    ["menvcfg: only STCE", 0x30a, ALL_ONES, bit(63)],
    ["senvcfg: nothing implemented", 0x10a, ALL_ONES, 0n],
    ["mcountinhibit reads 0", 0x320, ALL_ONES, 0n],
    ["mseccfg reads 0", 0x747, ALL_ONES, 0n],
    ["tselect reads 0 (no triggers)", 0x7a0, ALL_ONES, 0n],
    ["tdata1 reads 0", 0x7a1, ALL_ONES, 0n],
    ["tdata2 reads 0", 0x7a2, ALL_ONES, 0n],
    ["tdata3 reads 0", 0x7a3, ALL_ONES, 0n],
    ["mhpmcounter3 reads 0", 0xb03, ALL_ONES, 0n],
    ["mhpmcounter31 reads 0", 0xb1f, ALL_ONES, 0n],
    ["mhpmevent3 reads 0", 0x323, ALL_ONES, 0n],
    ["mhpmevent31 reads 0", 0x33f, ALL_ONES, 0n],
  ];
  for (const [name, num, written, readBack] of cases) {
    it(name, () => {
      const h = makeHart();
      assert.ok(h.write(num, written) >= 0);
      assert.equal(h.get(num), readBack);
    });
  }

  it("identification CSRs: zero except mhartid", () => {
    const h = makeHart(5);
    for (const num of [0xf11, 0xf12, 0xf13, 0xf15]) assert.equal(h.get(num), 0n, csrName(num));
    assert.equal(h.get(0xf14), 5n);
    assert.equal(h.get(0x301), MISA);
  });

  it("reset values", () => {
    const h = makeHart();
    assert.equal(h.get(0x300), 0xa_0000_0000n, "mstatus: UXL = SXL = 2, all else 0");
    assert.equal(h.get(0x14d), ALL_ONES, "stimecmp");
    for (const num of [0x302, 0x303, 0x304, 0x305, 0x306, 0x30a, 0x341, 0x342, 0x344, 0x180]) {
      assert.equal(h.get(num), 0n, csrName(num));
    }
  });
});

describe("xtvec", () => {
  for (const num of [0x305, 0x105]) {
    it(`${csrName(num)}: MODE 0 and 1 stored, MODE 2 and 3 keep the old MODE, BASE always written`, () => {
      const h = makeHart();
      h.write(num, 0xffff_ffff_8000_0101n);
      assert.equal(h.get(num), 0xffff_ffff_8000_0101n);
      h.write(num, 0x8000_0202n);
      assert.equal(h.get(num), 0x8000_0201n);
      h.write(num, 0x8000_0400n);
      assert.equal(h.get(num), 0x8000_0400n);
      h.write(num, 0x1234_5003n);
      assert.equal(h.get(num), 0x1234_5000n);
    });
  }
});

describe("floating-point CSRs", () => {
  function fpHart() {
    const h = makeHart();
    h.write(0x300, 1n << 13n); // FS = initial
    return h;
  }

  it("fflags is 5 bits, frm 3 bits, fcsr both", () => {
    const h = fpHart();
    h.write(0x001, ALL_ONES);
    assert.equal(h.get(0x001), 0x1fn);
    h.write(0x002, ALL_ONES);
    assert.equal(h.get(0x002), 7n);
    assert.equal(h.get(0x003), 0xffn);
    h.write(0x003, 0b101_01010n);
    assert.equal(h.get(0x001), 0b01010n);
    assert.equal(h.get(0x002), 0b101n);
    assert.equal(h.block[SLOT.FFLAGS], 0b01010);
    assert.equal(h.block[SLOT.FRM], 0b101);
  });

  it("reads the FPU's flags from the hart block", () => {
    const h = fpHart();
    h.block[SLOT.FFLAGS] = 0b10001;
    h.block[SLOT.FRM] = 3;
    assert.equal(h.get(0x003), (3n << 5n) | 0b10001n);
  });

  for (const num of [0x001, 0x002, 0x003]) {
    it(`writing ${csrName(num)} marks FS dirty (and SD set); reading does not`, () => {
      const h = fpHart();
      h.get(num);
      assert.equal(h.block[SLOT.FS], 1);
      h.write(num, 0n);
      assert.equal(h.block[SLOT.FS], 3);
      assert.equal(h.get(0x300) >> 63n, 1n);
    });
  }
});
