/**
 * satp (privileged spec 1.12, section 4.1.11) on RV64: MODE in bits 63:60, ASID in 59:44, PPN in 43:0.
 * All 16 ASID bits and all 44 PPN bits are writable, so a supported write is stored as given.
 */
import { SatpMode } from "../mmu/translate.js";
import { type CsrState, Wide } from "./csr-state.js";
import { CsrEffect } from "./effects.js";

/**
 * A write naming an unsupported MODE has no effect at all, as the spec requires. Selecting Bare with other
 * bits set is left UNSPECIFIED by the spec; we store zero so Bare always reads back as 0.
 * The TLBs carry no ASID tags, so every accepted write flushes them (Linux switches address spaces by
 * writing satp alone when it has ASIDs to spare).
 */
export function writeSatp(r: CsrState, lo: number, hi: number): number {
  const mode = hi >>> 28;
  if (mode !== SatpMode.BARE && mode !== SatpMode.SV39 && mode !== SatpMode.SV48) return CsrEffect.NONE;
  if (mode === SatpMode.BARE) {
    lo = 0;
    hi = 0;
  }
  r.set(Wide.SATP, lo, hi);
  r.satpMode = mode;
  r.asid = (hi >>> 12) & 0xffff;
  r.satpPpn = (hi & 0xfff) * 2 ** 32 + (lo >>> 0);
  return CsrEffect.FLUSH_TLB;
}
