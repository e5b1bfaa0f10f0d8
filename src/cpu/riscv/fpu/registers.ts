/**
 * Reading operands from and writing results to the f registers, with RISC-V's NaN-boxing of
 * single-precision values (upper 32 bits all ones) and canonical NaN results.
 */

import { bitsToSingle, singleToBits } from "./bits.js";
import type { FpuRegisters } from "./execute.js";

export const CANONICAL_NAN_SINGLE = 0x7fc00000;
const CANONICAL_NAN_DOUBLE_HIGH = 0x7ff80000;
const NAN_BOX = 0xffffffff;

/** The binary32 encoding in f[reg]: its low word if properly NaN-boxed, else the canonical NaN. */
export function singleBits(r: FpuRegisters, reg: number): number {
  return r.f[2 * reg + 1] === NAN_BOX ? r.f[2 * reg] : CANONICAL_NAN_SINGLE;
}

export function readOperand(r: FpuRegisters, reg: number, double: boolean): number {
  return double ? r.f64[reg] : bitsToSingle(singleBits(r, reg));
}

/** Whether f[reg] holds a signalling NaN of the format (exponent all ones, quiet bit clear, fraction nonzero). */
export function isSignalling(r: FpuRegisters, reg: number, double: boolean): boolean {
  if (double) {
    const high = r.f[2 * reg + 1];
    return (high & 0x7ff80000) === 0x7ff00000 && ((high & 0x7ffff) !== 0 || r.f[2 * reg] !== 0);
  }
  const bits = singleBits(r, reg);
  return (bits & 0x7fc00000) === 0x7f800000 && (bits & 0x3fffff) !== 0;
}

/** Writes a value of the format to f[reg]; NaN becomes the canonical NaN. */
export function writeResult(r: FpuRegisters, reg: number, value: number, double: boolean): void {
  if (!double) {
    writeSingleBits(r, reg, Number.isNaN(value) ? CANONICAL_NAN_SINGLE : singleToBits(value));
  } else if (Number.isNaN(value)) {
    r.f[2 * reg] = 0;
    r.f[2 * reg + 1] = CANONICAL_NAN_DOUBLE_HIGH;
  } else {
    r.f64[reg] = value;
  }
}

export function writeSingleBits(r: FpuRegisters, reg: number, bits: number): void {
  r.f[2 * reg] = bits;
  r.f[2 * reg + 1] = NAN_BOX;
}
