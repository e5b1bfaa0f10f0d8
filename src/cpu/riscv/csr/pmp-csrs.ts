/**
 * pmpcfg and pmpaddr as CSRs (privileged spec 1.12, section 3.7.1). On RV64 only even-numbered pmpcfg
 * CSRs exist and each packs the 8-bit configurations of 8 entries. The spec allows up to 64 entries; the
 * Pmp implements the first few and the CSRs of the others read as zero and ignore writes.
 */
import type { Pmp } from "../mmu/pmp.js";
import { CsrEffect } from "./effects.js";

const ENTRIES_PER_PMPCFG = 8;

/** `index` is the pmpcfg number (0, 2, ... 14). */
export function readPmpcfg(pmp: Pmp, index: number, out: Int32Array): void {
  const first = (index / 2) * ENTRIES_PER_PMPCFG;
  out[0] = packFour(pmp.cfg, first);
  out[1] = packFour(pmp.cfg, first + 4);
}

function packFour(cfg: Uint8Array, first: number): number {
  if (first >= cfg.length) return 0;
  return cfg[first] | (cfg[first + 1] << 8) | (cfg[first + 2] << 16) | (cfg[first + 3] << 24);
}

/** PMP decides what TLB entries may cache, so any PMP change flushes them. */
export function writePmpcfg(pmp: Pmp, index: number, lo: number, hi: number): number {
  const first = (index / 2) * ENTRIES_PER_PMPCFG;
  if (first >= pmp.cfg.length) return CsrEffect.NONE;
  for (let i = 0; i < 4; i++) {
    pmp.writeCfg(first + i, (lo >>> (8 * i)) & 0xff);
    pmp.writeCfg(first + 4 + i, (hi >>> (8 * i)) & 0xff);
  }
  return CsrEffect.FLUSH_TLB;
}

export function readPmpaddr(pmp: Pmp, entry: number, out: Int32Array): void {
  const implemented = entry < pmp.addrLo.length;
  out[0] = implemented ? pmp.addrLo[entry] | 0 : 0;
  out[1] = implemented ? pmp.addrHi[entry] | 0 : 0;
}

export function writePmpaddr(pmp: Pmp, entry: number, lo: number, hi: number): number {
  if (entry >= pmp.addrLo.length) return CsrEffect.NONE;
  pmp.writeAddr(entry, lo, hi);
  return CsrEffect.FLUSH_TLB;
}
