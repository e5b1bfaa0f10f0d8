import { ByteWriter } from "./bytes.js";
import { BLOCK_VOID, Op, type ValType } from "./opcodes.js";

/** A branch target. Its relative depth is computed from the builder's label stack when used. */
export class Label {
  constructor(readonly kind: "block" | "loop" | "if") {}
}

/**
 * Builds one function body. Structured control flow takes callbacks, so a branch can name its target by
 * object instead of by hand-counted depth.
 */
export class FunctionBuilder {
  readonly code = new ByteWriter();
  private readonly localTypes: ValType[] = [];
  private readonly labels: Label[] = [];

  constructor(readonly paramCount: number) {}

  /** Declares a local; returns its index (parameters come first). */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.paramCount + this.localTypes.length - 1;
  }

  op(code: Op): this {
    this.code.byte(code);
    return this;
  }

  i32(value: number): this {
    this.code.byte(Op.I32Const);
    this.code.s32(value);
    return this;
  }

  /** An i64 constant from a safe integer. */
  i64(value: number): this {
    const lo = value % 0x1_0000_0000;
    const hi = Math.floor(value / 0x1_0000_0000);
    return this.i64Bits(lo >>> 0, hi | 0);
  }

  i64Bits(lo: number, hi: number): this {
    this.code.byte(Op.I64Const);
    this.code.s64(lo, hi);
    return this;
  }

  get(index: number): this {
    this.code.byte(Op.LocalGet);
    this.code.u32(index);
    return this;
  }

  set(index: number): this {
    this.code.byte(Op.LocalSet);
    this.code.u32(index);
    return this;
  }

  tee(index: number): this {
    this.code.byte(Op.LocalTee);
    this.code.u32(index);
    return this;
  }

  /** A load or store with a constant offset; alignment hint 0 (guest accesses may be misaligned). */
  mem(code: Op, offset = 0): this {
    this.code.byte(code);
    this.code.u32(0);
    this.code.u32(offset);
    return this;
  }

  call(funcIndex: number): this {
    this.code.byte(Op.Call);
    this.code.u32(funcIndex);
    return this;
  }

  /** Calls entry `table[index on the stack]` of table 0, of function type `typeIndex`. */
  callIndirect(typeIndex: number): this {
    this.code.byte(Op.CallIndirect);
    this.code.u32(typeIndex);
    this.code.byte(0x00);
    return this;
  }

  block(body: (end: Label) => void, result?: ValType): this {
    return this.structured(Op.Block, new Label("block"), body, result);
  }

  loop(body: (start: Label) => void, result?: ValType): this {
    return this.structured(Op.Loop, new Label("loop"), body, result);
  }

  /** if/else on the i32 condition already on the stack. */
  ifElse(then: (end: Label) => void, otherwise?: (end: Label) => void, result?: ValType): this {
    const label = new Label("if");
    this.code.byte(Op.If);
    this.code.byte(result ?? BLOCK_VOID);
    this.labels.push(label);
    then(label);
    if (otherwise) {
      this.code.byte(Op.Else);
      otherwise(label);
    }
    this.labels.pop();
    this.code.byte(Op.End);
    return this;
  }

  br(label: Label): this {
    this.code.byte(Op.Br);
    this.code.u32(this.depth(label));
    return this;
  }

  brIf(label: Label): this {
    this.code.byte(Op.BrIf);
    this.code.u32(this.depth(label));
    return this;
  }

  brTable(targets: Label[], fallback: Label): this {
    this.code.byte(Op.BrTable);
    this.code.u32(targets.length);
    for (const t of targets) this.code.u32(this.depth(t));
    this.code.u32(this.depth(fallback));
    return this;
  }

  /** The encoded body: local declarations, code, end. */
  finish(): ByteWriter {
    const out = new ByteWriter();
    const groups: [ValType, number][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[0] === t) last[1]++;
      else groups.push([t, 1]);
    }
    out.u32(groups.length);
    for (const [t, n] of groups) {
      out.u32(n);
      out.byte(t);
    }
    out.bytes(this.code.view());
    out.byte(Op.End);
    return out;
  }

  private structured(code: Op, label: Label, body: (l: Label) => void, result?: ValType): this {
    this.code.byte(code);
    this.code.byte(result ?? BLOCK_VOID);
    this.labels.push(label);
    body(label);
    this.labels.pop();
    this.code.byte(Op.End);
    return this;
  }

  private depth(label: Label): number {
    const index = this.labels.lastIndexOf(label);
    if (index < 0) throw new Error("branch to a label that is not in scope");
    return this.labels.length - 1 - index;
  }
}
