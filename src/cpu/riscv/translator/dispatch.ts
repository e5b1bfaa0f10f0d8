import type { Label } from "../../../wasm/function.js";
import { ModuleBuilder } from "../../../wasm/module.js";
import { Op, ValType } from "../../../wasm/opcodes.js";
import { emitJumpCacheOffset } from "../jump-cache.js";
import {
  Access,
  BLOCK_STAMPS_BASE,
  HartOffset,
  HEAT_ENTRIES,
  RAM_OFFSET,
  TLB_ENTRIES,
  TLB_TABLE_BYTES,
  TLB_TAGS_BYTES,
} from "../state.js";
import { BlockExit } from "./compile.js";

/**
 * `dispatch(hart, budget, maxBlocks)`: runs translated blocks one after another without returning to
 * TypeScript, while the next pc is in the hart's jump cache, its fetch TLB entry maps it to the physical
 * address the block was compiled from, a whole block fits the budget, and fewer than `maxBlocks` ran.
 * Any other pc is cold code: its heat counter (HartOffset.HEAT) goes up, and unless that makes it hot
 * (HOT_LIMIT; 0 in lockstep tests, so every miss returns) the block interpreter runs it here, up to a
 * target that is in the jump cache or hot. Returns how many blocks and interpreter runs there were, or
 * -1 when one asked TypeScript to end the slice.
 */
export type Dispatch = (hart: number, budget: number, maxBlocks: number) => number;

export const SLOT_SHIFT = 7;

let cached: WebAssembly.Module | null = null;

/** `interpret(hart, budget)`: the block interpreter's run (SLICE_STEPS counts from 0 in it). */
export function buildDispatch(
  memory: WebAssembly.Memory,
  table: WebAssembly.Table,
  interpret: (hart: number, budget: number) => number,
): Dispatch {
  cached ??= new WebAssembly.Module(encode() as BufferSource);
  const instance = new WebAssembly.Instance(cached, { env: { memory, table, interpret } });
  return instance.exports.dispatch as Dispatch;
}

function encode(): Uint8Array {
  const I32 = ValType.I32;
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", 1, 65536);
  m.importTable("env", "table", 1);
  const interpret = m.importFunction("env", "interpret", [I32, I32], [I32]);
  const blockType = m.functionType([I32, I32], [I32]);
  const fn = m.declareFunction([I32, I32, I32], [I32]);
  m.exportFunction("dispatch", fn.index);
  const f = fn.body;
  const hart = 0;
  const budget = 1;
  const maxBlocks = 2;
  const pc = f.local(ValType.I64);
  const set = f.local(I32);
  const index = f.local(I32);
  const entry = f.local(I32);
  const word = f.local(I32);
  const ran = f.local(I32);
  const saved = f.local(I32);
  const slot = f.local(I32);
  const steps = f.local(I32);
  const result = f.local(I32);
  f.block((leave) => {
    f.loop((next) => {
      f.get(ran).get(maxBlocks).op(Op.I32GeU).brIf(leave);
      f.block((miss) => {
        f.block((entryMiss) => {
          lookupAndRun(miss, next, entryMiss);
        });
        // The block's first load or store missed the TLB: the interpreter runs from there.
        interpretUnit(leave, next);
      });
      coldCode(leave, next);
    });
  });
  f.get(ran);
  return m.encode();

  function lookupAndRun(miss: Label, next: Label, entryMiss: Label): void {
    f.get(hart).mem(Op.I64Load, HartOffset.PC).set(pc);
    f.get(hart).mem(Op.I32Load, HartOffset.FETCH_TLB).set(set);
    f.get(pc)
      .op(Op.I32WrapI64)
      .i32(12)
      .op(Op.I32ShrU)
      .i32(TLB_ENTRIES - 1)
      .op(Op.I32And)
      .set(index);
    // The fetch TLB must map pc (it holds only pages fetch may use now: privilege, satp, PMP).
    f.get(set).get(index).i32(3).op(Op.I32Shl).op(Op.I32Add);
    f.mem(Op.I64Load, Access.FETCH * TLB_TABLE_BYTES);
    f.get(pc).i64Bits(0xfffff000, -1).op(Op.I64And).op(Op.I64Ne).brIf(miss);
    f.get(hart);
    emitJumpCacheOffset(f, pc);
    f.op(Op.I32Add).set(entry);
    f.get(entry).mem(Op.I64Load, HartOffset.JUMP_CACHE).get(pc).op(Op.I64Ne).brIf(miss);
    // ...and to the physical address the block was compiled from.
    f.get(pc).op(Op.I32WrapI64);
    f.get(set).get(index).i32(2).op(Op.I32Shl).op(Op.I32Add);
    f.mem(Op.I32Load, Access.FETCH * TLB_TABLE_BYTES + TLB_TAGS_BYTES);
    f.op(Op.I32Add).i32(RAM_OFFSET).op(Op.I32Sub);
    f.get(entry)
      .mem(Op.I32Load, HartOffset.JUMP_CACHE + 8)
      .op(Op.I32Ne)
      .brIf(miss);
    f.get(entry)
      .mem(Op.I32Load, HartOffset.JUMP_CACHE + 12)
      .set(word);
    f.get(hart).mem(Op.I32Load, HartOffset.SLICE_STEPS);
    f.get(word)
      .i32((1 << SLOT_SHIFT) - 1)
      .op(Op.I32And)
      .op(Op.I32Add);
    f.get(budget).op(Op.I32GtU).brIf(miss);
    f.get(ran).i32(1).op(Op.I32Add).set(ran);
    // Stamped as used now: eviction takes the least recently entered blocks first.
    f.get(word).i32(SLOT_SHIFT).op(Op.I32ShrU).i32(2).op(Op.I32Shl);
    f.get(hart).mem(Op.I32Load, HartOffset.EPOCH);
    f.mem(Op.I32Store, BLOCK_STAMPS_BASE);
    f.get(hart).get(budget);
    f.get(word).i32(SLOT_SHIFT).op(Op.I32ShrU);
    f.callIndirect(blockType);
    f.tee(result).i32(BlockExit.HOST).op(Op.I32Eq);
    f.ifElse(() => {
      f.i32(-1).op(Op.Return);
    });
    f.get(hart).i32(0).mem(Op.I32Store, HartOffset.CODE_WRITTEN);
    f.get(result).i32(BlockExit.MISS).op(Op.I32Eq).brIf(entryMiss);
    f.br(next);
  }

  function coldCode(leave: Label, next: Label): void {
    f.get(hart).mem(Op.I32Load, HartOffset.SLICE_STEPS).tee(saved);
    f.get(budget).op(Op.I32GeU).brIf(leave);
    f.get(hart);
    f.get(pc).op(Op.I32WrapI64).i32(1).op(Op.I32ShrU);
    f.i32(HEAT_ENTRIES - 1)
      .op(Op.I32And)
      .i32(2)
      .op(Op.I32Shl)
      .op(Op.I32Add)
      .tee(slot);
    f.get(slot).mem(Op.I32Load, HartOffset.HEAT).i32(1).op(Op.I32Add);
    f.mem(Op.I32Store, HartOffset.HEAT);
    f.get(slot).mem(Op.I32Load, HartOffset.HEAT);
    f.get(hart).mem(Op.I32Load, HartOffset.HOT_LIMIT);
    f.op(Op.I32GeU).brIf(leave);
    interpretUnit(leave, next);
  }

  /** Runs the block interpreter from pc up to a jump, counting what it retires as part of the slice. */
  function interpretUnit(leave: Label, next: Label): void {
    f.get(hart).mem(Op.I32Load, HartOffset.SLICE_STEPS).tee(saved);
    f.get(budget).op(Op.I32GeU).brIf(leave);
    f.get(ran).i32(1).op(Op.I32Add).set(ran);
    f.get(hart).get(saved).mem(Op.I32Store, HartOffset.INTERP_BASE);
    f.get(hart).get(budget).get(saved).op(Op.I32Sub).call(interpret);
    f.get(hart).i32(0).mem(Op.I32Store, HartOffset.INTERP_BASE);
    f.get(hart).mem(Op.I32Load, HartOffset.SLICE_STEPS).set(steps);
    f.get(hart).get(saved).get(steps).op(Op.I32Add).mem(Op.I32Store, HartOffset.SLICE_STEPS);
    f.get(hart).get(hart).mem(Op.I32Load, HartOffset.INTERP_STEPS).get(steps).op(Op.I32Add);
    f.mem(Op.I32Store, HartOffset.INTERP_STEPS);
    f.get(hart).get(hart).mem(Op.I32Load, HartOffset.INTERP_CALLS).i32(1).op(Op.I32Add);
    f.mem(Op.I32Store, HartOffset.INTERP_CALLS);
    f.ifElse(() => {
      f.i32(-1).op(Op.Return);
    });
    f.br(next);
  }
}
