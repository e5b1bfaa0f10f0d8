import type { Hart } from "../../../cpu/riscv/hart.js";

/** SBI error codes (SBI spec v2.0, table 1). */
export enum SbiError {
  SUCCESS = 0,
  FAILED = -1,
  NOT_SUPPORTED = -2,
  INVALID_PARAM = -3,
  DENIED = -4,
  INVALID_ADDRESS = -5,
  ALREADY_AVAILABLE = -6,
  ALREADY_STARTED = -7,
  ALREADY_STOPPED = -8,
}

const A0 = 10;
const A6 = 16;
const A7 = 17;

/**
 * The SBI calling convention over a hart's registers: EID in a7, FID in a6, arguments in a0..a5, results
 * (error, value) back in a0, a1. Reads go through one scratch pair so a call allocates nothing.
 */
export class SbiCall {
  private readonly pair = new Int32Array(2);
  hart!: Hart;

  load(hart: Hart): this {
    this.hart = hart;
    return this;
  }

  get extension(): number {
    return this.low(A7) >>> 0;
  }
  get function(): number {
    return this.low(A6) >>> 0;
  }

  /** Argument i as an unsigned 32-bit value (hart ids, flags, small counts). */
  arg32(i: number): number {
    return this.low(A0 + i) >>> 0;
  }
  /** Argument i as a number, exact below 2^53 (addresses, masks); -1 for the all-ones value. */
  argNumber(i: number): number {
    this.hart.readX(A0 + i, this.pair);
    const lo = this.pair[0] as number;
    const hi = this.pair[1] as number;
    if (lo === -1 && hi === -1) return -1;
    return (hi >>> 0) * 2 ** 32 + (lo >>> 0);
  }
  /** Argument i as its raw halves. */
  argHalves(i: number, out: Int32Array): void {
    this.hart.readX(A0 + i, out);
  }

  /** a0 = error, a1 = value (sign-extended 32-bit or a non-negative number below 2^53). */
  result(error: SbiError, value = 0): true {
    this.hart.writeX(A0, error, error < 0 ? -1 : 0);
    this.hart.writeX(A0 + 1, value | 0, value < 0 ? -1 : Math.floor(value / 2 ** 32) | 0);
    return true;
  }

  private low(reg: number): number {
    this.hart.readX(reg, this.pair);
    return this.pair[0] as number;
  }
}
