import type { FunctionBuilder } from "../../../wasm/function.js";
import { Op, ValType } from "../../../wasm/opcodes.js";
import { rdField } from "../semantics/fields.js";
import type { Expr, Stmt, Width } from "../semantics/ir.js";
import { Access, HartOffset, TLB_ENTRIES, TLB_TABLE_BYTES, TLB_TAGS_BYTES } from "../state.js";

/** Recognises a 5-bit register field `(word >>> lo) & 31` with lo >= 3. */
function fieldOf(e: Expr): { word: Expr; lo: number } | null {
  if (e.k !== "op" || e.op !== Op.I32And) return null;
  const [shifted, mask] = e.args as [Expr, Expr];
  if (mask.k !== "const" || mask.lo !== 31 || shifted.k !== "op" || shifted.op !== Op.I32ShrU) return null;
  const [word, amount] = shifted.args as [Expr, Expr];
  if (amount.k !== "const" || amount.lo < 3) return null;
  return { word, lo: amount.lo };
}

/** Trap causes raised directly by generated code. */
export enum Cause {
  ILLEGAL_INSTRUCTION = 2,
  LOAD_MISALIGNED = 4,
  STORE_MISALIGNED = 6,
}

/** Indices of the functions every generated module imports from TypeScript (see hart.ts). */
export interface HostImports {
  load: number;
  store: number;
  probe: number;
  raise: number;
  system: number;
  fpu: number;
}

const LOAD_OPS: Record<string, Op> = {
  "1s": Op.I64Load8S,
  "1u": Op.I64Load8U,
  "2s": Op.I64Load16S,
  "2u": Op.I64Load16U,
  "4s": Op.I64Load32S,
  "4u": Op.I64Load32U,
  "8s": Op.I64Load,
  "8u": Op.I64Load,
};
const STORE_OPS: Record<Width, Op> = { 1: Op.I64Store8, 2: Op.I64Store16, 4: Op.I64Store32, 8: Op.I64Store };
const EXTEND: Record<Width, Op | null> = {
  1: Op.I64Extend8S,
  2: Op.I64Extend16S,
  4: Op.I64Extend32S,
  8: null,
};

/**
 * Turns semantic IR into wasm. The memory fast path (soft-TLB hit → one wasm load/store) and the slow
 * path (call into TypeScript) are the same for every engine; what an engine decides is where operands come
 * from (the subclass) and what happens when an instruction is abandoned because of a trap.
 */
export abstract class Emitter {
  /** i32 local: the hart's state block address. */
  abstract readonly hart: number;
  /** i32 local: the data TLB set of the current privilege (hart.DATA_TLB). */
  abstract readonly dataTlb: number;
  /** i32 local receiving a host call's status. */
  abstract readonly status: number;
  /** Whether the current instruction changed control flow (so the caller must not fall through). */
  redirected = false;

  private readonly scratch = new Map<ValType, number[]>();
  private readonly inUse = new Map<ValType, number>();

  constructor(
    readonly f: FunctionBuilder,
    readonly imports: HostImports,
    readonly helperIndex: (name: string) => number,
  ) {}

  /** Pushes the instruction word (i32). */
  protected abstract insnWord(): void;
  /** Pushes this instruction's address / the next instruction's address (i64). */
  protected abstract pcValue(): void;
  protected abstract nextPcValue(): void;
  /** Sets the program counter of the next instruction (value on the stack). */
  protected abstract setPc(): void;
  /** Stores the live state TypeScript may look at (pc, step counter) before a call out. */
  protected abstract syncBeforeCall(): void;
  /** Leaves the instruction after a host call returned a non-OK status (in the status local). */
  protected abstract abandon(): void;
  /** Pushes the raw instruction bits (as an i64) for the trap value of an illegal instruction. */
  protected abstract rawBitsForTval(): void;
  /**
   * Where a plain load or store that misses the TLB may leave the generated code before the instruction,
   * for the engine to run it another way; null (the default): the slow path is called here.
   */
  protected leaveOnMiss(): (() => void) | null {
    return null;
  }

  expr(e: Expr): void {
    const f = this.f;
    switch (e.k) {
      case "insn":
        this.insnWord();
        return;
      case "x":
        this.registerAddress(e.index);
        f.mem(Op.I64Load, HartOffset.X);
        return;
      case "f":
        this.registerAddress(e.index);
        f.mem(Op.I64Load, HartOffset.F);
        return;
      case "pc":
        this.pcValue();
        return;
      case "nextPc":
        this.nextPcValue();
        return;
      case "const":
        if (e.t === "i32") f.i32(e.lo);
        else f.i64Bits(e.lo, e.hi);
        return;
      case "op":
        for (const a of e.args) this.expr(a);
        f.op(e.op);
        return;
      case "call":
        for (const a of e.args) this.expr(a);
        f.call(this.helperIndex(e.helper));
        return;
      case "param":
      case "local":
        f.get(e.index);
        return;
      case "load":
        this.load(e.width, e.signed, e.addr, Access.LOAD);
        return;
    }
  }

  stmt(s: Stmt): void {
    const f = this.f;
    switch (s.k) {
      case "setRd":
        this.registerAddress(rdField);
        this.expr(s.value);
        f.mem(Op.I64Store, HartOffset.X);
        return;
      case "setFrd":
        this.registerAddress(rdField);
        this.expr(s.value);
        f.mem(Op.I64Store, HartOffset.F);
        f.get(this.hart).i32(3).mem(Op.I32Store, HartOffset.FS);
        return;
      case "requireFpu":
        f.get(this.hart).mem(Op.I32Load, HartOffset.FS).op(Op.I32Eqz);
        f.ifElse(() => this.raise(Cause.ILLEGAL_INSTRUCTION, () => this.rawBitsForTval()));
        return;
      case "jump": {
        const target = this.temp(ValType.I64);
        this.expr(s.target);
        f.set(target);
        if (s.link) this.stmt({ k: "setRd", value: { k: "nextPc", t: "i64" } });
        f.get(target);
        this.setPc();
        this.release(ValType.I64);
        this.redirected = true;
        return;
      }
      case "branch":
        this.expr(s.cond);
        f.ifElse(
          () => this.expr(s.target),
          () => this.nextPcValue(),
          ValType.I64,
        );
        this.setPc();
        this.redirected = true;
        return;
      case "store":
        this.store(s.width, s.addr, s.value);
        return;
      case "amo":
        this.amo(s);
        return;
      case "loadReserved":
        this.loadReserved(s.width, s.addr);
        return;
      case "storeConditional":
        this.storeConditional(s.width, s.addr, s.value);
        return;
      case "host":
        this.syncBeforeCall();
        this.insnWord();
        f.call(s.fn === "system" ? this.imports.system : this.imports.fpu);
        this.checkStatus();
        // TypeScript sets pc itself for system instructions (it always answers REDIRECT or EXIT).
        return;
      case "illegal":
        this.raise(Cause.ILLEGAL_INSTRUCTION, () => this.rawBitsForTval());
        return;
    }
  }

  /** Raises a trap from generated code; `tval` pushes the i64 trap value. */
  raise(cause: Cause, tval: () => void): void {
    const f = this.f;
    f.get(this.hart);
    tval();
    f.mem(Op.I64Store, HartOffset.TVAL);
    this.syncBeforeCall();
    f.i32(cause).call(this.imports.raise).set(this.status);
    this.abandon();
  }

  /** hart + index * 8, for a register of the integer or FP file (the file's offset goes in the memarg). */
  private registerAddress(index: Expr): void {
    this.f.get(this.hart);
    const field = fieldOf(index);
    if (field) {
      // (word >>> lo) & 31, times 8, is (word >>> (lo - 3)) & 0xf8: one shift fewer per operand.
      this.expr(field.word);
      this.f
        .i32(field.lo - 3)
        .op(Op.I32ShrU)
        .i32(0xf8)
        .op(Op.I32And);
    } else {
      this.expr(index);
      this.f.i32(3).op(Op.I32Shl);
    }
    this.f.op(Op.I32Add);
  }

  /** After a host call: keep the status; leave the instruction unless it is OK. */
  private checkStatus(): void {
    this.f.tee(this.status);
    this.f.ifElse(() => this.abandon());
  }

  /**
   * Pushes the TLB tag compare for `va` (local) in table `access`: i32 1 on a hit. Leaves the entry index
   * in `index`. The compare keeps the low address bits that must be zero for an aligned access, so a
   * misaligned access misses and takes the slow path, which handles it.
   */
  private tlbHit(va: number, index: number, access: Access, width: Width): void {
    const f = this.f;
    f.get(this.dataTlb);
    f.get(va)
      .op(Op.I32WrapI64)
      .i32(12)
      .op(Op.I32ShrU)
      .i32(TLB_ENTRIES - 1)
      .op(Op.I32And)
      .tee(index);
    f.i32(3).op(Op.I32Shl).op(Op.I32Add);
    f.mem(Op.I64Load, access * TLB_TABLE_BYTES);
    f.get(va)
      .i64Bits(0xfffff000 | (width - 1), -1)
      .op(Op.I64And);
    f.op(Op.I64Eq);
  }

  /** Pushes the host address of `va` from a TLB entry that hit. */
  private hostAddress(va: number, index: number, access: Access): void {
    const f = this.f;
    f.get(va).op(Op.I32WrapI64);
    f.get(this.dataTlb).get(index).i32(2).op(Op.I32Shl).op(Op.I32Add);
    f.mem(Op.I32Load, access * TLB_TABLE_BYTES + TLB_TAGS_BYTES);
    f.op(Op.I32Add);
  }

  /** Loads through the TLB; pushes the i64 result. */
  private load(width: Width, signed: boolean, addr: Expr, access: Access): void {
    const f = this.f;
    const va = this.temp(ValType.I64);
    const index = this.temp(ValType.I32);
    this.expr(addr);
    f.set(va);
    this.tlbHit(va, index, access, width);
    f.ifElse(
      () => {
        this.hostAddress(va, index, access);
        f.mem(LOAD_OPS[`${width}${signed ? "s" : "u"}`] as Op);
      },
      () => {
        const leave = this.leaveOnMiss();
        if (leave !== null) {
          leave();
          return;
        }
        this.syncBeforeCall();
        f.get(this.hart).get(va).mem(Op.I64Store, HartOffset.SCRATCH_ADDR);
        f.i32(width).call(this.imports.load);
        this.checkStatus();
        f.get(this.hart).mem(Op.I64Load, HartOffset.SCRATCH_VAL);
        const extend = EXTEND[width];
        if (signed && extend !== null) f.op(extend);
      },
      ValType.I64,
    );
    this.release(ValType.I32);
    this.release(ValType.I64);
  }

  /** `mayLeave`: false once the instruction has had an effect (SC cleared the reservation). */
  private store(width: Width, addr: Expr, value: Expr, mayLeave = true): void {
    const f = this.f;
    const va = this.temp(ValType.I64);
    const data = this.temp(ValType.I64);
    const index = this.temp(ValType.I32);
    this.expr(addr);
    f.set(va);
    this.expr(value);
    f.set(data);
    this.tlbHit(va, index, Access.STORE, width);
    f.ifElse(
      () => {
        this.hostAddress(va, index, Access.STORE);
        f.get(data).mem(STORE_OPS[width]);
      },
      () => {
        const leave = mayLeave ? this.leaveOnMiss() : null;
        if (leave !== null) {
          leave();
          return;
        }
        this.syncBeforeCall();
        f.get(this.hart).get(va).mem(Op.I64Store, HartOffset.SCRATCH_ADDR);
        f.get(this.hart).get(data).mem(Op.I64Store, HartOffset.SCRATCH_VAL);
        f.i32(width).call(this.imports.store);
        this.checkStatus();
      },
    );
    this.release(ValType.I32);
    this.release(ValType.I64, 2);
  }

  /** Traps with `cause` unless `va` is aligned to `width`. */
  private requireAligned(va: number, width: 4 | 8, cause: Cause): void {
    const f = this.f;
    f.get(va)
      .op(Op.I32WrapI64)
      .i32(width - 1)
      .op(Op.I32And);
    f.ifElse(() => this.raise(cause, () => f.get(va)));
  }

  /**
   * Pushes the host address for an atomic access at aligned `va`: a store-TLB hit, or else TypeScript
   * fills the entry (or raises the fault) and we look again.
   */
  private atomicHostAddress(va: number, width: 4 | 8): void {
    const f = this.f;
    const index = this.temp(ValType.I32);
    f.loop((again) => {
      this.tlbHit(va, index, Access.STORE, width);
      f.op(Op.I32Eqz);
      f.ifElse(() => {
        this.syncBeforeCall();
        f.get(this.hart).get(va).mem(Op.I64Store, HartOffset.SCRATCH_ADDR);
        f.i32(Access.STORE).i32(width).call(this.imports.probe);
        this.checkStatus();
        f.br(again);
      });
    });
    this.hostAddress(va, index, Access.STORE);
    this.release(ValType.I32);
  }

  private amo(s: Extract<Stmt, { k: "amo" }>): void {
    const f = this.f;
    const va = this.temp(ValType.I64);
    const src = this.temp(ValType.I64);
    const old = this.temp(ValType.I64);
    const host = this.temp(ValType.I32);
    this.expr(s.addr);
    f.set(va);
    this.expr(s.value);
    // Word AMOs compare 32-bit values: sign-extend the source like the old value.
    if (s.width === 4) f.op(Op.I64Extend32S);
    f.set(src);
    this.requireAligned(va, s.width, Cause.STORE_MISALIGNED);
    this.atomicHostAddress(va, s.width);
    f.tee(host);
    f.mem(s.width === 4 ? Op.I64Load32S : Op.I64Load).set(old);
    f.get(host);
    this.expr(s.combine({ k: "local", t: "i64", index: old }, { k: "local", t: "i64", index: src }));
    f.mem(STORE_OPS[s.width]);
    this.stmt({ k: "setRd", value: { k: "local", t: "i64", index: old } });
    this.release(ValType.I32);
    this.release(ValType.I64, 3);
  }

  private loadReserved(width: 4 | 8, addr: Expr): void {
    const f = this.f;
    const va = this.temp(ValType.I64);
    this.expr(addr);
    f.set(va);
    this.requireAligned(va, width, Cause.LOAD_MISALIGNED);
    const value: Expr = {
      k: "load",
      t: "i64",
      width,
      signed: true,
      addr: { k: "local", t: "i64", index: va },
    };
    this.stmt({ k: "setRd", value });
    f.get(this.hart).get(va).mem(Op.I64Store, HartOffset.RESERVATION);
    f.get(this.hart).i32(1).mem(Op.I32Store, HartOffset.RESERVATION_VALID);
    this.release(ValType.I64);
  }

  /** SC: store and rd = 0 if this hart still holds a reservation on the address, else rd = 1. */
  private storeConditional(width: 4 | 8, addr: Expr, value: Expr): void {
    const f = this.f;
    const va = this.temp(ValType.I64);
    const held = this.temp(ValType.I32);
    this.expr(addr);
    f.set(va);
    this.requireAligned(va, width, Cause.STORE_MISALIGNED);
    f.get(this.hart).mem(Op.I32Load, HartOffset.RESERVATION_VALID);
    f.get(this.hart).mem(Op.I64Load, HartOffset.RESERVATION).get(va).op(Op.I64Eq);
    f.op(Op.I32And).set(held);
    f.get(this.hart).i32(0).mem(Op.I32Store, HartOffset.RESERVATION_VALID);
    f.get(held);
    f.ifElse(() => this.store(width, { k: "local", t: "i64", index: va }, value, false));
    this.stmt({
      k: "setRd",
      value: {
        k: "op",
        t: "i64",
        op: Op.I64ExtendI32U,
        args: [{ k: "op", t: "i32", op: Op.I32Eqz, args: [{ k: "local", t: "i32", index: held }] }],
      },
    });
    this.release(ValType.I32);
    this.release(ValType.I64);
  }

  /** A scratch local, reused by later instructions once released (locals are per function). */
  protected temp(type: ValType): number {
    const pool = this.scratch.get(type) ?? [];
    this.scratch.set(type, pool);
    const used = this.inUse.get(type) ?? 0;
    this.inUse.set(type, used + 1);
    if (used < pool.length) return pool[used] as number;
    const index = this.f.local(type);
    pool.push(index);
    return index;
  }

  protected release(type: ValType, count = 1): void {
    this.inUse.set(type, (this.inUse.get(type) ?? 0) - count);
  }
}
