/**
 * The instructions that move or inspect encodings without computing: FSGNJ*, FMV.X.*, FMV.*.X and
 * FCLASS. None of them raises a flag. FMV moves raw bits (no NaN-box check); the others see an
 * improperly boxed single as the canonical NaN, like every arithmetic instruction.
 */

import { classifyDouble, classifySingle } from "./compare.js";
import type { FpuRegisters } from "./execute.js";
import { singleBits, writeSingleBits } from "./registers.js";

const SIGN_BIT = 0x80000000;

/** FSGNJ, FSGNJN, FSGNJX (funct3 0, 1, 2): rs1's encoding with its sign replaced. */
export function injectSign(
  r: FpuRegisters,
  funct3: number,
  rd: number,
  rs1: number,
  rs2: number,
  double: boolean,
) {
  if (double) {
    const high = r.f[2 * rs1 + 1];
    r.f[2 * rd] = r.f[2 * rs1];
    r.f[2 * rd + 1] = (high & ~SIGN_BIT) | injectedSign(funct3, high, r.f[2 * rs2 + 1]);
  } else {
    const bits = singleBits(r, rs1);
    writeSingleBits(r, rd, (bits & ~SIGN_BIT) | injectedSign(funct3, bits, singleBits(r, rs2)));
  }
}

/** The new sign bit, from the words holding the signs of rs1 (own) and rs2 (other). */
function injectedSign(funct3: number, own: number, other: number): number {
  if (funct3 === 0) return other & SIGN_BIT;
  if (funct3 === 1) return ~other & SIGN_BIT;
  return (own ^ other) & SIGN_BIT;
}

/** FMV.X.W (sign-extending the word) and FMV.X.D. */
export function moveToInteger(r: FpuRegisters, rd: number, rs1: number, double: boolean): void {
  const low = r.f[2 * rs1] | 0;
  r.x[2 * rd] = low;
  r.x[2 * rd + 1] = double ? r.f[2 * rs1 + 1] : low >> 31;
}

/** FMV.W.X (NaN-boxing the low word) and FMV.D.X. */
export function moveFromInteger(r: FpuRegisters, rd: number, rs1: number, double: boolean): void {
  if (double) {
    r.f[2 * rd] = r.x[2 * rs1];
    r.f[2 * rd + 1] = r.x[2 * rs1 + 1];
  } else {
    writeSingleBits(r, rd, r.x[2 * rs1]);
  }
}

/** FCLASS.S / FCLASS.D: the 10-bit class mask, zero-extended into x[rd]. */
export function classifyRegister(r: FpuRegisters, rd: number, rs1: number, double: boolean): void {
  r.x[2 * rd] = double ? classifyDouble(r.f[2 * rs1 + 1], r.f[2 * rs1]) : classifySingle(singleBits(r, rs1));
  r.x[2 * rd + 1] = 0;
}
