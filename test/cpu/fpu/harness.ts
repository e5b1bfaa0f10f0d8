/**
 * A register file for executeFp and helpers to run one instruction on given register contents.
 * Registers are given and read back as 64-bit bigints.
 */

import { executeFp, type FpuRegisters } from "../../../src/cpu/riscv/fpu/execute.js";

const memory = new ArrayBuffer(256 + 256 + 8);
export const registers: FpuRegisters = {
  f: new Uint32Array(memory, 0, 64),
  f64: new Float64Array(memory, 0, 32),
  x: new Int32Array(memory, 256, 64),
  fcsr: new Int32Array(memory, 512, 2),
};

export function setF(reg: number, value: bigint): void {
  registers.f[2 * reg] = Number(value & 0xffffffffn);
  registers.f[2 * reg + 1] = Number((value >> 32n) & 0xffffffffn);
}

export function getF(reg: number): bigint {
  return (BigInt(registers.f[2 * reg + 1]) << 32n) | BigInt(registers.f[2 * reg]);
}

export function setX(reg: number, value: bigint): void {
  registers.x[2 * reg] = Number(BigInt.asIntN(32, value));
  registers.x[2 * reg + 1] = Number(BigInt.asIntN(32, value >> 32n));
}

export function getX(reg: number): bigint {
  return (BigInt(registers.x[2 * reg + 1] >>> 0) << 32n) | BigInt(registers.x[2 * reg] >>> 0);
}

/** NaN-boxes a single-precision encoding. */
export function box(bits: bigint): bigint {
  return 0xffffffff00000000n | bits;
}

/** Clears everything, then sets fflags and frm. */
export function reset(flags = 0, frm = 0): void {
  new Uint8Array(memory).fill(0);
  registers.fcsr[0] = flags;
  registers.fcsr[1] = frm;
}

/** A snapshot of the whole register file, to check that nothing changed. */
export function snapshot(): string {
  return Buffer.from(memory).toString("hex");
}

export function execute(insn: number): boolean {
  return executeFp(insn, registers);
}

export function hex(value: bigint, width = 64): string {
  return `0x${value.toString(16).padStart(width / 4, "0")}`;
}
