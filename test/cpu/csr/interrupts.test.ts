import assert from "node:assert/strict";
import fc from "fast-check";
import { pendingInterrupt, wakeUpPending } from "../../../src/cpu/riscv/csr/trap.js";
import { describe, it } from "../../support/test.js";
import { ALL_ONES, bit, type Hart, M, makeHart, PRIVS, S, U } from "./harness.js";

const MSTATUS_MIE = bit(3);
const MSTATUS_SIE = bit(1);
/** Priority order of the spec, highest first. */
const PRIORITY = [11, 3, 7, 9, 1, 5];

interface Scenario {
  priv: typeof U | typeof S | typeof M;
  mie: number;
  softPending: number;
  lines: number[];
  mideleg: number;
  mstatusMie: boolean;
  mstatusSie: boolean;
  stce: boolean;
  now: number;
  stimecmp: bigint;
}

/** mip as the spec defines it: software bits (STIP from stimecmp under Sstc) OR device lines. */
function referencePending(s: Scenario): number {
  let pending = s.softPending & 0x222;
  if (s.stce) pending = (pending & ~0x20) | (BigInt(s.now) >= s.stimecmp ? 0x20 : 0);
  for (const line of s.lines) pending |= 1 << line;
  return pending;
}

/** The spec's rule, written out: which interrupt traps, M-destined ones first, each level by PRIORITY. */
function reference(s: Scenario): number {
  const pending = referencePending(s);
  const enabled = s.mie & 0xaaa;
  const delegated = s.mideleg & 0x222;
  const trapsToM = (i: number) =>
    (pending & enabled & (1 << i)) !== 0 && (delegated & (1 << i)) === 0 && (s.priv < M || s.mstatusMie);
  const trapsToS = (i: number) =>
    (pending & enabled & (1 << i)) !== 0 &&
    (delegated & (1 << i)) !== 0 &&
    (s.priv < S || (s.priv === S && s.mstatusSie));
  for (const i of PRIORITY) if (trapsToM(i)) return i;
  for (const i of PRIORITY) if (trapsToS(i)) return i;
  return -1;
}

function build(s: Scenario): Hart {
  const h = makeHart();
  h.write(0x344, BigInt(s.softPending));
  h.write(0x303, BigInt(s.mideleg));
  h.write(0x304, BigInt(s.mie));
  h.write(0x14d, s.stimecmp);
  h.write(0x30a, s.stce ? bit(63) : 0n);
  h.write(0x300, (s.mstatusMie ? MSTATUS_MIE : 0n) | (s.mstatusSie ? MSTATUS_SIE : 0n));
  for (const line of s.lines) h.csr.setInterruptLine(line, true);
  h.counters.now = s.now;
  h.csr.priv = s.priv;
  return h;
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  priv: fc.constantFrom(U, S, M),
  mie: fc.nat(0xfff),
  softPending: fc.nat(0xfff),
  lines: fc.subarray([3, 5, 7, 9, 11]),
  mideleg: fc.nat(0xfff),
  mstatusMie: fc.boolean(),
  mstatusSie: fc.boolean(),
  stce: fc.boolean(),
  now: fc.nat(1000),
  stimecmp: fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.constant(ALL_ONES)),
});

describe("pendingInterrupt", () => {
  it("matches the reference rule (property)", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        assert.equal(pendingInterrupt(build(s).csr), reference(s));
      }),
      { numRuns: 2000 },
    );
  });

  it("wakeUpPending ignores global enables and delegation (property)", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        assert.equal(wakeUpPending(build(s).csr), (referencePending(s) & s.mie & 0xaaa) !== 0);
      }),
      { numRuns: 1000 },
    );
  });

  it("priority among M-level interrupts: MEI, MSI, MTI, SEI, SSI, STI", () => {
    const h = makeHart();
    h.write(0x304, 0xaaan);
    h.write(0x344, 0x222n);
    for (const line of [3, 7, 11]) h.csr.setInterruptLine(line, true);
    h.csr.priv = U;
    for (const expected of PRIORITY) {
      assert.equal(pendingInterrupt(h.csr), expected);
      h.csr.priv = M;
      h.write(0x304, h.get(0x304) & ~bit(expected));
      h.csr.priv = U;
    }
    assert.equal(pendingInterrupt(h.csr), -1);
  });

  it("an M-level interrupt beats a higher-numbered delegated one", () => {
    const h = makeHart();
    h.write(0x303, bit(9));
    h.write(0x304, bit(9) | bit(5));
    h.write(0x344, bit(9) | bit(5));
    h.csr.priv = S;
    assert.equal(pendingInterrupt(h.csr), 5, "STI for M wins over delegated SEI");
  });

  it("delegated interrupts are never taken in M-mode, even with SIE", () => {
    const h = makeHart();
    h.write(0x303, 0x222n);
    h.write(0x304, 0x222n);
    h.write(0x344, 0x222n);
    h.write(0x300, MSTATUS_MIE | MSTATUS_SIE);
    assert.equal(pendingInterrupt(h.csr), -1);
    assert.equal(wakeUpPending(h.csr), true);
  });

  it("M-level interrupts below M ignore MIE; in M they need it", () => {
    for (const priv of PRIVS) {
      for (const enable of [false, true]) {
        const h = makeHart();
        h.write(0x304, bit(7));
        h.csr.setInterruptLine(7, true);
        h.write(0x300, enable ? MSTATUS_MIE : 0n);
        h.csr.priv = priv;
        assert.equal(pendingInterrupt(h.csr), priv !== M || enable ? 7 : -1);
      }
    }
  });
});
