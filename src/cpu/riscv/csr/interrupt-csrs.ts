/**
 * The interrupt CSRs mideleg, mie/sie and mip/sip (privileged spec 1.12, sections 3.1.9 and 4.1.3).
 * sie and sip are windows onto mie and mip showing only the interrupts delegated to S-mode.
 */
import type { CsrState } from "./csr-state.js";
import { CsrEffect } from "./effects.js";
import { Mip, pendingBits } from "./interrupts.js";

export function writeMideleg(r: CsrState, lo: number): number {
  r.mideleg = lo & Mip.SUPERVISOR;
  return CsrEffect.CHECK_INTERRUPTS;
}

export function writeMie(r: CsrState, lo: number): number {
  r.mie = lo & Mip.ALL;
  return CsrEffect.CHECK_INTERRUPTS;
}

export function readSie(r: CsrState): number {
  return r.mie & r.mideleg;
}

export function writeSie(r: CsrState, lo: number): number {
  r.mie = (r.mie & ~r.mideleg) | (lo & r.mideleg);
  return CsrEffect.CHECK_INTERRUPTS;
}

/** M-mode may pend SSIP, SEIP, and STIP unless Sstc drives it; the M-level bits belong to devices. */
function machineWritable(r: CsrState): number {
  return r.stce ? Mip.SSIP | Mip.SEIP : Mip.SUPERVISOR;
}

/**
 * Reading mip shows software bits ORed with device lines. The spec wants CSRRS/CSRRC to modify only the
 * software bits, but the interpreter hands write() the already-merged value; so the read remembers which
 * writable bits were 1 only through a line, and the following write leaves those software bits alone.
 */
export function readMip(r: CsrState): number {
  r.mipLineOnly = r.mipLines & ~r.mipSoft & machineWritable(r);
  return pendingBits(r);
}

export function writeMip(r: CsrState, lo: number): number {
  const writable = machineWritable(r) & ~r.mipLineOnly;
  r.mipSoft = (r.mipSoft & ~writable) | (lo & writable);
  r.mipLineOnly = 0;
  return CsrEffect.CHECK_INTERRUPTS;
}

export function readSip(r: CsrState): number {
  return pendingBits(r) & r.mideleg;
}

/** Through sip, S-mode can only raise or clear its own software interrupt, and only when delegated. */
export function writeSip(r: CsrState, lo: number): number {
  const writable = Mip.SSIP & r.mideleg;
  r.mipSoft = (r.mipSoft & ~writable) | (lo & writable);
  return CsrEffect.CHECK_INTERRUPTS;
}
