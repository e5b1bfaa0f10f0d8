/**
 * What every VM's interpreter has in common: the compiled WebAssembly modules (the interpreter, and
 * the block interpreter that runs the translator's cold code) and the RVC expansion table. All depend
 * on the ISA only, so a thread makes them once for all its VMs. A thread that runs
 * VMs in other threads (the daemon and its VM workers) makes them once and hands them over: a
 * WebAssembly.Module can be posted between threads without compiling it again, and a fresh thread's
 * code is still cold, so generating the module (~80 ms) and expanding 64 K halfwords (~90 ms) there
 * cost several times what they cost in a warm thread.
 */
import { fillCompressedTable } from "../isa/compressed.js";
import { buildInterpreter } from "./build.js";

export interface CompiledInterpreter {
  readonly module: WebAssembly.Module;
  /** The variant that returns after every jump or branch (cold code under `--engine translate`). */
  readonly blockModule: WebAssembly.Module;
  /** 65536 entries: each halfword's 32-bit expansion (0 where it is not a compressed instruction). */
  readonly rvcTable: Uint32Array;
}

export const RVC_TABLE_ENTRIES = 65536;

let cached: CompiledInterpreter | null = null;

/** This thread's interpreter: the one handed over with adoptCompiledInterpreter, or one made now. */
export function compiledInterpreter(): CompiledInterpreter {
  if (cached === null) {
    const rvcTable = new Uint32Array(RVC_TABLE_ENTRIES);
    fillCompressedTable(rvcTable);
    const memory = { min: 1, max: 65536 };
    const module = new WebAssembly.Module(buildInterpreter(memory) as BufferSource);
    const blockModule = new WebAssembly.Module(
      buildInterpreter(memory, { stopAfterJump: true }) as BufferSource,
    );
    cached = { module, blockModule, rvcTable };
  }
  return cached;
}

/** Uses an interpreter another thread made (compiledInterpreter() there, then posted) for this thread's VMs. */
export function adoptCompiledInterpreter(interpreter: CompiledInterpreter): void {
  if (
    !(interpreter.module instanceof WebAssembly.Module) ||
    !(interpreter.blockModule instanceof WebAssembly.Module) ||
    interpreter.rvcTable.length !== RVC_TABLE_ENTRIES
  )
    throw new TypeError("not a compiled interpreter");
  cached = interpreter;
}
