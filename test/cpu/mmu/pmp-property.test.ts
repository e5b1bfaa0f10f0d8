/**
 * Pmp.check() against a BigInt reference transcribed from the spec's matching rules, and the pageUniform()
 * promise, over random configurations whose regions crowd a small window and the top of the 2^53 range.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Pmp } from "../../../src/cpu/riscv/mmu/pmp.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";
import { it } from "../../support/test.js";
import { halves } from "./test-memory.js";

interface Entry {
  cfg: number;
  addr: bigint;
}

const LIMIT = 2 ** 53;
const pmpaddrArb = fc.oneof(
  fc.bigInt({ min: 0n, max: 1n << 14n }),
  fc
    .tuple(fc.bigInt({ min: 0n, max: 1n << 14n }), fc.integer({ min: 0, max: 12 }))
    .map(([base, ones]) => base | ((1n << BigInt(ones)) - 1n)),
  fc.bigInt({ min: 0n, max: 1n << 12n }).map((below) => (1n << 51n) - below),
  fc.integer({ min: 0, max: 54 }).map((ones) => (1n << BigInt(ones)) - 1n),
  fc.bigInt({ min: 0n, max: (1n << 54n) - 1n }),
);
const entriesArb = fc.array(fc.record({ cfg: fc.integer({ min: 0, max: 255 }), addr: pmpaddrArb }), {
  minLength: 16,
  maxLength: 16,
});
const paddrArb = fc.oneof(
  fc.integer({ min: 0, max: 1 << 16 }),
  fc.integer({ min: 0, max: 1 << 14 }).map((below) => LIMIT - 8 - below),
);
const accessArb = fc.constantFrom(Access.FETCH, Access.LOAD, Access.STORE);
const privArb = fc.constantFrom(Priv.U, Priv.S, Priv.M);

function build(entries: Entry[]): Pmp {
  const pmp = new Pmp();
  // Addresses first, so that no lock set by a cfg write can swallow a later address write.
  for (const [i, e] of entries.entries()) pmp.writeAddr(i, ...halves(e.addr));
  for (const [i, e] of entries.entries()) pmp.writeCfg(i, e.cfg);
  return pmp;
}

/** The spec's rules, on exact integers, with cfg legalised the documented way. */
function referenceCheck(entries: Entry[], paddr: bigint, size: bigint, access: Access, priv: Priv): boolean {
  for (let i = 0; i < entries.length; i++) {
    let cfg = entries[i].cfg & 0x9f;
    if ((cfg & 3) === 2) cfg &= ~2;
    const a = entries[i].addr;
    let lo: bigint;
    let hi: bigint;
    switch ((cfg >> 3) & 3) {
      case 0:
        continue;
      case 1:
        lo = i === 0 ? 0n : entries[i - 1].addr * 4n;
        hi = a * 4n;
        break;
      case 2:
        lo = a * 4n;
        hi = lo + 4n;
        break;
      default: {
        let ones = 0n;
        while ((a >> ones) & 1n) ones++;
        lo = ((a >> ones) << ones) * 4n;
        hi = lo + (1n << (ones + 3n));
      }
    }
    const end = paddr + size;
    if (end <= lo || paddr >= hi) continue;
    if (paddr < lo || end > hi) return false;
    if (priv === Priv.M && (cfg & 0x80) === 0) return true;
    return (cfg & [4, 1, 2][access]) !== 0;
  }
  return priv === Priv.M;
}

it("check() agrees with the reference on random configurations", () => {
  fc.assert(
    fc.property(
      entriesArb,
      paddrArb,
      fc.constantFrom(1, 2, 4, 8),
      accessArb,
      privArb,
      (entries, paddr, size, access, priv) => {
        const pmp = build(entries);
        assert.equal(
          pmp.check(paddr, size, access, priv),
          referenceCheck(entries, BigInt(paddr), BigInt(size), access, priv),
        );
      },
    ),
    { numRuns: 5000 },
  );
});

it("pageUniform() true means every access inside the page gets the page's decision", () => {
  const outcomes = [0, 0];
  const offsetsArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 4095 }), fc.constantFrom(1, 2, 4, 8)), {
    minLength: 20,
    maxLength: 20,
  });
  fc.assert(
    fc.property(
      entriesArb,
      paddrArb,
      accessArb,
      privArb,
      offsetsArb,
      (entries, paddr, access, priv, offsets) => {
        const pmp = build(entries);
        const page = paddr - (paddr % 4096);
        const uniform = pmp.pageUniform(paddr, access, priv);
        outcomes[Number(uniform)]++;
        if (!uniform) return;
        const decision = pmp.check(page, 1, access, priv);
        for (const [offset, size] of offsets) {
          const start = Math.min(offset, 4096 - size);
          assert.equal(pmp.check(page + start, size, access, priv), decision, `offset ${start} size ${size}`);
        }
      },
    ),
    { numRuns: 3000 },
  );
  assert.ok(outcomes[0] > 100 && outcomes[1] > 100, `uniform false/true counts ${outcomes}`);
});
