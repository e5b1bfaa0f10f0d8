/**
 * mstatus and its supervisor view sstatus (privileged spec 1.12, sections 3.1.6 and 4.1.1) on RV64.
 *
 * Everything writable sits in bits 31:0. The high word is fixed except SD: UXL = SXL = 2 (64-bit, read
 * only), SBE = MBE = 0 (little-endian only), and SD (bit 63) summarises FS because VS and XS are always 0.
 */

import type { CsrState } from "./csr-state.js";
import { CsrEffect } from "./effects.js";

export enum Status {
  SIE = 1 << 1,
  MIE = 1 << 3,
  SPIE = 1 << 5,
  MPIE = 1 << 7,
  SPP = 1 << 8,
  MPP_SHIFT = 11,
  MPP = 3 << 11,
  FS_SHIFT = 13,
  FS = 3 << 13,
  MPRV = 1 << 17,
  SUM = 1 << 18,
  MXR = 1 << 19,
  TVM = 1 << 20,
  TW = 1 << 21,
  TSR = 1 << 22,
}

/** Fields mstatus writes may change. */
const MSTATUS_WRITABLE =
  Status.SIE |
  Status.MIE |
  Status.SPIE |
  Status.MPIE |
  Status.SPP |
  Status.MPP |
  Status.FS |
  Status.MPRV |
  Status.SUM |
  Status.MXR |
  Status.TVM |
  Status.TW |
  Status.TSR;
/** sstatus shows and writes only these (its UBE, VS and XS exist but are always 0 here). */
const SSTATUS_FIELDS = Status.SIE | Status.SPIE | Status.SPP | Status.FS | Status.SUM | Status.MXR;
/** High words: UXL = 2 at bits 33:32, SXL = 2 at bits 35:34 (mstatus only); SD is bit 31 of the high word. */
const MSTATUS_HI = 0b1010;
const SSTATUS_HI = 0b10;
const SD = 1 << 31;
/** Fields whose change alters how loads and stores are translated. */
const TRANSLATION_FIELDS = Status.MPRV | Status.MPP | Status.SUM | Status.MXR;
const MPP_RESERVED = 2 << Status.MPP_SHIFT;

export function readMstatus(r: CsrState, out: Int32Array): void {
  const fs = r.fs;
  out[0] = r.status | (fs << Status.FS_SHIFT);
  out[1] = MSTATUS_HI | (fs === 3 ? SD : 0);
}

export function readSstatus(r: CsrState, out: Int32Array): void {
  const fs = r.fs;
  out[0] = (r.status & SSTATUS_FIELDS) | (fs << Status.FS_SHIFT);
  out[1] = SSTATUS_HI | (fs === 3 ? SD : 0);
}

/** Both views' high words hold nothing writable, so only the low word matters. */
export function writeMstatus(r: CsrState, lo: number): number {
  return writeFields(r, lo, MSTATUS_WRITABLE);
}

export function writeSstatus(r: CsrState, lo: number): number {
  return writeFields(r, lo, SSTATUS_FIELDS);
}

function writeFields(r: CsrState, lo: number, writable: number): number {
  const old = r.status | (r.fs << Status.FS_SHIFT);
  let next = (old & ~writable) | (lo & writable);
  // MPP = 2 names the absent H-level; WARL lets us keep the previous (legal) mode instead.
  if ((next & Status.MPP) === MPP_RESERVED) next = (next & ~Status.MPP) | (old & Status.MPP);
  r.fs = (next & Status.FS) >>> Status.FS_SHIFT;
  r.status = next & ~Status.FS;
  const changed = old ^ next;
  let effects = CsrEffect.NONE;
  if (changed & TRANSLATION_FIELDS) effects |= CsrEffect.TLB_CONTEXT;
  if (changed & (Status.SIE | Status.MIE)) effects |= CsrEffect.CHECK_INTERRUPTS;
  return effects;
}
