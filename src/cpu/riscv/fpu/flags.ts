/**
 * Exception flags raised while one instruction executes.
 *
 * The arithmetic helpers raise flags as they discover them; the dispatcher ORs the total into fflags
 * once the instruction is done. A module-level accumulator keeps the helpers free of out-parameters.
 */

/** fflags bits, as laid out in fcsr. */
export enum Flag {
  INEXACT = 1,
  UNDERFLOW = 2,
  OVERFLOW = 4,
  DIVIDE_BY_ZERO = 8,
  INVALID = 16,
}

let pending = 0;

export function raise(flags: number): void {
  pending |= flags;
}

/** Returns the flags raised since the last call and clears them. */
export function takeFlags(): number {
  const flags = pending;
  pending = 0;
  return flags;
}
