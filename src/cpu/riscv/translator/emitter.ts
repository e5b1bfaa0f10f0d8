import type { FunctionBuilder, Label } from "../../../wasm/function.js";
import { Op, ValType } from "../../../wasm/opcodes.js";
import { Emitter, type HostImports } from "../codegen/emit.js";
import { rdField } from "../semantics/fields.js";
import { HELPERS } from "../semantics/helpers.js";
import type { Expr, Stmt } from "../semantics/ir.js";
import { HartOffset } from "../state.js";
import { constant, evaluate, type Known } from "./evaluate.js";

/** What a translated block returns: like the interpreter's RunExit. */
export enum BlockExit {
  /** Left normally or after a trap: look up the next block. */
  NEXT = 0,
  /** TypeScript asked to end the slice (WFI, a stop request, a device). */
  HOST = 1,
  /**
   * The block's first instruction is a load or store that missed the TLB: nothing of it ran, and the
   * interpreter must run from its start (entering it again would miss again).
   */
  MISS = 2,
}

/** One decoded instruction of a block: its address, expanded word, raw bits and length. */
export interface BlockInsn {
  pc: bigint;
  word: number;
  raw: number;
  length: 2 | 4;
}

/** The function's locals that the exits share. */
export interface BlockLocals {
  hart: number;
  budget: number;
  dataTlb: number;
  status: number;
  /** i64: pc of the instruction after the block (set by the last instruction or an early exit). */
  next: number;
  /** i32: instructions retired by earlier iterations of a self-loop. */
  done: number;
  /** i32: instructions retired in this iteration when it leaves. */
  count: number;
  /** i32: what the block returns when it leaves through the exit (BlockExit.NEXT = 0 unless set). */
  result: number;
}

/**
 * The translator's emitter: the instruction word and pc are known, so operand fields and immediates fold
 * into constants and x0 into zero; guest registers live in i64 locals loaded at block entry and stored at
 * every exit. Each instruction that calls out first records its own pc and the count of instructions
 * before it, so a trap or slow path sees exactly the state the interpreter would show.
 */
export class TranslatorEmitter extends Emitter {
  private current: BlockInsn = { pc: 0n, word: 0, raw: 0, length: 4 };
  private index = 0;
  private known: Known = { insn: 0, pc: 0n, nextPc: 0n };
  /** Guest register → local; registers written so far (stored back at the exits). */
  readonly registers = new Map<number, number>();
  readonly written = new Set<number>();

  constructor(
    builder: FunctionBuilder,
    imports: HostImports,
    private readonly csrImport: number,
    helperIndex: (name: string) => number,
    private readonly l: BlockLocals,
    private readonly abandonLabel: Label,
    private readonly exitLabel: Label,
  ) {
    super(builder, imports, helperIndex);
  }

  get hart() {
    return this.l.hart;
  }
  get dataTlb() {
    return this.l.dataTlb;
  }
  get status() {
    return this.l.status;
  }

  /** Loads every register the block names into its local. */
  loadRegisters(insns: readonly BlockInsn[]): void {
    for (const i of insns) {
      for (const lo of [7, 15, 20]) {
        const r = (i.word >>> lo) & 31;
        if (r === 0 || this.registers.has(r)) continue;
        const local = this.f.local(ValType.I64);
        this.registers.set(r, local);
        this.f
          .get(this.l.hart)
          .mem(Op.I64Load, HartOffset.X + r * 8)
          .set(local);
      }
    }
  }

  /** Stores the registers written so far back to the hart's register file. */
  storeRegisters(): void {
    for (const r of this.written) {
      this.f
        .get(this.l.hart)
        .get(this.registers.get(r) as number)
        .mem(Op.I64Store, HartOffset.X + r * 8);
    }
  }

  /** The loop around the block's body (set once it is open), and the block's entry pc. */
  loopLabel: Label | null = null;
  start = 0n;
  private last = true;

  /** Emits instruction `index` of the block from its IR statements; `last` when it ends the block. */
  instruction(insn: BlockInsn, index: number, body: readonly Stmt[], last: boolean): void {
    this.current = insn;
    this.index = index;
    this.last = last;
    this.known = { insn: insn.word, pc: insn.pc, nextPc: insn.pc + BigInt(insn.length) };
    this.redirected = false;
    for (const s of body) this.stmt(s);
  }

  /** The locals holding the arguments of the helper being inlined (its `param`s), or null. */
  private helperArgs: number[] | null = null;

  /**
   * A helper (mulh*, RISC-V division) is emitted inline, its parameters in locals: a call would make V8
   * keep the block's guest registers in memory around it (see leaveOnMiss).
   */
  private inlineHelper(name: string, args: readonly Expr[]): void {
    const helper = HELPERS[name];
    if (helper === undefined) throw new Error(`unknown helper ${name}`);
    const locals = args.map((a) => {
      this.expr(a);
      const local = this.temp(ValType.I64);
      this.f.set(local);
      return local;
    });
    const outer = this.helperArgs;
    this.helperArgs = locals;
    this.expr(helper.body);
    this.helperArgs = outer;
    this.release(ValType.I64, locals.length);
  }

  override expr(e: Expr): void {
    if (e.k === "call") {
      this.inlineHelper(e.helper, e.args);
      return;
    }
    if (e.k === "param" && this.helperArgs !== null) {
      this.f.get(this.helperArgs[e.index] as number);
      return;
    }
    if (e.k === "x") {
      const r = this.registerNumber(e.index);
      if (r === 0) this.f.i64(0);
      else this.f.get(this.local(r));
      return;
    }
    if (e.k === "op" || e.k === "insn" || e.k === "pc" || e.k === "nextPc") {
      const v = evaluate(e, this.known);
      if (v !== null) {
        super.expr(constant(e.t, v));
        return;
      }
    }
    super.expr(e);
  }

  override stmt(s: Stmt): void {
    if (s.k === "setRd") {
      const rd = this.registerNumber(rdField);
      this.expr(s.value);
      if (rd === 0) {
        // The value may still have trapped (a load into x0); the result itself goes nowhere.
        this.f.op(Op.Drop);
        return;
      }
      this.f.set(this.local(rd));
      this.written.add(rd);
      return;
    }
    if (s.k === "branch" && !this.last) {
      this.sideExit(s.cond, s.target);
      return;
    }
    if (s.k === "host") {
      if (s.fn === "system") this.csrAccess();
      else this.fpuOperation();
      return;
    }
    super.stmt(s);
    // A plain store leaves the block on a miss (leaveOnMiss), so it never writes code here.
    if (s.k === "amo" || s.k === "storeConditional") this.leaveIfCodeWritten();
  }

  /**
   * A store that reached translated code (this block's or another's) was sent to the slow path, which
   * invalidated it and raised CODE_WRITTEN: the instruction is complete, and the rest of this block may
   * be stale, so leave right after it.
   */
  private leaveIfCodeWritten(): void {
    const f = this.f;
    f.get(this.l.hart).mem(Op.I32Load, HartOffset.CODE_WRITTEN);
    f.ifElse(() => {
      f.get(this.l.hart).i32(0).mem(Op.I32Store, HartOffset.CODE_WRITTEN);
      this.pcConst(this.known.nextPc);
      f.set(this.l.next);
      f.i32(this.index + 1).set(this.l.count);
      f.br(this.exitLabel);
    });
  }

  /**
   * A CSR access that cannot change translation, privilege or interrupts (decode.ts lets only those in):
   * TypeScript reads the source from SCRATCH_VAL and leaves the old value there; a trap abandons the block.
   */
  private csrAccess(): void {
    const f = this.f;
    const word = this.current.word;
    const rs1 = (word >>> 15) & 31;
    const rd = (word >>> 7) & 31;
    if (((word >>> 12) & 7) < 4) {
      f.get(this.l.hart);
      if (rs1 === 0) f.i64(0);
      else f.get(this.local(rs1));
      f.mem(Op.I64Store, HartOffset.SCRATCH_VAL);
    }
    this.syncBeforeCall();
    f.i32(word).call(this.csrImport).tee(this.l.status);
    f.ifElse(() => this.abandon());
    if (rd === 0) return;
    f.get(this.l.hart).mem(Op.I64Load, HartOffset.SCRATCH_VAL).set(this.local(rd));
    this.written.add(rd);
  }

  /**
   * FPU arithmetic in TypeScript, which may read x[rs1] and write x[rd] (conversions, moves, compares):
   * both go through the register file around the call, so the locals and it agree either way.
   */
  private fpuOperation(): void {
    const f = this.f;
    const word = this.current.word;
    const regs = [(word >>> 15) & 31, (word >>> 7) & 31].filter((r) => r !== 0 && this.written.has(r));
    for (const r of regs) {
      f.get(this.l.hart)
        .get(this.local(r))
        .mem(Op.I64Store, HartOffset.X + r * 8);
    }
    this.syncBeforeCall();
    f.i32(word).call(this.imports.fpu).tee(this.l.status);
    f.ifElse(() => this.abandon());
    const rd = (word >>> 7) & 31;
    if (rd === 0) return;
    f.get(this.l.hart)
      .mem(Op.I64Load, HartOffset.X + rd * 8)
      .set(this.local(rd));
  }

  /**
   * A conditional branch inside a superblock: when taken, leave with this instruction counted — or, when
   * it goes back to the block's start and another whole pass fits the budget, run the block again.
   */
  private sideExit(cond: Expr, target: Expr): void {
    const f = this.f;
    const to = evaluate(target, this.known);
    const done = this.index + 1;
    this.expr(cond);
    f.ifElse(() => {
      if (
        to !== null &&
        BigInt.asUintN(64, to) === BigInt.asUintN(64, this.start) &&
        this.loopLabel !== null
      ) {
        f.get(this.l.done)
          .i32(done + this.blockLength)
          .op(Op.I32Add)
          .get(this.l.budget)
          .op(Op.I32LeU);
        f.ifElse(() => {
          f.get(this.l.done).i32(done).op(Op.I32Add).set(this.l.done);
          f.br(this.loopLabel as Label);
        });
      }
      this.expr(target);
      f.set(this.l.next);
      f.i32(done).set(this.l.count);
      f.br(this.exitLabel);
    });
  }

  /** Instructions in the block (for the budget check of a loop back to its start). */
  blockLength = 0;

  private registerNumber(index: Expr): number {
    const v = evaluate(index, this.known);
    if (v === null) throw new Error("register number not constant");
    return Number(v) & 31;
  }

  private local(r: number): number {
    const local = this.registers.get(r);
    if (local === undefined) throw new Error(`x${r} not loaded`);
    return local;
  }

  private pcConst(v: bigint): void {
    const bits = BigInt.asUintN(64, v);
    this.f.i64Bits(Number(bits & 0xffffffffn) >>> 0, Number(bits >> 32n) | 0);
  }

  protected insnWord(): void {
    this.f.i32(this.current.word);
  }
  protected pcValue(): void {
    this.pcConst(this.known.pc);
  }
  protected nextPcValue(): void {
    this.pcConst(this.known.nextPc);
  }
  protected setPc(): void {
    this.f.set(this.l.next);
  }
  protected syncBeforeCall(): void {
    const f = this.f;
    f.get(this.l.hart);
    this.pcConst(this.known.pc);
    f.mem(Op.I64Store, HartOffset.PC);
    f.get(this.l.hart)
      .get(this.l.done)
      .i32(this.index)
      .op(Op.I32Add)
      .mem(Op.I32Store, HartOffset.SLICE_STEPS);
  }
  protected abandon(): void {
    this.f.br(this.abandonLabel);
  }
  /**
   * A load or store that misses the TLB (MMIO, a page not yet mapped, a misaligned access, code) leaves the
   * block before it, and the interpreter runs it: a call out in the block would make V8 keep the guest
   * registers in memory around it on the hot path too (its calls preserve no register). At the first
   * instruction the block says so (BlockExit.MISS): the dispatcher then runs the interpreter from there
   * instead of entering the block again.
   */
  protected override leaveOnMiss(): (() => void) | null {
    return () => {
      this.pcConst(this.known.pc);
      this.f.set(this.l.next);
      this.f.i32(this.index).set(this.l.count);
      if (this.index === 0) this.f.i32(BlockExit.MISS).set(this.l.result);
      this.f.br(this.exitLabel);
    };
  }
  protected rawBitsForTval(): void {
    this.f.i64Bits(this.current.raw >>> 0, 0);
  }
}
