/**
 * Where each piece of a hart's state lives in the machine's WebAssembly.Memory.
 *
 * The interpreter (wasm), the slow paths (TypeScript) and, later, the translator all read and write the
 * same bytes, so this table is the one place that says where things are. Every offset is relative to a
 * hart's base address; 64-bit values are little-endian and 8-byte aligned so TypeScript can view them as
 * (lo, hi) pairs of an Int32Array without BigInt.
 */

/** Bytes between two harts' state blocks. */
export const HART_STRIDE = 0x4_0000;
/** Linear-memory address of hart 0's block; hart i is at HART0_BASE + i * HART_STRIDE. */
export const HART0_BASE = 0x10_0000;
export const MAX_HARTS = 8;
/** 64 K entries of u32: the 32-bit expansion of every 16-bit compressed instruction (0 = illegal). */
export const RVC_TABLE_BASE = 0x1_0000;
/**
 * The translator's block stamps (after the last hart's block): an i32 per function-table slot, the
 * hart's EPOCH when the dispatcher last entered that block, so eviction can find the least recently used.
 */
export const BLOCK_STAMPS_BASE = 0x30_0000;
export const BLOCK_STAMP_SLOTS = 0x4_0000;
/** Guest RAM starts here in linear memory (it maps guest physical address `ramBase`). */
export const RAM_OFFSET = 0x40_0000;

export enum HartOffset {
  /** x0..x31, i64 each. x0 is re-zeroed before every instruction. */
  X = 0x000,
  /** f0..f31 as raw 64-bit patterns; single-precision values are NaN-boxed (upper 32 bits all ones). */
  F = 0x100,
  /** Program counter, i64. Valid whenever TypeScript code runs. */
  PC = 0x200,
  /** Virtual address of a slow-path memory access (i64). */
  SCRATCH_ADDR = 0x208,
  /** Value in (stores) or out (loads, fetches; zero-extended) of a slow-path access (i64). */
  SCRATCH_VAL = 0x210,
  /** Trap value for a trap raised by wasm (i64). */
  TVAL = 0x218,
  /** Address reserved by LR (i64) and whether the reservation is valid (i32). */
  RESERVATION = 0x220,
  RESERVATION_VALID = 0x228,
  /** fcsr split in two i32 fields: accrued exception flags (5 bits) and rounding mode (3 bits). */
  FFLAGS = 0x230,
  FRM = 0x234,
  /** mstatus.FS (0 off, 1 initial, 2 clean, 3 dirty), mirrored so wasm can test it without a call. */
  FS = 0x238,
  /** Current privilege level: 0 U, 1 S, 3 M. */
  PRIV = 0x23c,
  /** Instructions executed so far in the current slice (i32), stored before every call out of wasm. */
  SLICE_STEPS = 0x240,
  /** Linear-memory addresses of the TLB sets used for fetches and for data accesses (i32 each). */
  FETCH_TLB = 0x244,
  DATA_TLB = 0x248,
  /** Set (i32 1) by a slow-path store that hit a page holding translated code; the translator's code
   *  leaves its block after that store and clears it (the interpreter ignores it). */
  CODE_WRITTEN = 0x24c,
  /** The translator's current epoch (i32, moved on each slice); blocks entered are stamped with it. */
  EPOCH = 0x250,
  /**
   * The translator's block interpreter returns to TypeScript at a jump target once that target's HEAT
   * counter reaches this (i32, unsigned; 0: at every jump, as lockstep tests need).
   */
  HOT_LIMIT = 0x254,
  /** Calls the translator's dispatcher made to the block interpreter, and the instructions they ran (i32). */
  INTERP_CALLS = 0x258,
  INTERP_STEPS = 0x25c,
  /**
   * While the dispatcher runs the block interpreter: the slice's instructions before that call (i32;
   * the interpreter's SLICE_STEPS counts from 0), so instret read meanwhile is exact. 0 otherwise.
   */
  INTERP_BASE = 0x260,
  /** Start of the TLB sets: one set per privilege level (U, S, M), see TLB_* below. */
  TLB = 0x1000,
  /** The translator's jump cache (after the TLB sets): JUMP_CACHE_ENTRIES of 16 bytes: virtual pc (i64),
   *  RAM offset of its physical address (i32), block table slot << 7 | block length (i32). */
  JUMP_CACHE = 0x2_0000,
  /** Per hart, HEAT_ENTRIES i32 counters of entries into cold code, indexed by jump target pc >>> 1. */
  HEAT = 0x3_0000,
}

export const JUMP_CACHE_ENTRIES = 4096;
export const HEAT_ENTRIES = 0x4000;

/** Entries per direct-mapped TLB (power of two). */
export const TLB_ENTRIES = 1024;
/**
 * A TLB set holds three tables (fetch, load, store), each TLB_ENTRIES tags followed by TLB_ENTRIES
 * addends. A tag is the page's virtual base address (i64; all ones = invalid, which no masked address
 * equals). The addend is an i32 such that host address = wrap32(vaddr) + addend.
 */
export const TLB_TAGS_BYTES = TLB_ENTRIES * 8;
export const TLB_TABLE_BYTES = TLB_ENTRIES * 12;
export const TLB_SET_BYTES = TLB_TABLE_BYTES * 3;
export enum Access {
  FETCH = 0,
  LOAD = 1,
  STORE = 2,
}

/** Privilege levels. */
export enum Priv {
  U = 0,
  S = 1,
  M = 3,
}

/** Address of the TLB set for a privilege level (U=0, S=1, M=2 as set index). */
export function tlbSetAddress(hartBase: number, priv: Priv): number {
  const set = priv === Priv.M ? 2 : priv;
  return hartBase + HartOffset.TLB + set * TLB_SET_BYTES;
}

/** Address of one table (fetch/load/store) inside a TLB set. */
export function tlbTableAddress(setAddress: number, access: Access): number {
  return setAddress + access * TLB_TABLE_BYTES;
}

/**
 * Return codes of every call from the wasm interpreter into TypeScript.
 * OK: carry on with this instruction. REDIRECT: TypeScript changed PC (trap, xRET...), reload state.
 * EXIT: like REDIRECT, then leave the slice (WFI, stop request, interrupt to check).
 */
export enum CallStatus {
  OK = 0,
  REDIRECT = 1,
  EXIT = 2,
  /** Only from `fetch`: the instruction word is in SCRATCH_VAL. */
  FETCHED = 3,
}

export function hartBase(index: number): number {
  return HART0_BASE + index * HART_STRIDE;
}
