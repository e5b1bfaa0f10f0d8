/**
 * translate() against the BigInt reference walker over random page tables: random PTEs fill a few slots
 * of every page of a 16-page RAM and random virtual addresses index those slots, so walks go deep, leave
 * RAM, hit reserved bits, misaligned superpages, permission rules and PMP-protected tables.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Pmp, PmpMode } from "../../../src/cpu/riscv/mmu/pmp.js";
import { TranslateResult, Translator } from "../../../src/cpu/riscv/mmu/translate.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";
import { it } from "../../support/test.js";
import { referenceTranslate, type WalkEnv } from "./reference-walker.js";
import { halves, openPmp, PAGE, RAM_BASE, TestMemory } from "./test-memory.js";

const PAGES = 16;
const RAM_PPN = RAM_BASE / PAGE;
const SLOTS = [0, 1, 2, 3, 511];

const ppnArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: PAGES + 1 }).map((i) => BigInt(RAM_PPN + i)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.bigInt({ min: 0n, max: (1n << 44n) - 1n }))
      .map(([level, ppn]) => (ppn >> BigInt(9 * level)) << BigInt(9 * level)),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 44n) - 1n }) },
);
const flagsArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(1) }, // a clean pointer
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 1023 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 1023 }).map((f) => f | 3) }, // a valid readable leaf
);
const reservedArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant(0n) },
  { weight: 1, arbitrary: fc.integer({ min: 54, max: 63 }).map((b) => 1n << BigInt(b)) },
);
const pteArb = fc
  .tuple(flagsArb, ppnArb, reservedArb)
  .map(([flags, ppn, reserved]) => (ppn << 10n) | BigInt(flags) | reserved);

const caseArb = fc.record({
  ptes: fc.array(pteArb, { minLength: PAGES * SLOTS.length, maxLength: PAGES * SLOTS.length }),
  vpns: fc.array(fc.oneof(fc.constantFrom(...SLOTS), fc.integer({ min: 0, max: 511 })), {
    minLength: 4,
    maxLength: 4,
  }),
  offset: fc.integer({ min: 0, max: PAGE - 1 }),
  noncanonicalBit: fc.oneof(
    { weight: 9, arbitrary: fc.constant(-1) },
    { weight: 1, arbitrary: fc.integer({ min: 38, max: 63 }) },
  ),
  access: fc.constantFrom(Access.FETCH, Access.LOAD, Access.STORE),
  priv: fc.constantFrom(Priv.U, Priv.S, Priv.S, Priv.M),
  sum: fc.boolean(),
  mxr: fc.boolean(),
  mode: fc.constantFrom(8, 9, 9, 0),
  rootPage: fc.oneof(
    { weight: 9, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: PAGES + 1 }) },
  ),
  pmp: fc.constantFrom("open", "open", "no-access", "read-only"),
  pmpPage: fc.integer({ min: 0, max: PAGES - 1 }),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function buildMemory(c: Case): TestMemory {
  const mem = new TestMemory(RAM_BASE, PAGES * PAGE);
  c.ptes.forEach((pte, n) => {
    const page = Math.floor(n / SLOTS.length);
    mem.write64(RAM_BASE + page * PAGE + SLOTS[n % SLOTS.length] * 8, pte);
  });
  return mem;
}

/** Entry 0 covers one RAM page with no rights or read-only; entry 1 opens everything else. */
function buildPmp(c: Case): Pmp {
  if (c.pmp === "open") return openPmp();
  const pmp = new Pmp();
  pmp.writeAddr(0, ((RAM_BASE + c.pmpPage * PAGE) >>> 2) | (PAGE / 8 - 1), 0);
  pmp.writeCfg(0, (PmpMode.NAPOT << 3) | (c.pmp === "read-only" ? 1 : 0));
  pmp.writeAddr(1, -1, -1);
  pmp.writeCfg(1, (PmpMode.NAPOT << 3) | 7);
  return pmp;
}

function referenceEnv(mem: TestMemory, c: Case): WalkEnv {
  const protectedPage = BigInt(RAM_BASE + c.pmpPage * PAGE);
  const inProtected = (addr: bigint) =>
    c.pmp !== "open" && addr >= protectedPage && addr < protectedPage + 4096n;
  return {
    read: (addr) => (mem.contains(Number(addr), 8) ? mem.read64(Number(addr)) : undefined),
    write: (addr, value) => mem.write64(Number(addr), value),
    pteReadable: (addr) => !(inProtected(addr) && c.pmp === "no-access"),
    pteWritable: (addr) => !inProtected(addr),
  };
}

function virtualAddress(c: Case): bigint {
  const vaBits = c.mode === 9 ? 48 : 39;
  let va = BigInt(c.offset);
  for (let level = 0; level < 4; level++) va |= BigInt(c.vpns[level]) << BigInt(12 + 9 * level);
  va = BigInt.asUintN(64, BigInt.asIntN(vaBits, va));
  if (c.noncanonicalBit >= 0) va ^= 1n << BigInt(c.noncanonicalBit);
  return va;
}

it("translate() agrees with the reference walker on random page tables", () => {
  const seen = [0, 0, 0];
  fc.assert(
    fc.property(caseArb, (c) => {
      const vaddr = virtualAddress(c);
      const rootPpn = RAM_PPN + c.rootPage;
      const mem = buildMemory(c);
      const translator = new Translator(mem, buildPmp(c));
      const [lo, hi] = halves(vaddr);
      const result = translator.translate(lo, hi, c.access, c.priv, c.sum, c.mxr, c.mode, rootPpn);

      const refMem = buildMemory(c);
      const request = {
        vaddr,
        access: c.access,
        priv: c.priv,
        sum: c.sum,
        mxr: c.mxr,
        mode: c.mode,
        rootPpn: BigInt(rootPpn),
      };
      const expected = referenceTranslate(referenceEnv(refMem, c), request);
      assert.equal(result, expected.result);
      if (result === TranslateResult.OK) assert.equal(translator.paddr, Number(expected.paddr));
      assert.deepEqual(mem.bytes, refMem.bytes, "PTE write-backs differ");
      seen[result]++;
    }),
    { numRuns: 3000 },
  );
  // Guard against a generator that only ever produces one outcome.
  for (const count of seen) assert.ok(count > 100, `outcome counts ${seen}`);
});
