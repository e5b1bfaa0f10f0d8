/**
 * A CsrFile over a small hart block with a controllable counter source, plus BigInt helpers so tests can
 * state 64-bit CSR values plainly.
 */
import { type CounterSource, CsrFile } from "../../../src/cpu/riscv/csr/csr-file.js";
import { Pmp } from "../../../src/cpu/riscv/mmu/pmp.js";
import { HartOffset, Priv } from "../../../src/cpu/riscv/state.js";

export const U = Priv.U;
export const S = Priv.S;
export const M = Priv.M;
export const PRIVS = [Priv.U, Priv.S, Priv.M] as const;
export const PRIV_NAMES = ["U", "S", "", "M"];

/** Hart-block slots the CSR file mirrors (Int32Array indices). */
export const SLOT = {
  FFLAGS: HartOffset.FFLAGS >> 2,
  FRM: HartOffset.FRM >> 2,
  FS: HartOffset.FS >> 2,
  PRIV: HartOffset.PRIV >> 2,
};

export class FakeCounters implements CounterSource {
  retired = 0n;
  now = 0;
  instret(out: Int32Array): void {
    out[0] = Number(BigInt.asIntN(32, this.retired));
    out[1] = Number(BigInt.asIntN(32, this.retired >> 32n));
  }
  setInstret(lo: number, hi: number): void {
    this.retired = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
  time(): number {
    return this.now;
  }
}

export interface Hart {
  csr: CsrFile;
  /** The hart state block; only the slots up to the TLB area exist in this test version. */
  block: Int32Array;
  counters: FakeCounters;
  pmp: Pmp;
  /** CSR read at the current privilege, or null when illegal. */
  read(num: number): bigint | null;
  /** CSR read that must succeed. */
  get(num: number): bigint;
  /** CSR write at the current privilege: effects, or -1. */
  write(num: number, value: bigint): number;
}

export function makeHart(hartId = 0): Hart {
  const block = new Int32Array(HartOffset.TLB / 4);
  const counters = new FakeCounters();
  const pmp = new Pmp();
  const csr = new CsrFile(hartId, block, counters, pmp);
  const out = new Int32Array(2);
  const read = (num: number): bigint | null => (csr.read(num, out) ? join(out[0], out[1]) : null);
  const get = (num: number): bigint => {
    const value = read(num);
    if (value === null) throw new Error(`CSR 0x${num.toString(16)} unexpectedly illegal`);
    return value;
  };
  const write = (num: number, value: bigint): number => {
    const [lo, hi] = split(value);
    return csr.write(num, lo, hi);
  };
  return { csr, block, counters, pmp, read, get, write };
}

/** (lo, hi) int32 halves to an unsigned 64-bit BigInt. */
export function join(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** An unsigned 64-bit BigInt to (lo, hi) int32 halves. */
export function split(value: bigint): [number, number] {
  const v = BigInt.asUintN(64, value);
  return [Number(v & 0xffff_ffffn) | 0, Number(v >> 32n) | 0];
}

export const ALL_ONES = (1n << 64n) - 1n;

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}
