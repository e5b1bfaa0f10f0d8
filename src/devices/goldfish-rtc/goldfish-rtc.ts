import type { InterruptLine, MmioDevice } from "../device.js";

/** The host's wall clock: nanoseconds since the Unix epoch (a double; millisecond precision is enough). */
export interface WallClock {
  nowNanos(): number;
}

/** The RTC's state as plain data (see `snapshot`). 64-bit values are split into 32-bit words. */
export interface GoldfishRtcState {
  version: 1;
  /** Guest time minus host time, modulo 2^64. */
  offsetHigh: number;
  offsetLow: number;
  /** TIME_HIGH as latched by the last TIME_LOW read. */
  latchedHigh: number;
  alarmHigh: number;
  alarmLow: number;
  alarmRunning: boolean;
  irqEnabled: boolean;
  irqPending: boolean;
}

export const GOLDFISH_RTC_SIZE = 0x1000;

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;

const TWO32 = 2 ** 32;

/**
 * The Goldfish RTC ("google,goldfish-rtc") as Linux's rtc-goldfish driver uses it: a 64-bit nanosecond
 * wall clock read as TIME_LOW then TIME_HIGH (the TIME_LOW read latches the high word), settable by the
 * guest (which moves an offset from the host clock), and one alarm. Writing ALARM_LOW arms the alarm at
 * ALARM_HIGH:ALARM_LOW (or fires it at once if that time has passed); `update()`, called by the board at
 * slice boundaries, fires it when due. A fired alarm latches an interrupt, which drives the line while
 * IRQ_ENABLED is set, until CLEAR_INTERRUPT. Arithmetic is on 32-bit words, exact to the nanosecond
 * (the host clock itself is only as precise as a double). Aligned 32-bit accesses only.
 */
export class GoldfishRtc implements MmioDevice {
  readonly name = "goldfish-rtc";
  private offsetHigh = 0;
  private offsetLow = 0;
  private latchedHigh = 0;
  private alarmHigh = 0;
  private alarmLow = 0;
  private alarmRunning = false;
  private irqEnabled = false;
  private irqPending = false;
  private lineLevel = false;
  /** Guest time computed by `now()` (kept in fields so reading the time allocates nothing). */
  private nowHigh = 0;
  private nowLow = 0;

  constructor(
    private readonly clock: WallClock,
    private readonly line: InterruptLine,
  ) {
    this.updateLine(true);
  }

  /** Disarms the alarm and clears the interrupt; the time itself (battery-backed) is kept. */
  reset(): void {
    this.latchedHigh = 0;
    this.alarmHigh = 0;
    this.alarmLow = 0;
    this.alarmRunning = false;
    this.irqEnabled = false;
    this.irqPending = false;
    this.updateLine(true);
  }

  /** Fires the alarm if it is armed and due. */
  update(): void {
    if (!this.alarmRunning) return;
    this.now();
    if (this.alarmDue()) this.fire();
  }

  /** Host wall-clock time (as `nowNanos` counts) at which the armed alarm fires; Infinity if none. */
  nextDeadline(): number {
    if (!this.alarmRunning) return Number.POSITIVE_INFINITY;
    let low = this.alarmLow - this.offsetLow;
    let borrow = 0;
    if (low < 0) {
      low += TWO32;
      borrow = 1;
    }
    const high = (this.alarmHigh - this.offsetHigh - borrow) >>> 0;
    // A "negative" host time means the alarm is already due.
    return high >= 2 ** 31 ? 0 : high * TWO32 + low;
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0 || offset > CLEAR_INTERRUPT) return false;
    out[1] = 0;
    switch (offset) {
      case TIME_LOW:
        this.now();
        this.latchedHigh = this.nowHigh;
        out[0] = this.nowLow;
        break;
      case TIME_HIGH:
        out[0] = this.latchedHigh;
        break;
      case ALARM_LOW:
        out[0] = this.alarmLow;
        break;
      case ALARM_HIGH:
        out[0] = this.alarmHigh;
        break;
      case IRQ_ENABLED:
        out[0] = this.irqEnabled ? 1 : 0;
        break;
      case ALARM_STATUS:
        out[0] = this.alarmRunning ? 1 : 0;
        break;
      default:
        // CLEAR_ALARM and CLEAR_INTERRUPT are write-only; they read as 0.
        out[0] = 0;
    }
    return true;
  }

  write(offset: number, size: number, lo: number, _hi = 0): boolean {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0 || offset > CLEAR_INTERRUPT) return false;
    const value = lo >>> 0;
    switch (offset) {
      case TIME_LOW: {
        // The guest time becomes (current high word, value): move the offset by value - current low word.
        this.now();
        let low = this.offsetLow + value - this.nowLow;
        let carry = 0;
        if (low < 0) {
          low += TWO32;
          carry = -1;
        } else if (low >= TWO32) {
          low -= TWO32;
          carry = 1;
        }
        this.offsetLow = low;
        this.offsetHigh = (this.offsetHigh + carry) >>> 0;
        break;
      }
      case TIME_HIGH:
        this.now();
        this.offsetHigh = (this.offsetHigh + value - this.nowHigh) >>> 0;
        break;
      case ALARM_LOW:
        this.alarmLow = value;
        this.now();
        if (this.alarmDue()) this.fire();
        else this.alarmRunning = true;
        break;
      case ALARM_HIGH:
        this.alarmHigh = value;
        break;
      case IRQ_ENABLED:
        this.irqEnabled = (value & 1) !== 0;
        this.updateLine(false);
        break;
      case CLEAR_ALARM:
        this.alarmRunning = false;
        break;
      case CLEAR_INTERRUPT:
        this.irqPending = false;
        this.updateLine(false);
        break;
      default:
        // ALARM_STATUS is read-only; writes are ignored.
        break;
    }
    return true;
  }

  snapshot(): GoldfishRtcState {
    return {
      version: 1,
      offsetHigh: this.offsetHigh,
      offsetLow: this.offsetLow,
      latchedHigh: this.latchedHigh,
      alarmHigh: this.alarmHigh,
      alarmLow: this.alarmLow,
      alarmRunning: this.alarmRunning,
      irqEnabled: this.irqEnabled,
      irqPending: this.irqPending,
    };
  }

  /** Restores a `snapshot()`; throws (changing nothing) if `state` is not a valid one. */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || Array.isArray(state)) {
      throw new TypeError("goldfish-rtc snapshot: not an object");
    }
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("goldfish-rtc snapshot: unsupported version");
    const offsetHigh = word(s, "offsetHigh");
    const offsetLow = word(s, "offsetLow");
    const latchedHigh = word(s, "latchedHigh");
    const alarmHigh = word(s, "alarmHigh");
    const alarmLow = word(s, "alarmLow");
    const alarmRunning = flag(s, "alarmRunning");
    const irqEnabled = flag(s, "irqEnabled");
    const irqPending = flag(s, "irqPending");
    this.offsetHigh = offsetHigh;
    this.offsetLow = offsetLow;
    this.latchedHigh = latchedHigh;
    this.alarmHigh = alarmHigh;
    this.alarmLow = alarmLow;
    this.alarmRunning = alarmRunning;
    this.irqEnabled = irqEnabled;
    this.irqPending = irqPending;
    this.updateLine(true);
  }

  /** Guest time into nowHigh:nowLow: the host clock plus the offset, modulo 2^64. */
  private now(): void {
    const raw = Math.floor(this.clock.nowNanos());
    const host = raw > 0 ? Math.min(raw, 2 ** 64 - 2 ** 12) : 0;
    const hostHigh = Math.floor(host / TWO32);
    // Exact: host and hostHigh * 2^32 are doubles within 2^32 of each other.
    let low = host - hostHigh * TWO32 + this.offsetLow;
    let carry = 0;
    if (low >= TWO32) {
      low -= TWO32;
      carry = 1;
    }
    this.nowLow = low;
    this.nowHigh = (hostHigh + this.offsetHigh + carry) >>> 0;
  }

  /** Whether the alarm time is at or before nowHigh:nowLow. */
  private alarmDue(): boolean {
    return this.alarmHigh < this.nowHigh || (this.alarmHigh === this.nowHigh && this.alarmLow <= this.nowLow);
  }

  private fire(): void {
    this.alarmRunning = false;
    this.irqPending = true;
    this.updateLine(false);
  }

  private updateLine(force: boolean): void {
    const level = this.irqPending && this.irqEnabled;
    if (level !== this.lineLevel || force) {
      this.lineLevel = level;
      this.line.set(level);
    }
  }
}

function word(s: Record<string, unknown>, key: string): number {
  const value = s[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`goldfish-rtc snapshot: ${key} must be a 32-bit unsigned integer`);
  }
  return value;
}

function flag(s: Record<string, unknown>, key: string): boolean {
  const value = s[key];
  if (typeof value !== "boolean") throw new TypeError(`goldfish-rtc snapshot: ${key} must be a boolean`);
  return value;
}
