import { RecordReader } from "../../util/record.js";
import type { Clock, InterruptLine, MmioDevice } from "../device.js";

/** The CLINT's state as plain data (see `snapshot`). mtime itself is the board's (its clock record). */
export interface ClintState {
  version: 1;
  compareLo: number[];
  compareHi: number[];
  msip: number[];
  /** What guest writes to mtime added to the board clock. */
  timeOffset: number;
}

/** Per-hart outputs of the CLINT: machine software (MSIP) and machine timer (MTIP) interrupt lines. */
export interface ClintHartLines {
  software: InterruptLine;
  timer: InterruptLine;
}

const MSIP = 0x0000;
const MTIMECMP = 0x4000;
const MTIME = 0xbff8;
export const CLINT_SIZE = 0x10000;

/**
 * The SiFive CLINT (core-local interruptor): msip words, mtimecmp and mtime registers. mtime follows the
 * host clock; the timer lines are re-evaluated by `update()` whenever the engine looks at time (slice
 * boundaries, wake-ups), not on a host timer of their own.
 */
export class Clint implements MmioDevice {
  readonly name = "clint";
  /** mtimecmp per hart as a number of ticks (Infinity when beyond 2^53, i.e. never). */
  private readonly compare: number[];
  private readonly compareLo: number[];
  private readonly compareHi: number[];
  private readonly msip: number[];
  /** Added to the host clock: a guest write to mtime moves its time base. */
  private timeOffset = 0;

  constructor(
    private readonly clock: Clock,
    private readonly lines: ClintHartLines[],
  ) {
    this.compare = lines.map(() => Number.POSITIVE_INFINITY);
    this.compareLo = lines.map(() => 0xffffffff);
    this.compareHi = lines.map(() => 0xffffffff);
    this.msip = lines.map(() => 0);
  }

  mtime(): number {
    return this.clock.ticks() + this.timeOffset;
  }

  /** Raises or lowers each hart's timer line for the current time. */
  update(): void {
    const now = this.mtime();
    for (let i = 0; i < this.lines.length; i++) {
      (this.lines[i] as ClintHartLines).timer.set(now >= (this.compare[i] as number));
    }
  }

  /** Earliest mtime at which a timer line will rise (Infinity if none is armed). */
  nextDeadline(): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const c of this.compare) earliest = Math.min(earliest, c);
    return earliest - this.timeOffset;
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    const hart = this.hartOf(offset);
    if (offset < MTIMECMP) {
      if (hart < 0 || size !== 4 || (offset & 3) !== 0) return false;
      out[0] = this.msip[hart] as number;
      return true;
    }
    if (offset >= MTIME && offset < MTIME + 8) {
      return this.readWide(this.mtime(), offset - MTIME, size, out);
    }
    if (hart < 0) return false;
    const half = (offset - MTIMECMP) & 7;
    if (size === 8 && half === 0) {
      out[0] = this.compareLo[hart] as number;
      out[1] = this.compareHi[hart] as number;
      return true;
    }
    if (size !== 4 || (half & 3) !== 0) return false;
    out[0] = half === 0 ? (this.compareLo[hart] as number) : (this.compareHi[hart] as number);
    return true;
  }

  write(offset: number, size: number, lo: number, hi: number): boolean {
    const hart = this.hartOf(offset);
    if (offset < MTIMECMP) {
      if (hart < 0 || size !== 4 || (offset & 3) !== 0) return false;
      this.msip[hart] = lo & 1;
      (this.lines[hart] as ClintHartLines).software.set((lo & 1) === 1);
      return true;
    }
    if (offset >= MTIME && offset < MTIME + 8) {
      if (size !== 8 && size !== 4) return false;
      const current = this.mtime();
      let value = current;
      if (size === 8) value = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
      else if (offset === MTIME) value = Math.floor(current / 2 ** 32) * 2 ** 32 + (lo >>> 0);
      else value = (lo >>> 0) * 2 ** 32 + (current % 2 ** 32);
      this.timeOffset += value - current;
      this.update();
      return true;
    }
    if (hart < 0) return false;
    const half = (offset - MTIMECMP) & 7;
    if (size === 8 && half === 0) {
      this.compareLo[hart] = lo >>> 0;
      this.compareHi[hart] = hi >>> 0;
    } else if (size === 4 && half === 0) this.compareLo[hart] = lo >>> 0;
    else if (size === 4 && half === 4) this.compareHi[hart] = lo >>> 0;
    else return false;
    const value = (this.compareHi[hart] as number) * 2 ** 32 + (this.compareLo[hart] as number);
    this.compare[hart] = value > Number.MAX_SAFE_INTEGER ? Number.POSITIVE_INFINITY : value;
    this.update();
    return true;
  }

  snapshot(): ClintState {
    return {
      version: 1,
      compareLo: this.compareLo.slice(),
      compareHi: this.compareHi.slice(),
      msip: this.msip.slice(),
      timeOffset: this.timeOffset,
    };
  }

  /** Restores a `snapshot()` of a CLINT with as many harts; throws a TypeError, changing nothing, if bad. */
  restore(state: unknown): void {
    const s = new RecordReader("clint", state, 1);
    const n = this.lines.length;
    const lo = s.ints("compareLo", n, 0, 0xffff_ffff);
    const hi = s.ints("compareHi", n, 0, 0xffff_ffff);
    const msip = s.ints("msip", n, 0, 1);
    const timeOffset = s.int("timeOffset", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    this.timeOffset = timeOffset;
    for (let i = 0; i < n; i++) {
      this.compareLo[i] = lo[i] as number;
      this.compareHi[i] = hi[i] as number;
      const value = (hi[i] as number) * 2 ** 32 + (lo[i] as number);
      this.compare[i] = value > Number.MAX_SAFE_INTEGER ? Number.POSITIVE_INFINITY : value;
      this.msip[i] = msip[i] as number;
      (this.lines[i] as ClintHartLines).software.set(msip[i] === 1);
    }
    this.update();
  }

  /** Hart number of an msip or mtimecmp register, or -1. */
  private hartOf(offset: number): number {
    const hart = offset < MTIMECMP ? (offset - MSIP) >> 2 : offset < MTIME ? (offset - MTIMECMP) >> 3 : -1;
    return hart >= 0 && hart < this.lines.length ? hart : -1;
  }

  private readWide(value: number, at: number, size: number, out: Uint32Array): boolean {
    const lo = value % 2 ** 32;
    const hi = Math.floor(value / 2 ** 32);
    if (size === 8 && at === 0) {
      out[0] = lo;
      out[1] = hi;
      return true;
    }
    if (size !== 4 || (at & 3) !== 0) return false;
    out[0] = at === 0 ? lo : hi;
    return true;
  }
}
