import assert from "node:assert/strict";
import { csrName } from "../../../src/cpu/riscv/csr/csr-numbers.js";
import { describe, it } from "../../support/test.js";
import { bit, M, makeHart, PRIV_NAMES, PRIVS, S, U } from "./harness.js";

describe("counter gating by mcounteren and scounteren", () => {
  // Per counter: M always; S needs mcounteren; U needs both. Checked for cycle, time, instret, hpm3, hpm31.
  for (const index of [0, 1, 2, 3, 31]) {
    const num = 0xc00 + index;
    it(`${csrName(num)}`, () => {
      for (const priv of PRIVS) {
        for (const mEnabled of [false, true]) {
          for (const sEnabled of [false, true]) {
            const h = makeHart();
            // Enable every other counter so only this bit decides.
            h.write(0x306, mEnabled ? 0xffff_ffffn : 0xffff_ffffn & ~bit(index));
            h.write(0x106, sEnabled ? 0xffff_ffffn : 0xffff_ffffn & ~bit(index));
            h.csr.priv = priv;
            const legal = priv === M || (mEnabled && (priv === S || sEnabled));
            assert.equal(h.read(num) !== null, legal, `${PRIV_NAMES[priv]} m=${mEnabled} s=${sEnabled}`);
          }
        }
      }
    });
  }

  it("machine counters ignore the enables", () => {
    const h = makeHart();
    for (const num of [0xb00, 0xb02, 0xb03]) assert.notEqual(h.read(num), null);
  });
});

describe("counter values", () => {
  it("cycle and instret count retired instructions, time is mtime, hpm counters are 0", () => {
    const h = makeHart();
    h.counters.retired = BigInt(2 ** 40 + 7);
    h.counters.now = 2 ** 33 + 9;
    for (const num of [0xc00, 0xc02, 0xb00, 0xb02])
      assert.equal(h.get(num), BigInt(2 ** 40 + 7), csrName(num));
    assert.equal(h.get(0xc01), BigInt(2 ** 33 + 9));
    for (const num of [0xc03, 0xc1f, 0xb03, 0xb1f]) assert.equal(h.get(num), 0n, csrName(num));
  });

  it("values below 2^53 survive the split exactly", () => {
    const h = makeHart();
    for (const n of [
      0n,
      1n,
      2n ** 31n,
      2n ** 32n - 1n,
      2n ** 32n,
      2n ** 53n - 1n,
      2n ** 62n + 1n,
      2n ** 64n - 1n,
    ]) {
      h.counters.retired = n;
      assert.equal(h.get(0xc02), n);
    }
  });

  it("mcycle and minstret writes set the instruction count", () => {
    const h = makeHart();
    h.write(0xb02, 0x12_3456_789an);
    assert.equal(h.counters.retired, 0x12_3456_789an);
    assert.equal(h.get(0xc00), 0x12_3456_789an);
    h.write(0xb00, 0xffff_fff0n);
    assert.equal(h.get(0xc02), 0xffff_fff0n);
  });

  it("user counters are read-only even in M-mode", () => {
    const h = makeHart();
    for (const num of [0xc00, 0xc01, 0xc02, 0xc10]) assert.equal(h.write(num, 0n), -1);
  });

  it("hpm counters and events accept writes and stay 0", () => {
    const h = makeHart();
    for (const num of [0xb03, 0xb1f, 0x323, 0x33f]) {
      assert.equal(h.write(num, 99n), 0);
      assert.equal(h.get(num), 0n);
    }
  });

  it("counter reads at U-mode use the same value as in M", () => {
    const h = makeHart();
    h.write(0x306, 7n);
    h.write(0x106, 7n);
    h.counters.retired = 42n;
    h.csr.priv = U;
    assert.equal(h.get(0xc02), 42n);
  });
});
