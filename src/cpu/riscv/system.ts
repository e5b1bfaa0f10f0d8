import type { SliceRequests } from "./bus.js";
import { CsrEffect } from "./csr/csr-file.js";
import { Csr } from "./csr/csr-numbers.js";
import { wakeUpPending } from "./csr/interrupts.js";
import { mret, sfenceVmaIllegal, sret, wfiIllegal } from "./csr/trap.js";
import { executeFp } from "./fpu/execute.js";
import type { Hart } from "./hart.js";
import { CallStatus, HartOffset, Priv } from "./state.js";
import { applyEffects, endOfCall, takeTrap } from "./trap-entry.js";

const ILLEGAL_INSTRUCTION = 2;
const BREAKPOINT = 3;
const ECALL_FROM = [8, 9, -1, 11];
const ECALL = 0x00000073;
const EBREAK = 0x00100073;
const MRET = 0x30200073;
const SRET = 0x10200073;
const WFI = 0x10500073;

/**
 * CSRs whose write (csr-write.ts) only stores a value (or marks the FP state dirty): no effect on
 * translation, privilege or interrupts, so translated code may carry out such an access in the middle
 * of a block (csrInBlock) and go on.
 */
const PLAIN_WRITE_CSRS = new Set<number>([
  Csr.FFLAGS,
  Csr.FRM,
  Csr.FCSR,
  Csr.STVEC,
  Csr.SSCRATCH,
  Csr.SEPC,
  Csr.SCAUSE,
  Csr.STVAL,
  Csr.MTVEC,
  Csr.MSCRATCH,
  Csr.MEPC,
  Csr.MCAUSE,
  Csr.MTVAL,
]);

/**
 * Whether SYSTEM instruction `insn` is a CSR access translated code may carry out mid-block: any read
 * (CSRRS/CSRRC with x0 or uimm 0 write nothing) or a write to a CSR in PLAIN_WRITE_CSRS. Whether it
 * traps (privilege, FS off, read-only) is decided when it runs.
 */
export function csrInBlockAllowed(insn: number): boolean {
  const funct3 = (insn >>> 12) & 7;
  if ((insn & 0x7f) !== 0x73 || funct3 === 0 || funct3 === 4) return false;
  const writes = (funct3 & 3) === 1 || ((insn >>> 15) & 0x1f) !== 0;
  return !writes || PLAIN_WRITE_CSRS.has(insn >>> 20);
}

/**
 * Answers an ECALL from S-mode in the hypervisor instead of trapping into guest M-mode (the SBI, see
 * machine/). Returns false to let the ECALL trap as usual.
 */
export type EcallHandler = (hart: Hart) => boolean;

/**
 * Instructions the wasm interpreter hands to TypeScript whole: the SYSTEM opcode (CSR access, ECALL,
 * EBREAK, MRET, SRET, WFI, SFENCE.VMA), traps raised by generated code, and FPU arithmetic.
 */
export class SystemUnit {
  ecallHandler: EcallHandler | null = null;
  private readonly old = new Int32Array(2);
  private readonly src = new Int32Array(2);
  private readonly pc = new Int32Array(2);

  constructor(
    private readonly current: () => Hart,
    private readonly attention: SliceRequests,
  ) {}

  /** A trap raised by generated code; the trap value is in the TVAL slot. */
  raise(cause: number): CallStatus {
    const h = this.current();
    const t = HartOffset.TVAL >> 2;
    return takeTrap(h, cause, false, h.state[t] as number, h.state[t + 1] as number);
  }

  execute(insn: number): CallStatus {
    const h = this.current();
    const funct3 = (insn >>> 12) & 7;
    if (funct3 === 0) return this.privileged(h, insn);
    if (funct3 === 4) return this.illegal(h, insn);
    return this.csrAccess(h, insn, funct3);
  }

  floatingPoint(insn: number): CallStatus {
    const h = this.current();
    if (h.state[HartOffset.FS >> 2] === 0 || !executeFp(insn, h.fpu)) return this.illegal(h, insn);
    // Conservatively dirty, as the spec allows: every FPU instruction may write fflags.
    h.state[HartOffset.FS >> 2] = 3;
    return CallStatus.OK;
  }

  private privileged(h: Hart, insn: number): CallStatus {
    const csr = h.csr;
    switch (insn) {
      case ECALL:
        if (csr.priv === Priv.S && this.ecallHandler?.(h)) {
          // A hypercall may raise an interrupt (IPI to self), stop or park this hart, or end the VM.
          const status = this.complete(h, CsrEffect.CHECK_INTERRUPTS);
          return h.stopped || h.waiting || this.attention.endSlice ? CallStatus.EXIT : status;
        }
        return takeTrap(h, ECALL_FROM[csr.priv] as number, false, 0, 0);
      case EBREAK:
        return takeTrap(h, BREAKPOINT, false, h.pcLo, h.pcHi);
      case MRET:
      case SRET: {
        const effects = insn === MRET ? mret(csr, this.pc) : sret(csr, this.pc);
        if (effects < 0) return this.illegal(h, insn);
        h.setPc(this.pc[0] as number, this.pc[1] as number);
        h.retireOne();
        return applyEffects(h, effects);
      }
      case WFI:
        if (wfiIllegal(csr)) return this.illegal(h, insn);
        h.advancePc(4);
        h.retireOne();
        if (wakeUpPending(csr)) return endOfCall(h);
        h.waiting = true;
        return CallStatus.EXIT;
    }
    const isSfenceVma = insn >>> 25 === 0x09 && ((insn >>> 7) & 0x1f) === 0;
    if (!isSfenceVma || sfenceVmaIllegal(csr)) return this.illegal(h, insn);
    h.tlb.flushTranslated();
    return this.complete(h, 0);
  }

  /**
   * A CSR access inside a translated block (csrInBlockAllowed): the source operand is in SCRATCH_VAL
   * (register forms), the old value goes back there; pc and the instruction count stay the block's.
   * Answers OK, or the status of the trap it took (then nothing was written).
   */
  csrInBlock(insn: number): CallStatus {
    const h = this.current();
    const funct3 = (insn >>> 12) & 7;
    const rs1 = (insn >>> 15) & 0x1f;
    const scratch = HartOffset.SCRATCH_VAL >> 2;
    if (funct3 < 4) {
      this.src[0] = h.state[scratch] as number;
      this.src[1] = h.state[scratch + 1] as number;
    } else {
      this.src[0] = rs1;
      this.src[1] = 0;
    }
    const status = this.readModifyWrite(h, insn, funct3, rs1);
    if (status !== null) return status;
    h.state[scratch] = this.old[0] as number;
    h.state[scratch + 1] = this.old[1] as number;
    return CallStatus.OK;
  }

  /** CSRRW/CSRRS/CSRRC and their immediate forms (funct3 5..7). */
  private csrAccess(h: Hart, insn: number, funct3: number): CallStatus {
    const rd = (insn >>> 7) & 0x1f;
    const rs1 = (insn >>> 15) & 0x1f;
    if (funct3 < 4) h.readX(rs1, this.src);
    else {
      this.src[0] = rs1;
      this.src[1] = 0;
    }
    const trapped = this.readModifyWrite(h, insn, funct3, rs1);
    if (trapped !== null) return trapped;
    h.writeX(rd, this.old[0] as number, this.old[1] as number);
    return this.complete(h, this.effects);
  }

  private effects = 0;

  /**
   * Reads the CSR into `old` and writes it from `src` as the instruction says; leaves what the write
   * changed in `effects`. Null when done, else the status of the illegal-instruction trap taken.
   */
  private readModifyWrite(h: Hart, insn: number, funct3: number, rs1: number): CallStatus | null {
    const number = insn >>> 20;
    const op = funct3 & 3;
    // CSRRS/CSRRC with x0 (or uimm 0) read only: no write, so no write-permission trap.
    const writes = op === 1 || rs1 !== 0;
    this.effects = 0;
    if (!h.csr.read(number, this.old)) return this.illegal(h, insn);
    if (writes) {
      const o = this.old;
      const s = this.src;
      let lo = s[0] as number;
      let hi = s[1] as number;
      if (op === 2) {
        lo |= o[0] as number;
        hi |= o[1] as number;
      } else if (op === 3) {
        lo = (o[0] as number) & ~lo;
        hi = (o[1] as number) & ~hi;
      }
      const effects = h.csr.write(number, lo, hi);
      if (effects < 0) return this.illegal(h, insn);
      this.effects = effects;
    }
    return null;
  }

  private complete(h: Hart, effects: number): CallStatus {
    h.advancePc(4);
    h.retireOne();
    return applyEffects(h, effects);
  }

  private illegal(h: Hart, insn: number): CallStatus {
    return takeTrap(h, ILLEGAL_INSTRUCTION, false, insn, 0);
  }
}
