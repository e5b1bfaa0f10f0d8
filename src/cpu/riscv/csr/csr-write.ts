/**
 * Writes for CSR instructions: the access check, then each CSR's WARL rule and the CsrEffect it causes.
 */
import { accessible, isHpmMachineCsr } from "./access.js";
import { Csr } from "./csr-numbers.js";
import { type CsrState, MENVCFG_STCE, Wide } from "./csr-state.js";
import { CsrEffect } from "./effects.js";
import { writeMideleg, writeMie, writeMip, writeSie, writeSip } from "./interrupt-csrs.js";
import { writePmpaddr, writePmpcfg } from "./pmp-csrs.js";
import { writeSatp } from "./satp.js";
import { writeMstatus, writeSstatus } from "./status.js";

/** writeCsr() result for an illegal-instruction exception. */
export const CSR_ILLEGAL = -1;

/** Exceptions 0-15 may be delegated except ecall from M-mode (11), which never reaches S. */
const MEDELEG_WRITABLE = 0xffff & ~(1 << 11);

/** CSR instruction write: CsrEffect bits, or CSR_ILLEGAL. */
export function writeCsr(r: CsrState, csr: number, lo: number, hi: number): number {
  if (csr >>> 10 === 3 || !accessible(r, csr)) return CSR_ILLEGAL;
  switch (csr) {
    case Csr.FFLAGS:
      r.fflags = lo & 0x1f;
      return markFpDirty(r);
    case Csr.FRM:
      r.frm = lo & 7;
      return markFpDirty(r);
    case Csr.FCSR:
      r.fflags = lo & 0x1f;
      r.frm = (lo >>> 5) & 7;
      return markFpDirty(r);
    case Csr.SSTATUS:
      return writeSstatus(r, lo);
    case Csr.SIE:
      return writeSie(r, lo);
    case Csr.STVEC:
      return writeTvec(r, Wide.STVEC, lo, hi);
    case Csr.SCOUNTEREN:
      r.scounteren = lo;
      return CsrEffect.NONE;
    case Csr.SSCRATCH:
      return store(r, Wide.SSCRATCH, lo, hi);
    case Csr.SEPC:
      return store(r, Wide.SEPC, lo & ~1, hi);
    case Csr.SCAUSE:
      return store(r, Wide.SCAUSE, lo, hi);
    case Csr.STVAL:
      return store(r, Wide.STVAL, lo, hi);
    case Csr.SIP:
      return writeSip(r, lo);
    case Csr.STIMECMP:
      r.set(Wide.STIMECMP, lo, hi);
      return CsrEffect.CHECK_INTERRUPTS;
    case Csr.SATP:
      return writeSatp(r, lo, hi);
    case Csr.MSTATUS:
      return writeMstatus(r, lo);
    case Csr.MEDELEG:
      r.medeleg = lo & MEDELEG_WRITABLE;
      return CsrEffect.NONE;
    case Csr.MIDELEG:
      return writeMideleg(r, lo);
    case Csr.MIE:
      return writeMie(r, lo);
    case Csr.MTVEC:
      return writeTvec(r, Wide.MTVEC, lo, hi);
    case Csr.MCOUNTEREN:
      r.mcounteren = lo;
      return CsrEffect.NONE;
    case Csr.MENVCFG:
      return writeMenvcfg(r, hi);
    case Csr.MSCRATCH:
      return store(r, Wide.MSCRATCH, lo, hi);
    case Csr.MEPC:
      return store(r, Wide.MEPC, lo & ~1, hi);
    case Csr.MCAUSE:
      return store(r, Wide.MCAUSE, lo, hi);
    case Csr.MTVAL:
      return store(r, Wide.MTVAL, lo, hi);
    case Csr.MIP:
      return writeMip(r, lo);
    case Csr.MCYCLE:
    case Csr.MINSTRET:
      r.counters.setInstret(lo, hi);
      return CsrEffect.NONE;
    // WARL registers with nothing writable: misa, the unimplemented envcfg, counter and debug fields.
    case Csr.MISA:
    case Csr.SENVCFG:
    case Csr.MCOUNTINHIBIT:
    case Csr.MSECCFG:
    case Csr.TSELECT:
    case Csr.TDATA1:
    case Csr.TDATA2:
    case Csr.TDATA3:
      return CsrEffect.NONE;
  }
  return writeFamily(r, csr, lo, hi);
}

function writeFamily(r: CsrState, csr: number, lo: number, hi: number): number {
  if (isHpmMachineCsr(csr)) return CsrEffect.NONE;
  if (csr >= Csr.PMPCFG0 && csr <= Csr.PMPCFG15) {
    if (csr & 1) return CSR_ILLEGAL;
    return writePmpcfg(r.pmp, csr - Csr.PMPCFG0, lo, hi);
  }
  if (csr >= Csr.PMPADDR0 && csr <= Csr.PMPADDR63) return writePmpaddr(r.pmp, csr - Csr.PMPADDR0, lo, hi);
  return CSR_ILLEGAL;
}

/** xtvec: BASE is 4-byte aligned; MODE 0 (direct) or 1 (vectored), other modes keep the old one. */
function writeTvec(r: CsrState, reg: Wide, lo: number, hi: number): number {
  const mode = lo & 3;
  r.set(reg, (lo & ~3) | (mode < 2 ? mode : r.lo(reg) & 3), hi);
  return CsrEffect.NONE;
}

function writeMenvcfg(r: CsrState, hi: number): number {
  const stce = (hi & MENVCFG_STCE) !== 0;
  if (stce === r.stce) return CsrEffect.NONE;
  // STIP switches between the software bit and the stimecmp comparison.
  r.stce = stce;
  return CsrEffect.CHECK_INTERRUPTS;
}

/** Writing fcsr or a part of it makes FP state dirty, like any FP instruction that changes it. */
function markFpDirty(r: CsrState): number {
  r.fs = 3;
  return CsrEffect.NONE;
}

function store(r: CsrState, reg: Wide, lo: number, hi: number): number {
  r.set(reg, lo, hi);
  return CsrEffect.NONE;
}
