import type { FunctionBuilder } from "../../wasm/function.js";
import { Op } from "../../wasm/opcodes.js";
import { JUMP_CACHE_ENTRIES } from "./state.js";

/**
 * A pc's entry in the translator's per-hart jump cache: bits 1–12 folded with bits 13–24, so blocks at
 * the same offset of different 8 KiB stretches of kernel text do not all share one entry.
 */
export function jumpCacheIndex(pcLo: number): number {
  return ((pcLo >>> 1) ^ (pcLo >>> 13)) & (JUMP_CACHE_ENTRIES - 1);
}

/** Pushes the byte offset of i64 local `pc`'s jump cache entry (jumpCacheIndex × 16), as wasm code. */
export function emitJumpCacheOffset(f: FunctionBuilder, pc: number): void {
  f.get(pc).op(Op.I32WrapI64).i32(1).op(Op.I32ShrU);
  f.get(pc).op(Op.I32WrapI64).i32(13).op(Op.I32ShrU);
  f.op(Op.I32Xor)
    .i32(JUMP_CACHE_ENTRIES - 1)
    .op(Op.I32And)
    .i32(4)
    .op(Op.I32Shl);
}
