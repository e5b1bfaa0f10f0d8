import type { FunctionBuilder } from "../../../wasm/function.js";
import { ModuleBuilder } from "../../../wasm/module.js";
import { Op, ValType } from "../../../wasm/opcodes.js";
import type { HostImports } from "../codegen/emit.js";
import { CallStatus, HartOffset } from "../state.js";
import type { DecodedInsn } from "./decode.js";
import { BlockExit, type BlockLocals, TranslatorEmitter } from "./emitter.js";

export { BlockExit };

/** `fn(hart, budget)`: runs the block (again while it loops to itself and the budget allows). */
export type BlockFunction = (hart: number, budget: number) => number;

export interface CompiledBatch {
  functions: BlockFunction[];
  bytes: number;
}

export interface TranslatorHost {
  load(size: number): number;
  store(size: number): number;
  probe(access: number, size: number): number;
  raise(cause: number): number;
  /** FPU arithmetic (the interpreter's `fpu` import). */
  fpu(insn: number): number;
  /** A CSR access allowed mid-block (SystemUnit.csrInBlock). */
  csr(insn: number): number;
}

/**
 * Compiles several blocks into one WebAssembly.Module (one function each, sharing the helpers), so the
 * per-module cost of V8 is paid once per batch.
 */
export function compileBlocks(
  blocks: readonly DecodedInsn[][],
  memory: WebAssembly.Memory,
  host: TranslatorHost,
): CompiledBatch {
  const m = new ModuleBuilder();
  const I32 = ValType.I32;
  const imports: HostImports = {
    load: m.importFunction("host", "load", [I32], [I32]),
    store: m.importFunction("host", "store", [I32], [I32]),
    probe: m.importFunction("host", "probe", [I32, I32], [I32]),
    raise: m.importFunction("host", "raise", [I32], [I32]),
    // SYSTEM instructions in blocks are only CSR accesses, which go to `csr` (see decode.ts).
    system: -1,
    fpu: m.importFunction("host", "fpu", [I32], [I32]),
  };
  const csrImport = m.importFunction("host", "csr", [I32], [I32]);
  // The helpers (mulh, RISC-V division...) are emitted inline (TranslatorEmitter.inlineHelper).
  const helperIndex = (name: string): number => {
    throw new Error(`helper ${name} is inlined in translated code`);
  };
  m.importMemory("env", "memory", 1, 65536);
  blocks.forEach((insns, i) => {
    const fn = m.declareFunction([I32, I32], [I32]);
    m.exportFunction(`b${i}`, fn.index);
    emitBlock(fn.body, insns, imports, csrImport, helperIndex);
  });
  const bytes = m.encode();
  const module = new WebAssembly.Module(bytes as BufferSource);
  const instance = new WebAssembly.Instance(module, {
    env: { memory },
    host: {
      load: (size: number) => host.load(size),
      store: (size: number) => host.store(size),
      probe: (access: number, size: number) => host.probe(access, size),
      raise: (cause: number) => host.raise(cause),
      fpu: (insn: number) => host.fpu(insn),
      csr: (insn: number) => host.csr(insn),
    },
  });
  return {
    functions: blocks.map((_, i) => instance.exports[`b${i}`] as BlockFunction),
    bytes: bytes.length,
  };
}

function emitBlock(
  f: FunctionBuilder,
  insns: readonly DecodedInsn[],
  imports: HostImports,
  csrImport: number,
  helperIndex: (name: string) => number,
): void {
  const l: BlockLocals = {
    hart: 0,
    budget: 1,
    dataTlb: f.local(ValType.I32),
    status: f.local(ValType.I32),
    next: f.local(ValType.I64),
    done: f.local(ValType.I32),
    count: f.local(ValType.I32),
    result: f.local(ValType.I32),
  };
  const first = insns[0] as DecodedInsn;
  const last = insns[insns.length - 1] as DecodedInsn;
  const start = BigInt.asUintN(64, first.pc);
  const startLo = Number(start & 0xffffffffn) >>> 0;
  const startHi = Number(start >> 32n) | 0;
  const end = BigInt.asUintN(64, last.pc + BigInt(last.length));
  const length = insns.length;
  let emitter: TranslatorEmitter | null = null;
  f.get(l.hart).mem(Op.I32Load, HartOffset.DATA_TLB).set(l.dataTlb);
  // Counts continue from the slice's (blocks run back to back by the dispatcher); the budget is absolute.
  f.get(l.hart).mem(Op.I32Load, HartOffset.SLICE_STEPS).set(l.done);
  f.block((abandon) => {
    f.block((exit) => {
      const e = new TranslatorEmitter(f, imports, csrImport, helperIndex, l, abandon, exit);
      emitter = e;
      e.start = first.pc;
      e.blockLength = length;
      e.loadRegisters(insns);
      f.loop((top) => {
        e.loopLabel = top;
        insns.forEach((insn, i) => {
          e.instruction(insn, i, insn.insn.body, i === length - 1);
        });
        if (!e.redirected) f.i64Bits(Number(end & 0xffffffffn) >>> 0, Number(end >> 32n) | 0).set(l.next);
        f.i32(length).set(l.count);
        if (e.redirected) {
          // A block that branches back to its own start runs again here, while a whole iteration fits
          // the budget: no return to TypeScript per loop iteration.
          f.get(l.next).i64Bits(startLo, startHi).op(Op.I64Eq);
          f.get(l.done)
            .i32(2 * length)
            .op(Op.I32Add)
            .get(l.budget)
            .op(Op.I32LeU);
          f.op(Op.I32And);
          f.ifElse(() => {
            f.get(l.done).i32(length).op(Op.I32Add).set(l.done);
            f.br(top);
          });
        }
      });
    });
    const e = emitter as unknown as TranslatorEmitter;
    e.storeRegisters();
    f.get(l.hart).get(l.next).mem(Op.I64Store, HartOffset.PC);
    f.get(l.hart).get(l.done).get(l.count).op(Op.I32Add).mem(Op.I32Store, HartOffset.SLICE_STEPS);
    // BlockExit.NEXT, or MISS when the first instruction's access missed (leaveOnMiss).
    f.get(l.result).op(Op.Return);
  });
  // A call out answered other than OK: TypeScript has set pc (trap) or wants the slice to end.
  (emitter as unknown as TranslatorEmitter).storeRegisters();
  f.get(l.status).i32(CallStatus.EXIT).op(Op.I32Eq);
  f.ifElse(
    () => f.i32(BlockExit.HOST),
    () => f.i32(BlockExit.NEXT),
    ValType.I32,
  );
}
