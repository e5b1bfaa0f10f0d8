/**
 * The raw contents of a hart's CSRs, shared by the CSR instruction rules (csr-file.ts) and the trap
 * machinery (trap.ts, interrupts.ts). Holds values only; which writes are legal is decided elsewhere.
 *
 * Privilege, mstatus.FS and fcsr live in the hart's state block rather than here, because the wasm
 * interpreter reads them (and the FPU writes fflags and marks FS dirty) without calling out.
 */
import type { Pmp } from "../mmu/pmp.js";
import { HartOffset, type Priv } from "../state.js";

export interface CounterSource {
  /** Writes the 64-bit instruction count (also used for cycle) into out[0] (lo) and out[1] (hi). */
  instret(out: Int32Array): void;
  /** Make instret read `value` from now on (minstret/mcycle writes; value as lo/hi). */
  setInstret(lo: number, hi: number): void;
  /** mtime in 10 MHz ticks. */
  time(): number;
}

/** Index of each 64-bit register's low half in CsrState.wide (the high half follows). */
export enum Wide {
  MTVEC = 0,
  MEPC = 2,
  MCAUSE = 4,
  MTVAL = 6,
  MSCRATCH = 8,
  STVEC = 10,
  SEPC = 12,
  SCAUSE = 14,
  STVAL = 16,
  SSCRATCH = 18,
  SATP = 20,
  STIMECMP = 22,
  COUNT = 24,
}

/** menvcfg.STCE is bit 63, so bit 31 of the high word; no other menvcfg field is implemented. */
export const MENVCFG_STCE = 1 << 31;

const PRIV_SLOT = HartOffset.PRIV >> 2;
const FS_SLOT = HartOffset.FS >> 2;
const FRM_SLOT = HartOffset.FRM >> 2;
const FFLAGS_SLOT = HartOffset.FFLAGS >> 2;

export class CsrState {
  /** mstatus bits 31:0 except FS (kept in the FS slot); bits 63:32 are constants or derived. */
  status = 0;
  medeleg = 0;
  mideleg = 0;
  mie = 0;
  /** mip bits written by software (SSIP, STIP, SEIP). */
  mipSoft = 0;
  /** mip bits driven by devices through setInterruptLine (MSIP, MTIP, MEIP, SEIP, STIP). */
  mipLines = 0;
  /** Writable mip bits the last mip read returned as 1 only because a device line was high. */
  mipLineOnly = 0;
  /** 32-bit registers. */
  mcounteren = 0;
  scounteren = 0;
  /** menvcfg.STCE: stimecmp (Sstc) is enabled and drives STIP. */
  stce = false;
  /** satp decoded on every write, for address translation. */
  satpMode = 0;
  satpPpn = 0;
  asid = 0;
  /** 64-bit registers as (lo, hi) int32 pairs, indexed by Wide. */
  readonly wide = new Int32Array(Wide.COUNT);

  constructor(
    readonly hartId: number,
    private readonly hart: Int32Array,
    readonly counters: CounterSource,
    readonly pmp: Pmp,
  ) {
    // Sstc leaves the reset value open; all ones keeps the timer quiet until software arms it.
    this.wide[Wide.STIMECMP] = -1;
    this.wide[Wide.STIMECMP + 1] = -1;
  }

  get priv(): Priv {
    return this.hart[PRIV_SLOT] as Priv;
  }
  set priv(p: Priv) {
    this.hart[PRIV_SLOT] = p;
  }

  /** mstatus.FS: 0 off, 1 initial, 2 clean, 3 dirty. */
  get fs(): number {
    return this.hart[FS_SLOT] & 3;
  }
  set fs(value: number) {
    this.hart[FS_SLOT] = value;
  }

  get frm(): number {
    return this.hart[FRM_SLOT] & 7;
  }
  set frm(value: number) {
    this.hart[FRM_SLOT] = value;
  }

  get fflags(): number {
    return this.hart[FFLAGS_SLOT] & 0x1f;
  }
  set fflags(value: number) {
    this.hart[FFLAGS_SLOT] = value;
  }

  lo(reg: Wide): number {
    return this.wide[reg];
  }
  hi(reg: Wide): number {
    return this.wide[reg + 1];
  }
  set(reg: Wide, lo: number, hi: number): void {
    this.wide[reg] = lo;
    this.wide[reg + 1] = hi;
  }
}
