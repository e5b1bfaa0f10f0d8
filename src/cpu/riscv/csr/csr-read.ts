/**
 * Reads for CSR instructions: the access check, then each CSR's value as (lo, hi) int32 halves.
 */
import { accessible, isHpmMachineCsr } from "./access.js";
import { readCounter } from "./counters.js";
import { Csr } from "./csr-numbers.js";
import { type CsrState, MENVCFG_STCE, Wide } from "./csr-state.js";
import { readMip, readSie, readSip } from "./interrupt-csrs.js";
import { readPmpaddr, readPmpcfg } from "./pmp-csrs.js";
import { readMstatus, readSstatus } from "./status.js";

/** misa = 0x800000000014112D: MXL = 2 (RV64) with extensions A, C, D, F, I, M, S, U. */
const MISA_LO = 0x0014_112d;
const MISA_HI = 0x8000_0000 | 0;

/** CSR instruction read; false means illegal instruction. */
export function readCsr(r: CsrState, csr: number, out: Int32Array): boolean {
  // Only a read of mip itself sets up the read-modify-write memory of interrupt-csrs.ts.
  r.mipLineOnly = 0;
  if (!accessible(r, csr)) return false;
  switch (csr) {
    case Csr.FFLAGS:
      return put(out, r.fflags);
    case Csr.FRM:
      return put(out, r.frm);
    case Csr.FCSR:
      return put(out, (r.frm << 5) | r.fflags);
    case Csr.SSTATUS:
      readSstatus(r, out);
      return true;
    case Csr.SIE:
      return put(out, readSie(r));
    case Csr.STVEC:
      return get(r, Wide.STVEC, out);
    case Csr.SCOUNTEREN:
      return put(out, r.scounteren);
    case Csr.SSCRATCH:
      return get(r, Wide.SSCRATCH, out);
    case Csr.SEPC:
      return get(r, Wide.SEPC, out);
    case Csr.SCAUSE:
      return get(r, Wide.SCAUSE, out);
    case Csr.STVAL:
      return get(r, Wide.STVAL, out);
    case Csr.SIP:
      return put(out, readSip(r));
    case Csr.STIMECMP:
      return get(r, Wide.STIMECMP, out);
    case Csr.SATP:
      return get(r, Wide.SATP, out);
    case Csr.MSTATUS:
      readMstatus(r, out);
      return true;
    case Csr.MISA:
      return put(out, MISA_LO, MISA_HI);
    case Csr.MEDELEG:
      return put(out, r.medeleg);
    case Csr.MIDELEG:
      return put(out, r.mideleg);
    case Csr.MIE:
      return put(out, r.mie);
    case Csr.MTVEC:
      return get(r, Wide.MTVEC, out);
    case Csr.MCOUNTEREN:
      return put(out, r.mcounteren);
    case Csr.MENVCFG:
      return put(out, 0, r.stce ? MENVCFG_STCE : 0);
    case Csr.MSCRATCH:
      return get(r, Wide.MSCRATCH, out);
    case Csr.MEPC:
      return get(r, Wide.MEPC, out);
    case Csr.MCAUSE:
      return get(r, Wide.MCAUSE, out);
    case Csr.MTVAL:
      return get(r, Wide.MTVAL, out);
    case Csr.MIP:
      return put(out, readMip(r));
    case Csr.MHARTID:
      return put(out, r.hartId);
    case Csr.MCYCLE:
    case Csr.MINSTRET:
      readCounter(r, csr - Csr.MCYCLE, out);
      return true;
    case Csr.SENVCFG:
    case Csr.MCOUNTINHIBIT:
    case Csr.MSECCFG:
    case Csr.TSELECT:
    case Csr.TDATA1:
    case Csr.TDATA2:
    case Csr.TDATA3:
    case Csr.MVENDORID:
    case Csr.MARCHID:
    case Csr.MIMPID:
    case Csr.MCONFIGPTR:
      return put(out, 0);
  }
  return readFamily(r, csr, out);
}

/** The numbered CSR families: counters, hpm events, PMP. */
function readFamily(r: CsrState, csr: number, out: Int32Array): boolean {
  if (csr >= Csr.CYCLE && csr <= Csr.HPMCOUNTER31) {
    readCounter(r, csr - Csr.CYCLE, out);
    return true;
  }
  if (isHpmMachineCsr(csr)) return put(out, 0);
  if (csr >= Csr.PMPCFG0 && csr <= Csr.PMPCFG15) {
    // RV64 packs pmpcfg pairs into the even numbers; the odd ones do not exist.
    if (csr & 1) return false;
    readPmpcfg(r.pmp, csr - Csr.PMPCFG0, out);
    return true;
  }
  if (csr >= Csr.PMPADDR0 && csr <= Csr.PMPADDR63) {
    readPmpaddr(r.pmp, csr - Csr.PMPADDR0, out);
    return true;
  }
  return false;
}

function put(out: Int32Array, lo: number, hi = 0): true {
  out[0] = lo;
  out[1] = hi;
  return true;
}

function get(r: CsrState, reg: Wide, out: Int32Array): true {
  return put(out, r.lo(reg), r.hi(reg));
}
