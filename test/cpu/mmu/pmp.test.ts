import assert from "node:assert/strict";
import { PMP_L, PMP_R, PMP_W, PMP_X, Pmp, PmpMode } from "../../../src/cpu/riscv/mmu/pmp.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";
import { describe, it } from "../../support/test.js";
import { halves } from "./test-memory.js";

const RWX = PMP_R | PMP_W | PMP_X;
const ALL_ONES = (1n << 54n) - 1n;

function cfg(mode: PmpMode, perms: number, locked = false): number {
  return (mode << 3) | perms | (locked ? PMP_L : 0);
}

/** Writes a 54-bit pmpaddr value. */
function setAddr(pmp: Pmp, entry: number, pmpaddr: bigint): void {
  const [lo, hi] = halves(pmpaddr);
  pmp.writeAddr(entry, lo, hi);
}

/** pmpaddr encoding of a naturally aligned power-of-two region of at least 8 bytes. */
function napot(base: number, size: number): bigint {
  return BigInt(base / 4) | BigInt(size / 8 - 1);
}

const load = (pmp: Pmp, paddr: number, size: number, priv: Priv) => pmp.check(paddr, size, Access.LOAD, priv);

describe("PMP defaults", () => {
  it("with no active entry M-mode is allowed and S/U denied", () => {
    const pmp = new Pmp();
    for (const access of [Access.FETCH, Access.LOAD, Access.STORE]) {
      assert.equal(pmp.check(0x8000_0000, 8, access, Priv.M), true);
      assert.equal(pmp.check(0x8000_0000, 8, access, Priv.S), false);
      assert.equal(pmp.check(0, 1, access, Priv.U), false);
    }
  });
  it("M-mode passes an unlocked matching entry without rights; S/U need the right bit", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, ALL_ONES);
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, 0));
    assert.equal(pmp.check(0x1000, 4, Access.STORE, Priv.M), true);
    assert.equal(pmp.check(0x1000, 4, Access.STORE, Priv.S), false);
    for (const [perm, access] of [
      [PMP_R, Access.LOAD],
      [PMP_W | PMP_R, Access.STORE],
      [PMP_X, Access.FETCH],
    ]) {
      pmp.writeCfg(0, cfg(PmpMode.NAPOT, perm));
      for (const other of [Access.FETCH, Access.LOAD, Access.STORE]) {
        const granted = other === access || (perm & PMP_R && other === Access.LOAD);
        assert.equal(pmp.check(0x1000, 4, other, Priv.U), Boolean(granted), `perm ${perm} access ${other}`);
      }
    }
  });
});

describe("PMP address matching", () => {
  it("TOR: [pmpaddr[i-1]*4, pmpaddr[i]*4), zero below entry 0", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, 0x400n);
    setAddr(pmp, 1, 0x800n);
    pmp.writeCfg(0, cfg(PmpMode.TOR, PMP_R));
    pmp.writeCfg(1, cfg(PmpMode.TOR, PMP_R));
    assert.equal(load(pmp, 0, 8, Priv.S), true);
    assert.equal(load(pmp, 0xffc, 4, Priv.S), true);
    assert.equal(load(pmp, 0x1000, 8, Priv.S), true);
    assert.equal(load(pmp, 0x1ff8, 8, Priv.S), true);
    assert.equal(load(pmp, 0x2000, 1, Priv.S), false);
    // Straddling two entries fails even though both would allow it, and even for M-mode.
    assert.equal(load(pmp, 0xffe, 4, Priv.S), false);
    assert.equal(load(pmp, 0x1ffe, 4, Priv.M), false);
  });
  it("TOR uses pmpaddr[i-1] whatever entry i-1's mode; an inverted range matches nothing", () => {
    const pmp = new Pmp();
    setAddr(pmp, 2, 0x400n);
    setAddr(pmp, 3, 0x800n);
    pmp.writeCfg(2, cfg(PmpMode.NA4, 0));
    pmp.writeCfg(3, cfg(PmpMode.TOR, PMP_R));
    assert.equal(load(pmp, 0x1004, 4, Priv.S), true);
    assert.equal(load(pmp, 0x1000, 4, Priv.S), false); // entry 2 (NA4, no rights) comes first
    setAddr(pmp, 3, 0x3ffn);
    assert.equal(load(pmp, 0x1004, 4, Priv.S), false);
    assert.equal(load(pmp, 0xff8, 4, Priv.S), false);
  });
  it("NA4 covers exactly four bytes", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, 0x400n);
    pmp.writeCfg(0, cfg(PmpMode.NA4, PMP_R));
    assert.equal(load(pmp, 0x1000, 4, Priv.U), true);
    assert.equal(load(pmp, 0x1003, 1, Priv.U), true);
    assert.equal(load(pmp, 0x1004, 1, Priv.U), false);
    assert.equal(load(pmp, 0xfff, 1, Priv.U), false);
    assert.equal(load(pmp, 0x1002, 4, Priv.M), false);
  });
  it("NAPOT from 8 bytes to a page", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, 0x400n); // no trailing ones: 8 bytes
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, PMP_R));
    assert.equal(load(pmp, 0x1000, 8, Priv.S), true);
    assert.equal(load(pmp, 0x1008, 1, Priv.S), false);
    setAddr(pmp, 0, napot(0x8000_0000, 4096));
    assert.equal(load(pmp, 0x8000_0000, 1, Priv.S), true);
    assert.equal(load(pmp, 0x8000_0ff8, 8, Priv.S), true);
    assert.equal(load(pmp, 0x7fff_fff8, 8, Priv.S), false);
    assert.equal(load(pmp, 0x8000_1000, 1, Priv.S), false);
    assert.equal(load(pmp, 0x8000_0ffc, 8, Priv.M), false);
  });
  it("NAPOT with pmpaddr all ones, or 53 ones, covers the whole address space", () => {
    for (const value of [ALL_ONES, ALL_ONES >> 1n]) {
      const pmp = new Pmp();
      setAddr(pmp, 0, value);
      pmp.writeCfg(0, cfg(PmpMode.NAPOT, PMP_R));
      for (const paddr of [0, 0x8000_0000, 2 ** 40 + 12, 2 ** 53 - 8])
        assert.equal(load(pmp, paddr, 8, Priv.U), true);
      assert.equal(pmp.pageUniform(0x1234_5000, Access.LOAD, Priv.U), true);
    }
  });
  it("NAPOT regions far above 2^53 match nothing the emulator can access", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, (1n << 53n) | ((1n << 52n) - 1n)); // upper half of the 2^56 space
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, RWX));
    assert.equal(load(pmp, 2 ** 53 - 8, 8, Priv.S), false);
    assert.equal(load(pmp, 2 ** 53 - 8, 8, Priv.M), true);
  });
  it("accesses reaching 2^53 are denied", () => {
    const pmp = new Pmp();
    assert.equal(load(pmp, 2 ** 53 - 4, 8, Priv.M), false);
    assert.equal(load(pmp, 2 ** 53, 1, Priv.M), false);
  });
  it("the lowest-numbered matching entry decides", () => {
    const pmp = new Pmp();
    setAddr(pmp, 3, 0x400n);
    pmp.writeCfg(3, cfg(PmpMode.NA4, 0));
    setAddr(pmp, 5, ALL_ONES);
    pmp.writeCfg(5, cfg(PmpMode.NAPOT, RWX));
    assert.equal(load(pmp, 0x1000, 4, Priv.S), false);
    assert.equal(load(pmp, 0x1004, 4, Priv.S), true);
    assert.equal(load(pmp, 0x1002, 4, Priv.S), false); // partly in entry 3
    assert.equal(load(pmp, 0x1000, 4, Priv.M), true); // entry 3 is not locked
  });
});

describe("PMP CSR rules", () => {
  it("a locked entry ignores writes and binds M-mode", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, napot(0x8000_0000, 4096));
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, PMP_R, true));
    assert.equal(pmp.check(0x8000_0000, 4, Access.LOAD, Priv.M), true);
    assert.equal(pmp.check(0x8000_0000, 4, Access.STORE, Priv.M), false);
    assert.equal(pmp.check(0x9000_0000, 4, Access.STORE, Priv.M), true);
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, RWX));
    setAddr(pmp, 0, ALL_ONES);
    assert.equal(pmp.cfg[0], cfg(PmpMode.NAPOT, PMP_R, true));
    assert.equal(pmp.check(0x8000_0000, 4, Access.STORE, Priv.M), false);
    assert.equal(pmp.check(0x9000_0000, 4, Access.LOAD, Priv.S), false);
  });
  it("a locked TOR entry also locks the previous pmpaddr, other locked modes do not", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, 0x100n);
    setAddr(pmp, 1, 0x200n);
    pmp.writeCfg(1, cfg(PmpMode.TOR, PMP_R, true));
    setAddr(pmp, 0, 0x180n);
    assert.equal(pmp.addrLo[0], 0x100);
    pmp.writeCfg(0, cfg(PmpMode.NA4, PMP_R)); // entry 0's cfg stays writable
    assert.equal(pmp.cfg[0], cfg(PmpMode.NA4, PMP_R));

    const napotLocked = new Pmp();
    napotLocked.writeCfg(1, cfg(PmpMode.NAPOT, PMP_R, true));
    setAddr(napotLocked, 0, 0x180n);
    assert.equal(napotLocked.addrLo[0], 0x180);
  });
  it("legalises cfg (R=0 W=1 reserved, bits 6:5 zero) and pmpaddr (54 bits)", () => {
    const pmp = new Pmp();
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, PMP_W | PMP_X) | 0x60);
    assert.equal(pmp.cfg[0], cfg(PmpMode.NAPOT, PMP_X));
    pmp.writeAddr(0, -1, -1);
    assert.equal(pmp.addrHi[0], 0x3f_ffff);
    assert.equal(pmp.addrLo[0], 0xffff_ffff);
    assert.equal(pmp.check(0, 4, Access.STORE, Priv.S), false);
  });
  it("refresh() picks up arrays written directly", () => {
    const pmp = new Pmp();
    pmp.addrLo[0] = 0xffff_ffff;
    pmp.addrHi[0] = 0x3f_ffff;
    pmp.cfg[0] = cfg(PmpMode.NAPOT, PMP_R);
    pmp.refresh();
    assert.equal(load(pmp, 0x1000, 4, Priv.S), true);
  });
});

describe("PMP pageUniform", () => {
  it("is true with no entries and with one entry covering everything", () => {
    const pmp = new Pmp();
    assert.equal(pmp.pageUniform(0x8000_0000, Access.LOAD, Priv.S), true);
    setAddr(pmp, 0, (1n << 50n) - 1n); // NAPOT [0, 2^53)
    pmp.writeCfg(0, cfg(PmpMode.NAPOT, RWX));
    assert.equal(pmp.pageUniform(2 ** 53 - 4096, Access.STORE, Priv.U), true);
  });
  it("is false only for pages an entry splits", () => {
    const pmp = new Pmp();
    setAddr(pmp, 0, 0x2000_0001n); // NA4 at 0x8000_0004
    pmp.writeCfg(0, cfg(PmpMode.NA4, 0));
    setAddr(pmp, 1, 0x2000_0c00n); // TOR [0x8000_0004, 0x8000_3000)
    pmp.writeCfg(1, cfg(PmpMode.TOR, RWX));
    setAddr(pmp, 2, ALL_ONES);
    pmp.writeCfg(2, cfg(PmpMode.NAPOT, PMP_R));
    assert.equal(pmp.pageUniform(0x8000_0123, Access.LOAD, Priv.S), false); // NA4 inside
    assert.equal(pmp.pageUniform(0x8000_1fff, Access.LOAD, Priv.S), true); // inside TOR
    assert.equal(pmp.pageUniform(0x8000_3000, Access.LOAD, Priv.S), true); // only entry 2
    assert.equal(pmp.pageUniform(0x7fff_f000, Access.LOAD, Priv.S), true);
    setAddr(pmp, 1, 0x2000_0b00n); // TOR now ends mid-page
    assert.equal(pmp.pageUniform(0x8000_2800, Access.LOAD, Priv.S), false);
  });
});
