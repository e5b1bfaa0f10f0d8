import type { FunctionBuilder, Label } from "../../../wasm/function.js";
import { ModuleBuilder } from "../../../wasm/module.js";
import { Op, ValType } from "../../../wasm/opcodes.js";
import { buildDecodeTree, type DecodeNode } from "../codegen/decode-tree.js";
import { Emitter, type HostImports } from "../codegen/emit.js";
import { emitJumpCacheOffset } from "../jump-cache.js";
import { HELPERS } from "../semantics/helpers.js";
import { RV64G } from "../semantics/index.js";
import {
  Access,
  CallStatus,
  HartOffset,
  HEAT_ENTRIES,
  RVC_TABLE_BASE,
  TLB_ENTRIES,
  TLB_TABLE_BYTES,
  TLB_TAGS_BYTES,
} from "../state.js";

/** Names of the TypeScript functions the interpreter module imports (module "host"). */
export const HOST_IMPORTS = ["fetch", "load", "store", "probe", "raise", "system", "fpu"] as const;

/** Why `run` returned. */
export enum RunExit {
  BUDGET = 0,
  HOST = 1,
}

interface Locals {
  hart: number;
  budget: number;
  pc: number;
  count: number;
  insn: number;
  raw: number;
  length: number;
  fetchPage: number;
  fetchSpan: number;
  fetchAddend: number;
  fetchTlb: number;
  dataTlb: number;
  status: number;
  index: number;
}

/** Operands come from the instruction word in a local; an abandoned instruction goes to the status handler. */
class InterpreterEmitter extends Emitter {
  constructor(
    builder: FunctionBuilder,
    imports: HostImports,
    helperIndex: (name: string) => number,
    private readonly l: Locals,
    private readonly statusLabel: Label,
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
  protected insnWord() {
    this.f.get(this.l.insn);
  }
  protected pcValue() {
    this.f.get(this.l.pc);
  }
  protected nextPcValue() {
    this.f.get(this.l.pc).get(this.l.length).op(Op.I64Add);
  }
  protected setPc() {
    this.f.set(this.l.pc);
  }
  protected syncBeforeCall() {
    this.f.get(this.l.hart).get(this.l.pc).mem(Op.I64Store, HartOffset.PC);
    this.f.get(this.l.hart).get(this.l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
  }
  protected abandon() {
    this.f.br(this.statusLabel);
  }
  protected rawBitsForTval() {
    this.f.get(this.l.raw).op(Op.I64ExtendI32U);
  }
}

/**
 * Generates the interpreter (with `stopAfterJump`, the variant that also returns after every jump, branch,
 * trap or instruction TypeScript carried out, for the translating engine): `run(hart, budget)` executes up to `budget` instructions of one hart and
 * returns RunExit. Each slice is a fresh call so V8 can swap in its optimised code (wasm has no on-stack
 * replacement). The dispatch is the decode tree as nested br_tables; each leaf is the instruction's
 * semantics from the shared IR, then `pc = next`, `count++`, and back to the loop head.
 */
export function buildInterpreter(
  memoryPages: { min: number; max: number },
  options: { stopAfterJump?: boolean } = {},
): Uint8Array {
  const m = new ModuleBuilder();
  const imports = {} as Record<(typeof HOST_IMPORTS)[number], number>;
  const I32 = ValType.I32;
  imports.fetch = m.importFunction("host", "fetch", [], [I32]);
  imports.load = m.importFunction("host", "load", [I32], [I32]);
  imports.store = m.importFunction("host", "store", [I32], [I32]);
  imports.probe = m.importFunction("host", "probe", [I32, I32], [I32]);
  imports.raise = m.importFunction("host", "raise", [I32], [I32]);
  imports.system = m.importFunction("host", "system", [I32], [I32]);
  imports.fpu = m.importFunction("host", "fpu", [I32], [I32]);
  m.importMemory("env", "memory", memoryPages.min, memoryPages.max);

  const helperIndex = defineHelpers(m, imports);
  const run = m.declareFunction([I32, I32], [I32]);
  m.exportFunction("run", run.index);
  emitRun(run.body, imports, helperIndex, options.stopAfterJump ?? false);
  return m.encode();
}

export function defineHelpers(m: ModuleBuilder, imports: HostImports): (name: string) => number {
  const indices = new Map<string, number>();
  const declared = Object.entries(HELPERS).map(([name, h]) => {
    const fn = m.declareFunction(Array(h.params).fill(ValType.I64), [ValType.I64]);
    indices.set(name, fn.index);
    return { h, fn };
  });
  const lookup = (name: string) => {
    const index = indices.get(name);
    if (index === undefined) throw new Error(`unknown helper ${name}`);
    return index;
  };
  for (const { h, fn } of declared) {
    new HelperEmitter(fn.body, imports, lookup).expr(h.body);
  }
  return lookup;
}

/** Helpers are pure functions of their parameters: no instruction, pc or memory. */
class HelperEmitter extends Emitter {
  readonly hart = -1;
  readonly dataTlb = -1;
  readonly status = -1;
  protected insnWord(): never {
    throw new Error("helpers cannot read the instruction");
  }
  protected pcValue(): never {
    throw new Error("helpers cannot read pc");
  }
  protected nextPcValue(): never {
    throw new Error("helpers cannot read pc");
  }
  protected setPc(): never {
    throw new Error("helpers cannot jump");
  }
  protected syncBeforeCall(): never {
    throw new Error("helpers cannot call out");
  }
  protected abandon(): never {
    throw new Error("helpers cannot trap");
  }
  protected rawBitsForTval(): never {
    throw new Error("helpers cannot trap");
  }
}

function emitRun(
  f: FunctionBuilder,
  imports: Record<(typeof HOST_IMPORTS)[number], number>,
  helperIndex: (name: string) => number,
  stopAfterJump: boolean,
): void {
  const l: Locals = {
    hart: 0,
    budget: 1,
    pc: f.local(ValType.I64),
    count: f.local(ValType.I32),
    insn: f.local(ValType.I32),
    raw: f.local(ValType.I32),
    length: f.local(ValType.I64),
    fetchPage: f.local(ValType.I64),
    fetchSpan: f.local(ValType.I64),
    fetchAddend: f.local(ValType.I32),
    fetchTlb: f.local(ValType.I32),
    dataTlb: f.local(ValType.I32),
    status: f.local(ValType.I32),
    index: f.local(ValType.I32),
  };
  const tree = buildDecodeTree(RV64G);

  const reloadState = () => {
    f.get(l.hart).mem(Op.I64Load, HartOffset.PC).set(l.pc);
    f.get(l.hart).mem(Op.I32Load, HartOffset.FETCH_TLB).set(l.fetchTlb);
    f.get(l.hart).mem(Op.I32Load, HartOffset.DATA_TLB).set(l.dataTlb);
    f.i64(-1).set(l.fetchPage);
    f.i64(0).set(l.fetchSpan);
  };
  reloadState();

  f.loop((next) => {
    f.block((statusLabel) => {
      // Slice budget: interrupts, timers and other harts are handled between slices.
      f.get(l.count).get(l.budget).op(Op.I32GeU);
      f.ifElse(() => {
        f.get(l.hart).get(l.pc).mem(Op.I64Store, HartOffset.PC);
        f.get(l.hart).get(l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
        f.i32(RunExit.BUDGET).op(Op.Return);
      });
      f.get(l.hart).i64(0).mem(Op.I64Store, HartOffset.X);
      f.block((haveWord) => {
        emitFetch(f, l, imports, statusLabel, next, haveWord);
      });
      // Compressed instructions are expanded by table lookup to their 32-bit equivalents.
      f.get(l.insn).i32(3).op(Op.I32And).i32(3).op(Op.I32Ne);
      f.ifElse(
        () => {
          f.get(l.insn).i32(0xffff).op(Op.I32And).tee(l.raw);
          f.i32(2).op(Op.I32Shl).mem(Op.I32Load, RVC_TABLE_BASE).set(l.insn);
          f.i64(2).set(l.length);
        },
        () => {
          f.get(l.insn).set(l.raw);
          f.i64(4).set(l.length);
        },
      );
      const emitter = new InterpreterEmitter(f, imports, helperIndex, l, statusLabel);
      f.block((illegal) => {
        emitNode(emitter, tree, illegal, next, l, stopAfterJump);
      });
      emitter.stmt({ k: "illegal" });
    });
    // A host call did not answer OK: TypeScript has moved pc (trap, xRET, CSR write...) or wants the slice
    // to end.
    f.get(l.status).i32(CallStatus.EXIT).op(Op.I32Eq);
    f.ifElse(() => {
      f.get(l.hart).get(l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
      f.i32(RunExit.HOST).op(Op.Return);
    });
    if (stopAfterJump) {
      // pc moved (trap, xRET, CSR access): a block boundary too. TypeScript stored pc; keep the count.
      f.get(l.hart).get(l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
      f.i32(RunExit.BUDGET).op(Op.Return);
      return;
    }
    reloadState();
    f.br(next);
  });
  f.op(Op.Unreachable);
}

/**
 * Leaves the instruction word in `insn`. Fast path: pc lies in the cached fetch page, below its last
 * halfword (`pc - fetchPage < fetchSpan`; the span is 0 while no page is cached). Otherwise look the page
 * up in the fetch TLB, or ask TypeScript, which fills the TLB (retry), fetches the word itself (page
 * crossing, non-RAM), or raises a fault.
 */
function emitFetch(
  f: FunctionBuilder,
  l: Locals,
  imports: Record<(typeof HOST_IMPORTS)[number], number>,
  statusLabel: Label,
  next: Label,
  haveWord: Label,
): void {
  const slowFetch = () => {
    f.get(l.hart).get(l.pc).mem(Op.I64Store, HartOffset.PC);
    f.get(l.hart).get(l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
    f.call(imports.fetch).tee(l.status);
    f.i32(CallStatus.FETCHED).op(Op.I32Eq);
    f.ifElse(() => {
      f.get(l.hart).mem(Op.I32Load, HartOffset.SCRATCH_VAL).set(l.insn);
      f.br(haveWord);
    });
    f.get(l.status);
    f.ifElse(() => f.br(statusLabel));
    f.br(next);
  };
  const readWord = () =>
    f.get(l.pc).op(Op.I32WrapI64).get(l.fetchAddend).op(Op.I32Add).mem(Op.I32Load).set(l.insn);
  f.block((fast) => {
    f.get(l.pc).get(l.fetchPage).op(Op.I64Sub).get(l.fetchSpan).op(Op.I64LtU).brIf(fast);
    f.get(l.pc).i64Bits(0xfffff000, -1).op(Op.I64And).get(l.fetchPage).op(Op.I64Ne);
    f.ifElse(() => {
      f.get(l.fetchTlb);
      f.get(l.pc)
        .op(Op.I32WrapI64)
        .i32(12)
        .op(Op.I32ShrU)
        .i32(TLB_ENTRIES - 1)
        .op(Op.I32And)
        .tee(l.index);
      f.i32(3)
        .op(Op.I32Shl)
        .op(Op.I32Add)
        .mem(Op.I64Load, Access.FETCH * TLB_TABLE_BYTES);
      f.get(l.pc).i64Bits(0xfffff000, -1).op(Op.I64And).op(Op.I64Eq);
      f.ifElse(() => {
        f.get(l.pc).i64Bits(0xfffff000, -1).op(Op.I64And).set(l.fetchPage);
        f.i64(0xffe).set(l.fetchSpan);
        f.get(l.fetchTlb).get(l.index).i32(2).op(Op.I32Shl).op(Op.I32Add);
        f.mem(Op.I32Load, Access.FETCH * TLB_TABLE_BYTES + TLB_TAGS_BYTES).set(l.fetchAddend);
      }, slowFetch);
    });
    // The page is cached but pc may be its last halfword: the word is read whole (RAM is followed by a
    // guard page); a 32-bit instruction that really crosses the page goes to TypeScript.
    readWord();
    f.get(l.pc).op(Op.I32WrapI64).i32(0xfff).op(Op.I32And).i32(0xffe).op(Op.I32Eq);
    f.get(l.insn).i32(3).op(Op.I32And).i32(3).op(Op.I32Eq);
    f.op(Op.I32And);
    f.ifElse(slowFetch);
    f.br(haveWord);
  });
  readWord();
}

/** Emits the decode tree; every path ends in a branch (to the loop head, the status handler or `illegal`). */
function emitNode(
  e: InterpreterEmitter,
  node: DecodeNode,
  illegal: Label,
  next: Label,
  l: Locals,
  stopAfterJump: boolean,
): void {
  const f = e.f;
  if (node.kind === "illegal") {
    f.br(illegal);
    return;
  }
  if (node.kind === "leaf") {
    if (node.checkMask !== 0) {
      f.get(l.insn)
        .i32(node.checkMask)
        .op(Op.I32And)
        .i32(node.insn.match & node.checkMask)
        .op(Op.I32Ne);
      f.brIf(illegal);
    }
    e.redirected = false;
    for (const s of node.insn.body) e.stmt(s);
    if (!e.redirected) f.get(l.pc).get(l.length).op(Op.I64Add).set(l.pc);
    f.get(l.count).i32(1).op(Op.I32Add).set(l.count);
    if (stopAfterJump && e.redirected) {
      // The translating engine's variant: return at a block boundary whose target may have a translation
      // (it is in the jump cache) or has just become hot, so TypeScript can run or compile it; other
      // cold code runs on here, without a round trip through TypeScript per jump.
      f.block((leave) => {
        f.get(l.hart);
        emitJumpCacheOffset(f, l.pc);
        f.op(Op.I32Add);
        f.mem(Op.I64Load, HartOffset.JUMP_CACHE).get(l.pc).op(Op.I64Eq).brIf(leave);
        f.get(l.hart);
        f.get(l.pc).op(Op.I32WrapI64).i32(1).op(Op.I32ShrU);
        f.i32(HEAT_ENTRIES - 1)
          .op(Op.I32And)
          .i32(2)
          .op(Op.I32Shl)
          .op(Op.I32Add)
          .tee(l.index);
        f.get(l.index).mem(Op.I32Load, HartOffset.HEAT).i32(1).op(Op.I32Add);
        f.mem(Op.I32Store, HartOffset.HEAT);
        f.get(l.index).mem(Op.I32Load, HartOffset.HEAT);
        f.get(l.hart).mem(Op.I32Load, HartOffset.HOT_LIMIT);
        f.op(Op.I32GeU).brIf(leave);
        f.br(next);
      });
      f.get(l.hart).get(l.pc).mem(Op.I64Store, HartOffset.PC);
      f.get(l.hart).get(l.count).mem(Op.I32Store, HartOffset.SLICE_STEPS);
      f.i32(RunExit.BUDGET).op(Op.Return);
      return;
    }
    f.br(next);
    return;
  }
  const children = [...node.cases.entries()];
  const size = 1 << node.field.width;
  const labels: Label[] = [];
  const level = (j: number): void => {
    f.block((label) => {
      labels[j] = label;
      if (j === 0) {
        f.get(l.insn)
          .i32(node.field.lo)
          .op(Op.I32ShrU)
          .i32(size - 1)
          .op(Op.I32And);
        const table: Label[] = [];
        for (let v = 0; v < size; v++) {
          const child = children.findIndex(([value]) => value === v);
          table.push(child < 0 ? illegal : (labels[child] as Label));
        }
        f.brTable(table, illegal);
      } else {
        level(j - 1);
      }
    });
    emitNode(e, (children[j] as [number, DecodeNode])[1], illegal, next, l, stopAfterJump);
  };
  level(children.length - 1);
}
