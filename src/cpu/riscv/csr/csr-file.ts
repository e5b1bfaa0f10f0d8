/**
 * The machine- and supervisor-level CSR file of one RV64 hart with M, S and U modes (privileged spec
 * 1.12, chapters 2-4, plus Sstc): access checks and WARL rules of the CSR instructions. Runs on every CSR
 * instruction, so it works on int32 halves and never allocates.
 */
import type { Pmp } from "../mmu/pmp.js";
import { Priv } from "../state.js";
import { readCsr } from "./csr-read.js";
import { type CounterSource, CsrState, Wide } from "./csr-state.js";
import { writeCsr } from "./csr-write.js";
import { Mip } from "./interrupts.js";
import { Status } from "./status.js";

export type { CounterSource } from "./csr-state.js";
export { CSR_ILLEGAL } from "./csr-write.js";
export { CsrEffect } from "./effects.js";

/** Device lines setInterruptLine accepts. */
const LINE_BITS = Mip.MSIP | Mip.MTIP | Mip.MEIP | Mip.SEIP | Mip.STIP;

export class CsrFile {
  /** Raw register contents; trap.ts and interrupts.ts work on these directly. */
  readonly regs: CsrState;

  /** Construction is reset: M-mode, FP off, fcsr zero, every CSR at its reset value. */
  constructor(hartId: number, hart: Int32Array, counters: CounterSource, pmp: Pmp) {
    this.regs = new CsrState(hartId, hart, counters, pmp);
    this.regs.priv = Priv.M;
    this.regs.fs = 0;
    this.regs.frm = 0;
    this.regs.fflags = 0;
  }

  get priv(): Priv {
    return this.regs.priv;
  }
  set priv(p: Priv) {
    this.regs.priv = p;
  }

  // What address translation needs, kept decoded so reading it is a field load.
  get satpMode(): number {
    return this.regs.satpMode;
  }
  get satpPpn(): number {
    return this.regs.satpPpn;
  }
  get asid(): number {
    return this.regs.asid;
  }
  get sum(): boolean {
    return (this.regs.status & Status.SUM) !== 0;
  }
  get mxr(): boolean {
    return (this.regs.status & Status.MXR) !== 0;
  }
  get mprv(): boolean {
    return (this.regs.status & Status.MPRV) !== 0;
  }
  get mpp(): Priv {
    return ((this.regs.status & Status.MPP) >>> Status.MPP_SHIFT) as Priv;
  }
  /** Privilege loads and stores are checked at: MPP when M-mode sets MPRV, else the current one. */
  get dataPriv(): Priv {
    const priv = this.regs.priv;
    return priv === Priv.M && this.mprv ? this.mpp : priv;
  }
  /** mtime value at which Sstc raises STIP (Infinity when Sstc is off); lets WFI sleep until then. */
  get stimecmpDeadline(): number {
    const r = this.regs;
    if (!r.stce) return Number.POSITIVE_INFINITY;
    return (r.hi(Wide.STIMECMP) >>> 0) * 2 ** 32 + (r.lo(Wide.STIMECMP) >>> 0);
  }

  /**
   * CSR instruction access check and read into out[0] (lo) and out[1] (hi). false means illegal
   * instruction: unknown CSR, csr[9:8] above the current privilege, or a gate (mcounteren/scounteren,
   * FS = 0, TVM, Sstc) closed.
   */
  read(csr: number, out: Int32Array): boolean {
    return readCsr(this.regs, csr, out);
  }

  /**
   * CSR instruction write: CsrEffect bits, or CSR_ILLEGAL (-1). Repeats read()'s checks, so it is safe on
   * its own, and also rejects read-only CSR numbers (csr[11:10] = 3).
   */
  write(csr: number, lo: number, hi: number): number {
    return writeCsr(this.regs, csr, lo, hi);
  }

  /** A device drives mip bit `bit` (MSIP, MTIP, MEIP, SEIP or STIP); other bits are ignored. */
  setInterruptLine(bit: number, level: boolean): void {
    const mask = (1 << bit) & LINE_BITS;
    const r = this.regs;
    r.mipLines = level ? r.mipLines | mask : r.mipLines & ~mask;
  }
}
