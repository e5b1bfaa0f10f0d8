/**
 * Which interrupt, if any, the hart takes next (privilege spec 1.12, sections 3.1.9 and 4.1.3, plus Sstc).
 */
import { Priv } from "../state.js";
import type { CsrFile } from "./csr-file.js";
import { type CsrState, Wide } from "./csr-state.js";
import { Status } from "./status.js";

/** Interrupt cause numbers, which are also their mip/mie bit numbers. */
export enum Irq {
  SSI = 1,
  MSI = 3,
  STI = 5,
  MTI = 7,
  SEI = 9,
  MEI = 11,
}

/** mip/mie bit masks. */
export enum Mip {
  SSIP = 1 << 1,
  MSIP = 1 << 3,
  STIP = 1 << 5,
  MTIP = 1 << 7,
  SEIP = 1 << 9,
  MEIP = 1 << 11,
  /** The only interrupts mideleg can hand to S-mode. */
  SUPERVISOR = SSIP | STIP | SEIP,
  ALL = SSIP | MSIP | STIP | MTIP | SEIP | MEIP,
}

/**
 * The mip value interrupts are decided on: software bits, device lines, and with Sstc (menvcfg.STCE) a
 * STIP that follows time >= stimecmp instead of the software bit.
 */
export function pendingBits(r: CsrState): number {
  let soft = r.mipSoft;
  if (r.stce) soft = (soft & ~Mip.STIP) | (stimecmpReached(r) ? Mip.STIP : 0);
  return soft | r.mipLines;
}

/** Unsigned time >= stimecmp without forming the 64-bit compare value (time stays below 2^53). */
function stimecmpReached(r: CsrState): boolean {
  const now = r.counters.time();
  const nowHi = (now / 2 ** 32) >>> 0;
  const limitHi = r.hi(Wide.STIMECMP) >>> 0;
  if (nowHi !== limitHi) return nowHi > limitHi;
  return now >>> 0 >= r.lo(Wide.STIMECMP) >>> 0;
}

/**
 * Highest-priority interrupt to take now (its cause number), or -1. Interrupts for M-mode come first:
 * they are enabled below M, or in M with MIE. Delegated ones go to S-mode and are enabled below S, or in
 * S with SIE, never in M. Within a level the order is MEI, MSI, MTI, SEI, SSI, STI.
 */
export function pendingInterrupt(csr: CsrFile): number {
  const r = csr.regs;
  if (r.mie === 0) return -1;
  const ready = pendingBits(r) & r.mie;
  if (ready === 0) return -1;
  const priv = r.priv;
  const forMachine = ready & ~r.mideleg;
  if (forMachine !== 0 && (priv !== Priv.M || (r.status & Status.MIE) !== 0))
    return highestPriority(forMachine);
  const forSupervisor = ready & r.mideleg;
  if (forSupervisor !== 0 && (priv === Priv.U || (priv === Priv.S && (r.status & Status.SIE) !== 0))) {
    return highestPriority(forSupervisor);
  }
  return -1;
}

/** For WFI: an interrupt is pending and enabled in mie, whatever the global enables and delegation say. */
export function wakeUpPending(csr: CsrFile): boolean {
  const r = csr.regs;
  return r.mie !== 0 && (pendingBits(r) & r.mie) !== 0;
}

function highestPriority(bits: number): number {
  if (bits & Mip.MEIP) return Irq.MEI;
  if (bits & Mip.MSIP) return Irq.MSI;
  if (bits & Mip.MTIP) return Irq.MTI;
  if (bits & Mip.SEIP) return Irq.SEI;
  if (bits & Mip.SSIP) return Irq.SSI;
  if (bits & Mip.STIP) return Irq.STI;
  return -1;
}
