/**
 * Trap entry, MRET/SRET and the privilege checks of WFI and SFENCE.VMA (privileged spec 1.12, sections
 * 3.1.6.1, 3.1.6.5, 3.3.2 and 3.1.7). Trap selection lives in interrupts.ts and is re-exported here.
 */
import { Priv } from "../state.js";
import type { CsrFile } from "./csr-file.js";
import { type CsrState, Wide } from "./csr-state.js";
import { CsrEffect } from "./effects.js";
import { Status } from "./status.js";

export { pendingInterrupt, wakeUpPending } from "./interrupts.js";

/** Result of mret/sret when the instruction is illegal. */
export const RET_ILLEGAL = -1;
/** xcause bit 63 (bit 31 of the high word) marks interrupts. */
const INTERRUPT_BIT = 1 << 31;

/**
 * Takes a trap: to S-mode when it comes from S or U and medeleg/mideleg delegate its cause, otherwise to
 * M-mode (a trap never lowers the privilege). Records xepc/xcause/xtval, stacks the interrupt enable and
 * previous privilege in mstatus, and puts the handler address in outPc.
 */
export function enterTrap(
  csr: CsrFile,
  cause: number,
  interrupt: boolean,
  epcLo: number,
  epcHi: number,
  tvalLo: number,
  tvalHi: number,
  outPc: Int32Array,
): number {
  const r = csr.regs;
  const from = r.priv;
  const delegated = interrupt ? r.mideleg : r.medeleg;
  // `>>>` takes its count mod 32, so causes beyond 31 (none are delegable) must be ruled out first.
  const toSupervisor = from !== Priv.M && cause < 32 && ((delegated >>> cause) & 1) !== 0;
  const causeHi = interrupt ? INTERRUPT_BIT : 0;
  const status = r.status;
  if (toSupervisor) {
    r.set(Wide.SEPC, epcLo & ~1, epcHi);
    r.set(Wide.SCAUSE, cause, causeHi);
    r.set(Wide.STVAL, tvalLo, tvalHi);
    const spie = status & Status.SIE ? Status.SPIE : 0;
    const spp = from === Priv.S ? Status.SPP : 0;
    r.status = (status & ~(Status.SIE | Status.SPIE | Status.SPP)) | spie | spp;
    r.priv = Priv.S;
    handlerAddress(r, Wide.STVEC, interrupt, cause, outPc);
  } else {
    r.set(Wide.MEPC, epcLo & ~1, epcHi);
    r.set(Wide.MCAUSE, cause, causeHi);
    r.set(Wide.MTVAL, tvalLo, tvalHi);
    const mpie = status & Status.MIE ? Status.MPIE : 0;
    r.status = (status & ~(Status.MIE | Status.MPIE | Status.MPP)) | mpie | (from << Status.MPP_SHIFT);
    r.priv = Priv.M;
    handlerAddress(r, Wide.MTVEC, interrupt, cause, outPc);
  }
  return CsrEffect.TLB_CONTEXT;
}

/** xtvec BASE, plus 4 * cause for interrupts in vectored mode (MODE = 1). */
function handlerAddress(r: CsrState, tvec: Wide, interrupt: boolean, cause: number, outPc: Int32Array): void {
  const lo = r.lo(tvec);
  const hi = r.hi(tvec);
  const base = lo & ~3;
  if (!interrupt || (lo & 3) !== 1) {
    outPc[0] = base;
    outPc[1] = hi;
    return;
  }
  const sum = (base >>> 0) + 4 * cause;
  outPc[0] = sum | 0;
  outPc[1] = sum >= 2 ** 32 ? hi + 1 : hi;
}

/**
 * MRET (M-mode only): back to MPP with MIE restored from MPIE; then MPIE = 1, MPP = U, and MPRV = 0 unless
 * returning to M. Effects, or RET_ILLEGAL.
 */
export function mret(csr: CsrFile, outPc: Int32Array): number {
  const r = csr.regs;
  if (r.priv !== Priv.M) return RET_ILLEGAL;
  const status = r.status;
  const target = ((status & Status.MPP) >>> Status.MPP_SHIFT) as Priv;
  const mie = status & Status.MPIE ? Status.MIE : 0;
  let next = (status & ~(Status.MIE | Status.MPP)) | Status.MPIE | mie;
  if (target !== Priv.M) next &= ~Status.MPRV;
  r.status = next;
  r.priv = target;
  outPc[0] = r.lo(Wide.MEPC);
  outPc[1] = r.hi(Wide.MEPC);
  return CsrEffect.TLB_CONTEXT | CsrEffect.CHECK_INTERRUPTS;
}

/**
 * SRET (S-mode unless TSR traps it, and M-mode): back to SPP with SIE restored from SPIE; then SPIE = 1,
 * SPP = U, and MPRV = 0 since the target is never M. Effects, or RET_ILLEGAL.
 */
export function sret(csr: CsrFile, outPc: Int32Array): number {
  const r = csr.regs;
  const status = r.status;
  if (r.priv === Priv.U || (r.priv === Priv.S && (status & Status.TSR) !== 0)) return RET_ILLEGAL;
  const target = status & Status.SPP ? Priv.S : Priv.U;
  const sie = status & Status.SPIE ? Status.SIE : 0;
  r.status = (status & ~(Status.SIE | Status.SPP | Status.MPRV)) | Status.SPIE | sie;
  r.priv = target;
  outPc[0] = r.lo(Wide.SEPC);
  outPc[1] = r.hi(Wide.SEPC);
  return CsrEffect.TLB_CONTEXT | CsrEffect.CHECK_INTERRUPTS;
}

/**
 * WFI is illegal in S-mode when TW = 1, and always in U-mode: with S-mode implemented the spec makes U-mode
 * WFI illegal unless it completes within a bounded time, and our WFI really waits. (Time limit zero.)
 */
export function wfiIllegal(csr: CsrFile): boolean {
  const priv = csr.regs.priv;
  return priv === Priv.U || (priv === Priv.S && (csr.regs.status & Status.TW) !== 0);
}

/** SFENCE.VMA is illegal in U-mode, and in S-mode when TVM = 1. */
export function sfenceVmaIllegal(csr: CsrFile): boolean {
  const priv = csr.regs.priv;
  return priv === Priv.U || (priv === Priv.S && (csr.regs.status & Status.TVM) !== 0);
}
