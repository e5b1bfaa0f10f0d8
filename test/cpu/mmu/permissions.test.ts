/**
 * Every combination of (privilege, PTE U/R/W/X, SUM, MXR, access type) for a 4 KiB leaf, against a
 * predicate transcribed rule by rule from the privileged spec (sections 3.1.6.3 and 4.3.1).
 */
import assert from "node:assert/strict";
import { SatpMode, TranslateResult, Translator } from "../../../src/cpu/riscv/mmu/translate.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";
import { it } from "../../support/test.js";
import { halves, openPmp, PAGE, PageTableBuilder, RAM_BASE, TestMemory } from "./test-memory.js";

interface Case {
  priv: Priv;
  user: boolean;
  sum: boolean;
  mxr: boolean;
  r: boolean;
  w: boolean;
  x: boolean;
  access: Access;
}

function specAllows(c: Case): boolean {
  // "If pte.r = 0 and pte.w = 1, stop and raise a page-fault exception."
  if (!c.r && c.w) return false;
  // R=W=X=0 is a pointer to the next level; at level 0 "if i < 0, stop and raise a page-fault exception".
  if (!c.r && !c.w && !c.x) return false;
  // "U-mode software may only access the page when U=1."
  if (c.priv === Priv.U && !c.user) return false;
  // "When SUM=0, S-mode memory accesses to pages that are accessible by U-mode will fault."
  if (c.priv === Priv.S && c.user && !c.sum) return false;
  // "Irrespective of SUM, the supervisor may not execute code on pages with the U bit set."
  if (c.priv === Priv.S && c.user && c.access === Access.FETCH) return false;
  if (c.access === Access.FETCH) return c.x;
  if (c.access === Access.STORE) return c.w;
  // "When MXR=1, loads from pages marked either readable or executable (R=1 or X=1) will succeed."
  return c.r || (c.mxr && c.x);
}

function* allCases(): Generator<Case> {
  const bools = [false, true];
  for (const priv of [Priv.U, Priv.S])
    for (const user of bools)
      for (const sum of bools)
        for (const mxr of bools)
          for (const r of bools)
            for (const w of bools)
              for (const x of bools)
                for (const access of [Access.FETCH, Access.LOAD, Access.STORE])
                  yield { priv, user, sum, mxr, r, w, x, access };
}

it("U/SUM/MXR/RWX rules match the spec for all 384 combinations", () => {
  const VA = 0x3_0000_1000n;
  let count = 0;
  for (const c of allCases()) {
    const mem = new TestMemory(RAM_BASE, 8 * PAGE);
    const tables = new PageTableBuilder(mem, 3);
    const flags = 0x1 | (c.r ? 2 : 0) | (c.w ? 4 : 0) | (c.x ? 8 : 0) | (c.user ? 0x10 : 0) | 0xc0;
    tables.map(VA, 0x1234_5000n, 0, flags);
    const translator = new Translator(mem, openPmp());
    const [lo, hi] = halves(VA);
    const result = translator.translate(
      lo,
      hi,
      c.access,
      c.priv,
      c.sum,
      c.mxr,
      SatpMode.SV39,
      tables.rootPpn,
    );
    const expected = specAllows(c) ? TranslateResult.OK : TranslateResult.PAGE_FAULT;
    assert.equal(result, expected, JSON.stringify(c));
    count++;
  }
  assert.equal(count, 384);
});
