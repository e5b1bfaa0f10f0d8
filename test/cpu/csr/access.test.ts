import assert from "node:assert/strict";
import { csrName } from "../../../src/cpu/riscv/csr/csr-numbers.js";
import { describe, it } from "../../support/test.js";
import { bit, type Hart, M, makeHart, PRIV_NAMES, PRIVS, S, U } from "./harness.js";

type Level = typeof U | typeof S | typeof M;

/** Every CSR this hart should implement: number, lowest privilege, read-only. Written from the spec tables. */
function expectedCsrs(): Map<number, { level: Level; readOnly: boolean }> {
  const map = new Map<number, { level: Level; readOnly: boolean }>();
  const add = (num: number, level: Level, readOnly = false) => map.set(num, { level, readOnly });
  for (const n of [0x001, 0x002, 0x003]) add(n, U);
  for (let n = 0xc00; n <= 0xc1f; n++) add(n, U, true);
  for (const n of [0x100, 0x104, 0x105, 0x106, 0x10a, 0x140, 0x141, 0x142, 0x143, 0x144, 0x14d, 0x180])
    add(n, S);
  for (const n of [0x300, 0x301, 0x302, 0x303, 0x304, 0x305, 0x306, 0x30a, 0x320]) add(n, M);
  for (let n = 0x323; n <= 0x33f; n++) add(n, M);
  for (let n = 0x340; n <= 0x344; n++) add(n, M);
  for (let n = 0x3a0; n <= 0x3ae; n += 2) add(n, M);
  for (let n = 0x3b0; n <= 0x3ef; n++) add(n, M);
  for (const n of [0x747, 0x7a0, 0x7a1, 0x7a2, 0x7a3, 0xb00, 0xb02]) add(n, M);
  for (let n = 0xb03; n <= 0xb1f; n++) add(n, M);
  for (let n = 0xf11; n <= 0xf15; n++) add(n, M, true);
  return map;
}

/** A hart at `priv` with every secondary gate open: FS on, counters enabled, TVM off, Sstc on. */
function openHart(priv: Level): Hart {
  const h = makeHart();
  h.write(0x300, 1n << 13n); // mstatus.FS = initial
  h.write(0x306, 0xffff_ffffn); // mcounteren
  h.write(0x106, 0xffff_ffffn); // scounteren
  h.write(0x30a, bit(63)); // menvcfg.STCE
  h.csr.priv = priv;
  return h;
}

describe("CSR access by number and privilege", () => {
  const expected = expectedCsrs();

  for (const priv of PRIVS) {
    it(`reads exactly the implemented CSRs at or below ${PRIV_NAMES[priv]}-mode`, () => {
      const h = openHart(priv);
      for (let num = 0; num < 4096; num++) {
        const entry = expected.get(num);
        const legal = entry !== undefined && priv >= entry.level;
        assert.equal(h.read(num) !== null, legal, `${csrName(num)} read at ${PRIV_NAMES[priv]}`);
      }
    });

    it(`writes exactly the writable implemented CSRs at ${PRIV_NAMES[priv]}-mode`, () => {
      for (let num = 0; num < 4096; num++) {
        const entry = expected.get(num);
        const legal = entry !== undefined && priv >= entry.level && !entry.readOnly;
        // A fresh hart each time, writing back what is there, so no write changes the next one's gates.
        const h = openHart(priv);
        const value = h.read(num) ?? 0n;
        assert.equal(h.write(num, value) >= 0, legal, `${csrName(num)} write at ${PRIV_NAMES[priv]}`);
      }
    });
  }
});

describe("secondary access gates", () => {
  it("FP CSRs are illegal while mstatus.FS = 0, at every privilege", () => {
    for (const priv of PRIVS) {
      const h = makeHart();
      h.csr.priv = priv;
      for (const num of [0x001, 0x002, 0x003]) {
        assert.equal(h.read(num), null);
        assert.equal(h.write(num, 0n), -1);
      }
    }
  });

  it("satp traps in S-mode only when TVM = 1", () => {
    const h = makeHart();
    h.write(0x300, bit(20));
    assert.notEqual(h.read(0x180), null, "M ignores TVM");
    h.csr.priv = S;
    assert.equal(h.read(0x180), null);
    assert.equal(h.write(0x180, 0n), -1);
    h.csr.priv = M;
    h.write(0x300, 0n);
    h.csr.priv = S;
    assert.equal(h.read(0x180), 0n);
  });

  it("stimecmp needs menvcfg.STCE and mcounteren.TM below M", () => {
    for (const stce of [false, true]) {
      for (const tm of [false, true]) {
        const h = makeHart();
        h.write(0x30a, stce ? bit(63) : 0n);
        h.write(0x306, tm ? 2n : 0n);
        assert.notEqual(h.read(0x14d), null, "always accessible in M");
        h.csr.priv = S;
        assert.equal(h.read(0x14d) !== null, stce && tm, `STCE=${stce} TM=${tm}`);
        assert.equal(h.write(0x14d, 5n) >= 0, stce && tm);
      }
    }
  });

  it("a read-only number (csr[11:10] = 3) can never be written, even in M", () => {
    const h = makeHart();
    for (const num of [0xc00, 0xc01, 0xc02, 0xc1f, 0xf11, 0xf14, 0xf15]) {
      assert.notEqual(h.read(num), null);
      assert.equal(h.write(num, 0n), -1);
    }
  });

  it("RV32-only counter halves and odd pmpcfg numbers do not exist", () => {
    const h = makeHart();
    for (const num of [0xc80, 0xc81, 0xc82, 0xb80, 0xb82, 0x3a1, 0x3a3, 0x3af]) {
      assert.equal(h.read(num), null, csrName(num));
      assert.equal(h.write(num, 0n), -1, csrName(num));
    }
  });
});

describe("csrName", () => {
  it("names single CSRs and numbered families", () => {
    assert.equal(csrName(0x300), "mstatus");
    assert.equal(csrName(0x14d), "stimecmp");
    assert.equal(csrName(0xc05), "hpmcounter5");
    assert.equal(csrName(0xb1f), "mhpmcounter31");
    assert.equal(csrName(0x323), "mhpmevent3");
    assert.equal(csrName(0x3a2), "pmpcfg2");
    assert.equal(csrName(0x3ef), "pmpaddr63");
    assert.equal(csrName(0x7c0), "0x7c0");
    assert.equal(csrName(0x5), "0x005");
  });
});
