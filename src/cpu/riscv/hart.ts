import { CsrFile } from "./csr/csr-file.js";
import type { FpuRegisters } from "./fpu/execute.js";
import { Pmp } from "./mmu/pmp.js";
import { type PageTableMemory, Translator } from "./mmu/translate.js";
import { HART_STRIDE, HartOffset, hartBase, Priv } from "./state.js";
import { SoftTlb } from "./tlb.js";

/**
 * One hardware thread as TypeScript sees it: typed-array windows onto its state block, its CSRs, PMP,
 * page walker and TLB, and the bookkeeping for counters and WFI. The wasm interpreter owns the hot state
 * (registers, pc) in the same memory; nothing here is copied back and forth.
 */
export class Hart {
  readonly base: number;
  /** The whole state block as i32 words (index = byte offset / 4). */
  readonly state: Int32Array;
  readonly fpu: FpuRegisters;
  readonly pmp = new Pmp();
  readonly csr: CsrFile;
  readonly translator: Translator;
  readonly tlb: SoftTlb;
  /** Instructions retired before the current slice (the slice's own count is in SLICE_STEPS). */
  retired = 0;
  /** minstret/mcycle as last written (lo, hi), and the executed count at that moment: the architectural
   *  counter is base + (executed − anchor), summed in 32-bit halves so values past 2^53 stay exact. */
  private readonly counterBase = new Int32Array(2);
  private counterAnchor = 0;
  /** Stopped in WFI until an interrupt is pending. */
  waiting = false;
  /** Stopped by SBI HSM (or not yet started), as opposed to waiting. */
  stopped = false;
  /** mstatus.SUM and MXR as the TLB last saw them (see applyEffects). */
  cachedSum = false;
  cachedMxr = false;
  /** Traps taken (exceptions and interrupts): with instret, the work done, for instruction limits. */
  traps = 0;
  /** Traps by cause: exceptions at [cause], interrupts at [32 + cause] (for --stats). */
  readonly trapCounts = new Float64Array(64);
  /** Host calls during the current slice: bounds a storm of traps that never retires anything. */
  callsThisSlice = 0;

  constructor(
    readonly index: number,
    memory: WebAssembly.Memory,
    walkMemory: PageTableMemory,
    clock: { ticks(): number },
  ) {
    this.base = hartBase(index);
    const buffer = memory.buffer;
    this.state = new Int32Array(buffer, this.base, HART_STRIDE / 4);
    this.fpu = {
      f: new Uint32Array(buffer, this.base + HartOffset.F, 64),
      f64: new Float64Array(buffer, this.base + HartOffset.F, 32),
      x: new Int32Array(buffer, this.base + HartOffset.X, 64),
      fcsr: new Int32Array(buffer, this.base + HartOffset.FFLAGS, 2),
    };
    this.csr = new CsrFile(
      index,
      this.state,
      {
        instret: (out) => this.readCounter(out),
        setInstret: (lo, hi) => {
          this.counterBase[0] = lo;
          this.counterBase[1] = hi;
          // The writing instruction retires after this write, and must not count.
          this.counterAnchor = this.instret() + 1;
        },
        time: () => clock.ticks(),
      },
      this.pmp,
    );
    this.translator = new Translator(walkMemory, this.pmp);
    this.tlb = new SoftTlb(new Int32Array(buffer), this.base);
    this.reset(0, 0);
  }

  /** Power-on state: M-mode at `pc`, registers zero. */
  reset(pcLo: number, pcHi: number): void {
    this.state.fill(0, 0, HartOffset.TLB / 4);
    this.csr.priv = Priv.M;
    this.setPc(pcLo, pcHi);
    this.tlb.flushAll();
    this.selectTlb();
    this.retired = 0;
    this.counterBase.fill(0);
    this.counterAnchor = 0;
    this.waiting = false;
  }

  sliceSteps(): number {
    return this.state[HartOffset.SLICE_STEPS >> 2] as number;
  }

  /** Instructions executed since reset (not affected by minstret writes). */
  instret(): number {
    return this.retired + this.sliceSteps() + (this.state[HartOffset.INTERP_BASE >> 2] as number);
  }

  /** The architectural instret/cycle value as (lo, hi). */
  private readCounter(out: Int32Array): void {
    const delta = this.instret() - this.counterAnchor;
    const lo = ((this.counterBase[0] as number) >>> 0) + (delta % 2 ** 32);
    const carry = lo >= 2 ** 32 ? 1 : 0;
    out[0] = lo | 0;
    out[1] = ((this.counterBase[1] as number) + Math.floor(delta / 2 ** 32) + carry) | 0;
  }

  /** minstret's last written value (lo, hi) and the count it was written at, for a snapshot. */
  counterState(): { base: number[]; anchor: number } {
    return { base: Array.from(this.counterBase), anchor: this.counterAnchor };
  }
  setCounterState(base: readonly number[], anchor: number): void {
    this.counterBase[0] = base[0] as number;
    this.counterBase[1] = base[1] as number;
    this.counterAnchor = anchor;
  }

  /** A TypeScript-executed instruction completed (CSR access, xRET, WFI...). */
  retireOne(): void {
    this.retired++;
  }

  get pcLo(): number {
    return this.state[HartOffset.PC >> 2] as number;
  }
  get pcHi(): number {
    return this.state[(HartOffset.PC >> 2) + 1] as number;
  }
  setPc(lo: number, hi: number): void {
    this.state[HartOffset.PC >> 2] = lo;
    this.state[(HartOffset.PC >> 2) + 1] = hi;
  }
  /** pc += n without BigInt: carry into the high word by hand. */
  advancePc(n: number): void {
    const lo = (this.pcLo >>> 0) + n;
    this.setPc(lo | 0, (this.pcHi + (lo > 0xffffffff ? 1 : 0)) | 0);
  }

  readX(reg: number, out: Int32Array): void {
    out[0] = this.state[reg * 2] as number;
    out[1] = reg === 0 ? 0 : (this.state[reg * 2 + 1] as number);
    if (reg === 0) out[0] = 0;
  }
  writeX(reg: number, lo: number, hi: number): void {
    if (reg === 0) return;
    this.state[reg * 2] = lo;
    this.state[reg * 2 + 1] = hi;
  }

  /** Re-points the wasm side at the TLB sets for the current privilege and MPRV state. */
  selectTlb(): void {
    this.tlb.select(this.csr.priv, this.csr.dataPriv);
  }
}
