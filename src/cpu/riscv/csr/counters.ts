/**
 * Counter CSRs (privileged spec 1.12, sections 3.1.10-3.1.12 and 4.1.5). cycle and instret both count
 * retired instructions, time is mtime, and every hpmcounter is a read-only zero (no events implemented).
 */
import { Priv } from "../state.js";
import type { CsrState } from "./csr-state.js";

export enum Counter {
  CYCLE = 0,
  TIME = 1,
  INSTRET = 2,
}

/**
 * Whether the user-level counter CSR `index` (0xC00 + index) may be read: M always; S when mcounteren
 * allows it; U when mcounteren and scounteren both do.
 */
export function counterEnabled(r: CsrState, index: number): boolean {
  const priv = r.priv;
  if (priv === Priv.M) return true;
  if (((r.mcounteren >>> index) & 1) === 0) return false;
  return priv === Priv.S || ((r.scounteren >>> index) & 1) !== 0;
}

/** Reads counter `index` (the same numbering serves cycle/time/instret and mcycle/minstret). */
export function readCounter(r: CsrState, index: number, out: Int32Array): void {
  if (index === Counter.CYCLE || index === Counter.INSTRET) r.counters.instret(out);
  else storeNumber(out, index === Counter.TIME ? r.counters.time() : 0);
}

/** A non-negative integer below 2^53 as (lo, hi) int32 halves. */
export function storeNumber(out: Int32Array, value: number): void {
  out[0] = value | 0;
  out[1] = (value / 2 ** 32) | 0;
}
