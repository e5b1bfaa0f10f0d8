import assert from "node:assert/strict";
import { PMP_R, PMP_W, PMP_X, Pmp, PmpMode } from "../../../src/cpu/riscv/mmu/pmp.js";
import { SatpMode, TranslateResult, Translator } from "../../../src/cpu/riscv/mmu/translate.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";
import { describe, it } from "../../support/test.js";
import { halves, openPmp, PAGE, PageTableBuilder, RAM_BASE, TestMemory } from "./test-memory.js";

const V = 0x01;
const R = 0x02;
const W = 0x04;
const X = 0x08;
const U = 0x10;
const A = 0x40;
const D = 0x80;
const RWX = V | R | W | X;
const ACCESSES = [Access.FETCH, Access.LOAD, Access.STORE];
const NAMES = ["fetch", "load", "store"];

/** A Sv39 or Sv48 address space with its page tables at the start of a 64-page RAM. */
function setup(levels: 3 | 4, pmp: Pmp = openPmp()) {
  const mem = new TestMemory(RAM_BASE, 64 * PAGE);
  const tables = new PageTableBuilder(mem, levels);
  const translator = new Translator(mem, pmp);
  const mode = levels === 4 ? SatpMode.SV48 : SatpMode.SV39;
  const run = (vaddr: bigint, access: Access, priv = Priv.S, rootPpn = tables.rootPpn): TranslateResult => {
    const [lo, hi] = halves(vaddr);
    return translator.translate(lo, hi, access, priv, false, false, mode, rootPpn);
  };
  return { mem, tables, translator, run };
}

describe("translation of each page size", () => {
  const cases: [string, 3 | 4, number, bigint, bigint, bigint][] = [
    ["Sv39 4 KiB", 3, 0, 0x1234_5000n, 0x8765_4000n, 0xabcn],
    ["Sv39 2 MiB", 3, 1, 0x4020_0000n, 0x1_0060_0000n, 0x12_3456n],
    ["Sv39 1 GiB, upper half", 3, 2, 0xffff_ffc0_4000_0000n, 0x40_0000_0000n, 0x2345_6789n],
    ["Sv48 4 KiB, upper half", 4, 0, 0xffff_8000_0000_7000n, 0x9_0000_1000n, 0xff8n],
    ["Sv48 2 MiB", 4, 1, 0x7fff_ffe0_0000n, 0x20_0000n, 0x1f_fffen],
    ["Sv48 1 GiB", 4, 2, 0x12_4000_0000n, 0xc0_0000_0000n, 0x3fff_ffffn],
    ["Sv48 512 GiB", 4, 3, 0x7f80_0000_0000n, 0x18_0000_0000_00n, 0x7e_dcba_9876n],
  ];
  for (const [name, levels, level, vaddr, paddr, offset] of cases) {
    it(name, () => {
      const { tables, translator, run } = setup(levels);
      tables.map(vaddr, paddr, level, RWX | A | D);
      for (const access of ACCESSES) {
        assert.equal(run(vaddr + offset, access), TranslateResult.OK, NAMES[access]);
        assert.equal(translator.paddr, Number(paddr + offset), NAMES[access]);
      }
    });
  }
});

describe("page faults", () => {
  const VA = 0x5555_5000n;
  const PA = 0x8000_0000n;
  /** Maps VA with a broken PTE and checks every access type page-faults without touching any PTE. */
  function expectPageFault(broken: (t: ReturnType<typeof setup>) => void, accesses = ACCESSES) {
    for (const access of accesses) {
      const fixture = setup(3);
      broken(fixture);
      const before = fixture.mem.bytes.slice();
      assert.equal(fixture.run(VA, access), TranslateResult.PAGE_FAULT, NAMES[access]);
      assert.deepEqual(fixture.mem.bytes, before, `${NAMES[access]} wrote a PTE`);
    }
  }

  it("invalid leaf", () => expectPageFault((t) => t.tables.map(VA, PA, 0, RWX & ~V)));
  it("invalid pointer", () => expectPageFault(() => {}));
  it("W without R", () => {
    expectPageFault((t) => t.tables.map(VA, PA, 0, V | W | A | D));
    expectPageFault((t) => t.tables.map(VA, PA, 0, V | W | X | A | D));
  });
  it("each reserved bit 54..63 of a leaf", () => {
    for (let bit = 54n; bit < 64n; bit++)
      expectPageFault((t) => t.tables.map(VA, PA, 0, RWX | A | D, 1n << bit));
  });
  it("reserved bit of a pointer PTE", () => {
    expectPageFault((t) => {
      t.tables.map(VA, PA, 0, RWX | A | D);
      const pointer = t.tables.pteAddress(VA, 2);
      t.mem.write64(pointer, t.mem.read64(pointer) | (1n << 61n));
    });
  });
  it("pointer PTE with D, A or U (reserved in non-leaf PTEs)", () => {
    for (const bit of [D, A, U]) {
      expectPageFault((t) => {
        t.tables.map(VA, PA, 0, RWX | A | D);
        const pointer = t.tables.pteAddress(VA, 1);
        t.mem.write64(pointer, t.mem.read64(pointer) | BigInt(bit));
      });
    }
  });
  it("pointer PTE at level 0", () => expectPageFault((t) => t.tables.map(VA, BigInt(RAM_BASE), 0, V)));
  it("misaligned superpages", () => {
    expectPageFault((t) => t.tables.map(0x4000_0000n, 0x20_1000n, 1, RWX | A | D));
    expectPageFault((t) => t.tables.map(0x4000_0000n, 0x4000_1000n, 2, RWX | A | D));
    expectPageFault((t) => t.tables.map(0x4000_0000n, 0x4020_0000n, 2, RWX | A | D));
  });
  it("missing permission for the access type", () => {
    expectPageFault((t) => t.tables.map(VA, PA, 0, V | R | W | A | D), [Access.FETCH]);
    expectPageFault((t) => t.tables.map(VA, PA, 0, V | X | A | D), [Access.LOAD, Access.STORE]);
    expectPageFault((t) => t.tables.map(VA, PA, 0, V | R | X | A | D), [Access.STORE]);
  });
  it("U-mode on a supervisor page, S-mode on a user page without SUM", () => {
    for (const access of ACCESSES) {
      const t = setup(3);
      t.tables.map(VA, PA, 0, RWX | A | D);
      assert.equal(t.run(VA, access, Priv.U), TranslateResult.PAGE_FAULT);
      t.tables.map(VA, PA, 0, RWX | U | A | D);
      assert.equal(t.run(VA, access, Priv.S), TranslateResult.PAGE_FAULT);
      assert.equal(t.run(VA, access, Priv.U), TranslateResult.OK);
    }
  });
});

describe("accessed and dirty bits", () => {
  const VA = 0x7000n;
  const HIGH = 0x1234n << 32n; // PPN bits in the high word must survive the write-back.

  for (const access of ACCESSES) {
    it(`${NAMES[access]} sets A${access === Access.STORE ? " and D" : ""} exactly once`, () => {
      const t = setup(4);
      const leaf = t.tables.map(VA, 0n, 0, RWX | 0x300, HIGH);
      const original = t.mem.read64(leaf);
      assert.equal(t.run(VA, access), TranslateResult.OK);
      const expected = original | BigInt(A) | (access === Access.STORE ? BigInt(D) : 0n);
      assert.equal(t.mem.read64(leaf), expected);
      assert.equal(t.mem.writes, 1);
      assert.equal(t.run(VA, access), TranslateResult.OK);
      assert.equal(t.mem.writes, 1, "second access rewrote the PTE");
    });
  }

  it("a store to a page with A set but D clear sets only D", () => {
    const t = setup(3);
    const leaf = t.tables.map(VA, 0n, 0, RWX | A);
    assert.equal(t.run(VA, Access.LOAD), TranslateResult.OK);
    assert.equal(t.mem.writes, 0);
    assert.equal(t.run(VA, Access.STORE), TranslateResult.OK);
    assert.equal(t.mem.read64(leaf), BigInt(RWX | A | D));
  });

  it("a failed write-back is an access fault; no write needed, no fault", () => {
    for (const access of ACCESSES) {
      const t = setup(3);
      t.mem.failWrites = true;
      const leaf = t.tables.map(VA, 0n, 0, RWX);
      assert.equal(t.run(VA, access), TranslateResult.ACCESS_FAULT);
      assert.equal(t.mem.read64(leaf), BigInt(RWX));
      t.tables.map(VA, 0n, 0, RWX | A | D);
      assert.equal(t.run(VA, access), TranslateResult.OK);
    }
  });

  it("PMP making the page tables read-only for S blocks the write-back only", () => {
    const pmp = new Pmp();
    pmp.writeAddr(0, (RAM_BASE >>> 2) | ((64 * PAGE) / 8 - 1), 0); // NAPOT over the 64-page RAM
    pmp.writeCfg(0, (PmpMode.NAPOT << 3) | PMP_R);
    pmp.writeAddr(1, -1, -1);
    pmp.writeCfg(1, (PmpMode.NAPOT << 3) | PMP_R | PMP_W | PMP_X);
    const t = setup(3, pmp);
    const leaf = t.tables.map(VA, 0n, 0, RWX);
    assert.equal(t.run(VA, Access.LOAD, Priv.U), TranslateResult.PAGE_FAULT); // U rules come first
    assert.equal(t.run(VA, Access.LOAD), TranslateResult.ACCESS_FAULT);
    assert.equal(t.mem.read64(leaf), BigInt(RWX));
    t.tables.map(VA, 0n, 0, RWX | A);
    assert.equal(t.run(VA, Access.LOAD), TranslateResult.OK);
    assert.equal(t.run(VA, Access.STORE), TranslateResult.ACCESS_FAULT);
    t.tables.map(VA, 0n, 0, RWX | A | D);
    assert.equal(t.run(VA, Access.STORE), TranslateResult.OK);
  });
});

describe("canonical addresses", () => {
  it("Sv39 needs bits 63..39 equal to bit 38", () => {
    const t = setup(3);
    t.tables.map(0xffff_ffc0_0000_0000n, 0n, 2, RWX | A | D);
    t.tables.map(0x0000_003f_c000_0000n, 0n, 2, RWX | A | D);
    assert.equal(t.run(0xffff_ffc0_0000_0000n, Access.LOAD), TranslateResult.OK);
    assert.equal(t.run(0x0000_003f_ffff_fff8n, Access.LOAD), TranslateResult.OK);
    for (const bad of [0x0000_0040_0000_0000n, 0xffff_ffbf_ffff_f000n, 0x0000_0080_0000_0000n, 1n << 63n]) {
      for (const access of ACCESSES) assert.equal(t.run(bad, access), TranslateResult.PAGE_FAULT);
    }
  });
  it("Sv48 needs bits 63..48 equal to bit 47", () => {
    const t = setup(4);
    t.tables.map(0xffff_8000_0000_0000n, 0n, 3, RWX | A | D);
    assert.equal(t.run(0xffff_8000_0000_0000n, Access.FETCH), TranslateResult.OK);
    for (const bad of [0x0000_8000_0000_0000n, 0xffff_7fff_ffff_f000n, 0x0001_0000_0000_0000n]) {
      for (const access of ACCESSES) assert.equal(t.run(bad, access), TranslateResult.PAGE_FAULT);
    }
  });
});

describe("access faults during the walk", () => {
  const VA = 0x1000n;
  it("root table outside RAM", () => {
    const t = setup(3);
    for (const access of ACCESSES) {
      assert.equal(t.run(VA, access, Priv.S, 0x1000), TranslateResult.ACCESS_FAULT);
      assert.equal(t.run(VA, access, Priv.U, 2 ** 43), TranslateResult.ACCESS_FAULT);
    }
  });
  it("pointer PTE leading outside RAM, even to an invalid PTE", () => {
    for (const target of [0x1000n, 1n << 53n, (1n << 56n) - 4096n]) {
      const t = setup(3);
      const pointer = t.tables.pteAddress(VA, 2);
      t.mem.write64(pointer, ((target >> 12n) << 10n) | 1n);
      for (const access of ACCESSES) assert.equal(t.run(VA, access), TranslateResult.ACCESS_FAULT);
    }
  });
  it("PMP denying the page-table read", () => {
    const pmp = new Pmp();
    pmp.writeAddr(0, (RAM_BASE + 64 * PAGE) >>> 2, 0);
    pmp.writeCfg(0, (PmpMode.TOR << 3) | PMP_R | PMP_W | PMP_X);
    const t = setup(3, pmp);
    t.tables.map(VA, BigInt(RAM_BASE), 0, RWX | U | A | D);
    assert.equal(t.run(VA, Access.LOAD, Priv.U), TranslateResult.OK);
    pmp.writeCfg(0, (PmpMode.TOR << 3) | PMP_X);
    for (const access of ACCESSES) {
      assert.equal(t.run(VA, access, Priv.U), TranslateResult.ACCESS_FAULT);
    }
  });
  it("leaf whose physical address is not below 2^53", () => {
    const t = setup(4);
    t.tables.map(VA, 1n << 53n, 0, RWX | A | D);
    t.tables.map(1n << 39n, 1n << 53n, 3, RWX | A | D);
    t.tables.map(2n << 39n, (1n << 53n) - (1n << 39n), 3, RWX | A | D);
    for (const access of ACCESSES) {
      assert.equal(t.run(VA, access), TranslateResult.ACCESS_FAULT);
      assert.equal(t.run(1n << 39n, access), TranslateResult.ACCESS_FAULT);
      assert.equal(t.run((2n << 39n) + 0x7f_ffff_fff8n, access), TranslateResult.OK);
    }
  });
});

describe("bare mode and M-mode", () => {
  const translator = new Translator(new TestMemory(RAM_BASE, PAGE), openPmp());
  const run = (vaddr: bigint, priv: Priv, mode: SatpMode): TranslateResult => {
    const [lo, hi] = halves(vaddr);
    return translator.translate(lo, hi, Access.LOAD, priv, false, false, mode, 0x1000);
  };
  it("passes addresses through unchanged", () => {
    for (const vaddr of [0n, 0x8000_1234n, 0xffff_fffcn, (1n << 53n) - 8n]) {
      const untranslated: [Priv, SatpMode][] = [
        [Priv.S, SatpMode.BARE],
        [Priv.U, SatpMode.BARE],
        [Priv.M, SatpMode.SV39],
        [Priv.M, SatpMode.SV48],
      ];
      for (const [priv, mode] of untranslated) {
        assert.equal(run(vaddr, priv, mode), TranslateResult.OK);
        assert.equal(translator.paddr, Number(vaddr));
      }
    }
  });
  it("faults for addresses beyond the physical address space", () => {
    for (const vaddr of [1n << 56n, 1n << 53n, 0xffff_ffff_8000_0000n]) {
      assert.equal(run(vaddr, Priv.M, SatpMode.SV39), TranslateResult.ACCESS_FAULT);
      assert.equal(run(vaddr, Priv.S, SatpMode.BARE), TranslateResult.ACCESS_FAULT);
    }
  });
});
