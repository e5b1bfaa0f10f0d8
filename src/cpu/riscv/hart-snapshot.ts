/**
 * A hart's state as a versioned record: the registers of the wasm state block, the CSR file, PMP and
 * the counters. What is derived or cached (TLBs, the decoded satp and PMP, the translator's jump cache)
 * is not saved: restoring rebuilds or drops it, so a restored hart never runs on stale translations.
 */
import { RecordReader } from "../../util/record.js";
import { Wide } from "./csr/csr-state.js";
import { writeSatp } from "./csr/satp.js";
import type { Hart } from "./hart.js";
import { PMP_ENTRIES } from "./mmu/pmp.js";
import { SatpMode } from "./mmu/translate.js";
import { HartOffset, Priv } from "./state.js";

/** i32 words of the state block saved: x, f, pc, scratch, tval, reservation, fcsr, FS, privilege. */
const SAVED_WORDS = HartOffset.SLICE_STEPS >> 2;

export interface HartState {
  version: 1;
  /** The state block's first SAVED_WORDS words (see HartOffset). */
  words: number[];
  retired: number;
  /** minstret/mcycle as last written (lo, hi) and the instruction count at that write. */
  counterBase: number[];
  counterAnchor: number;
  waiting: boolean;
  stopped: boolean;
  traps: number;
  trapCounts: number[];
  status: number;
  medeleg: number;
  mideleg: number;
  mie: number;
  mipSoft: number;
  mipLines: number;
  mipLineOnly: number;
  mcounteren: number;
  scounteren: number;
  stce: boolean;
  /** The 64-bit CSRs as (lo, hi) pairs, indexed by Wide. */
  wide: number[];
  pmpCfg: number[];
  pmpAddrLo: number[];
  pmpAddrHi: number[];
}

export function snapshotHart(h: Hart): HartState {
  const r = h.csr.regs;
  const counters = h.counterState();
  const words = Array.from(h.state.subarray(0, SAVED_WORDS));
  // x0's slot may hold what the slice's last instruction wrote to it (it is zeroed before each one).
  words[0] = 0;
  words[1] = 0;
  return {
    version: 1,
    words,
    retired: h.retired,
    counterBase: counters.base,
    counterAnchor: counters.anchor,
    waiting: h.waiting,
    stopped: h.stopped,
    traps: h.traps,
    trapCounts: Array.from(h.trapCounts),
    status: r.status,
    medeleg: r.medeleg,
    mideleg: r.mideleg,
    mie: r.mie,
    mipSoft: r.mipSoft,
    mipLines: r.mipLines,
    mipLineOnly: r.mipLineOnly,
    mcounteren: r.mcounteren,
    scounteren: r.scounteren,
    stce: r.stce,
    wide: Array.from(r.wide),
    pmpCfg: Array.from(h.pmp.cfg),
    pmpAddrLo: Array.from(h.pmp.addrLo),
    pmpAddrHi: Array.from(h.pmp.addrHi),
  };
}

/**
 * Restores `snapshotHart()` into `h`; throws a TypeError naming the field, changing nothing, when the
 * record is malformed. Flushes the hart's TLBs (their host addresses belong to the saved machine).
 */
export function restoreHart(h: Hart, state: unknown): void {
  const s = new RecordReader(`hart${h.index}`, state, 1);
  const words = s.i32s("words", SAVED_WORDS);
  const priv = words[HartOffset.PRIV >> 2] as number;
  if (priv !== Priv.U && priv !== Priv.S && priv !== Priv.M) s.fail("words (privilege)", "0, 1 or 3");
  if (!inRange(words[HartOffset.FS >> 2], 3)) s.fail("words (FS)", "0..3");
  if (!inRange(words[HartOffset.FRM >> 2], 7)) s.fail("words (frm)", "0..7");
  if (!inRange(words[HartOffset.FFLAGS >> 2], 0x1f)) s.fail("words (fflags)", "0..31");
  if (!inRange(words[HartOffset.RESERVATION_VALID >> 2], 1)) s.fail("words (reservation)", "0 or 1");
  if (words[0] !== 0 || words[1] !== 0) s.fail("words (x0)", "zero");
  const wide = s.i32s("wide", Wide.COUNT);
  const satpMode = (wide[Wide.SATP + 1] as number) >>> 28;
  if (satpMode !== SatpMode.BARE && satpMode !== SatpMode.SV39 && satpMode !== SatpMode.SV48) {
    s.fail("wide (satp)", "a supported mode");
  }
  const values = {
    retired: s.count("retired"),
    counterBase: s.i32s("counterBase", 2),
    counterAnchor: s.count("counterAnchor"),
    waiting: s.bool("waiting"),
    stopped: s.bool("stopped"),
    traps: s.count("traps"),
    trapCounts: s.ints("trapCounts", 64, 0, Number.MAX_SAFE_INTEGER),
    status: s.i32("status"),
    medeleg: s.i32("medeleg"),
    mideleg: s.i32("mideleg"),
    mie: s.i32("mie"),
    mipSoft: s.i32("mipSoft"),
    mipLines: s.i32("mipLines"),
    mipLineOnly: s.i32("mipLineOnly"),
    mcounteren: s.i32("mcounteren"),
    scounteren: s.i32("scounteren"),
    stce: s.bool("stce"),
    pmpCfg: s.ints("pmpCfg", PMP_ENTRIES, 0, 0xff),
    pmpAddrLo: s.ints("pmpAddrLo", PMP_ENTRIES, 0, 2 ** 32 - 1),
    pmpAddrHi: s.ints("pmpAddrHi", PMP_ENTRIES, 0, 0x3f_ffff),
  };
  h.state.set(words, 0);
  h.state[HartOffset.SLICE_STEPS >> 2] = 0;
  h.state[HartOffset.CODE_WRITTEN >> 2] = 0;
  h.retired = values.retired;
  h.setCounterState(values.counterBase, values.counterAnchor);
  h.waiting = values.waiting;
  h.stopped = values.stopped;
  h.traps = values.traps;
  h.trapCounts.set(values.trapCounts);
  const r = h.csr.regs;
  r.status = values.status;
  r.medeleg = values.medeleg;
  r.mideleg = values.mideleg;
  r.mie = values.mie;
  r.mipSoft = values.mipSoft;
  r.mipLines = values.mipLines;
  r.mipLineOnly = values.mipLineOnly;
  r.mcounteren = values.mcounteren;
  r.scounteren = values.scounteren;
  r.stce = values.stce;
  r.wide.set(wide);
  writeSatp(r, wide[Wide.SATP] as number, wide[Wide.SATP + 1] as number);
  h.pmp.cfg.set(values.pmpCfg);
  h.pmp.addrLo.set(values.pmpAddrLo);
  h.pmp.addrHi.set(values.pmpAddrHi);
  h.pmp.refresh();
  h.cachedSum = h.csr.sum;
  h.cachedMxr = h.csr.mxr;
  h.tlb.flushAll();
  h.selectTlb();
}

function inRange(v: number | undefined, max: number): boolean {
  return v !== undefined && v >= 0 && v <= max;
}
