import { type ByteSink, sinkWritable } from "../byte-sink.js";
import type { InterruptLine, MmioDevice } from "../device.js";

export type { ByteSink };

/** The UART's state as plain data (see `snapshot`). */
export interface Uart16550State {
  version: 1;
  dll: number;
  dlm: number;
  ier: number;
  lcr: number;
  mcr: number;
  fcr: number;
  scr: number;
  /** LSR error bits (OE) not yet cleared by an LSR read. */
  lsrErrors: number;
  /** MSR delta bits (low nibble) not yet cleared by an MSR read. */
  msrDeltas: number;
  /** THR-empty interrupt pending (cleared by an IIR read that reports it). */
  thrPending: boolean;
  /** Receive FIFO contents, oldest first. */
  rx: number[];
}

/** Register window on the virt board (reg-shift 0: registers are the first 8 bytes). */
export const UART16550_SIZE = 0x100;
const FIFO_SIZE = 16;

// IER
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
// IIR
const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_CTI = 0x0c;
const IIR_FIFO = 0xc0;
// FCR
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
/** Bits of FCR that are kept: enable, DMA mode, receive trigger level. */
const FCR_KEPT = 0xc9;
// LCR
const LCR_DLAB = 0x80;
// MCR
const MCR_MASK = 0x1f;
const MCR_LOOP = 0x10;
// LSR
const LSR_DR = 0x01;
const LSR_OE = 0x02;
/** THR empty and transmitter empty: set together (a byte leaves at once unless the host sink is full). */
const LSR_TX_IDLE = 0x60;
// MSR
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** Modem inputs outside loopback: nothing drives them, so report a connected, ready peer (as QEMU does). */
const MSR_EXTERNAL = MSR_CTS | MSR_DSR | MSR_DCD;

/** Receive FIFO trigger level for FCR bits 7:6. */
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;

/**
 * A National Semiconductor 16550A UART with reg-shift 0, as Linux's 8250 driver and OpenSBI drive it.
 * Transmission is instantaneous (to the output sink, or back into the receiver in loopback), so THRE and
 * TEMT are set — except while the host sink is full: then both stay clear and no THR-empty interrupt is
 * raised, so a driver that waits for THRE (polling or by interrupt) stalls like on a busy line; when the
 * sink drains, THRE/TEMT come back and the THR-empty interrupt is raised if enabled. A byte written
 * anyway goes to the sink (a bounded sink decides about it). The 16-byte receive FIFO is fed by the host through `receive`. With no bit times to
 * count, the character-timeout interrupt is raised as soon as the FIFO holds data below the trigger level.
 * One level-triggered interrupt line follows IIR: high exactly when IIR reports a pending interrupt.
 */
export class Uart16550 implements MmioDevice {
  readonly name = "uart16550";
  private readonly rx = new Uint8Array(FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;
  private dll = 0;
  private dlm = 0;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private fcr = 0;
  private scr = 0;
  private lsrErrors = 0;
  private msrDeltas = 0;
  private thrPending = false;
  private lineLevel = false;
  /** A `whenWritable` callback is registered with the sink. */
  private awaitingSink = false;

  constructor(
    private readonly line: InterruptLine,
    private readonly output: ByteSink,
  ) {
    this.reset();
  }

  /** Power-on state: FIFOs off and empty, no interrupts enabled, divisor 12 (9600 baud at 1.8432 MHz). */
  reset(): void {
    this.rxHead = 0;
    this.rxCount = 0;
    this.dll = 0x0c;
    this.dlm = 0;
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.fcr = 0;
    this.scr = 0;
    this.lsrErrors = 0;
    this.msrDeltas = 0;
    this.thrPending = false;
    this.updateLine(true);
  }

  /**
   * Host input: stores bytes in the receiver. Returns k = how many were taken without overrun (the free
   * space); the bytes after the first k overrun the receiver: OE is set and they are lost (FIFO mode) or
   * each replaces the unread one (16450 mode). In loopback the receiver is disconnected from the host and
   * nothing is taken. A host that must not lose input pushes at most `canReceive()` bytes.
   */
  receive(bytes: Uint8Array): number {
    if ((this.mcr & MCR_LOOP) !== 0) return 0;
    let accepted = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (this.pushRx(bytes[i] as number)) accepted++;
    }
    if (bytes.length > 0) this.updateLine(false);
    return accepted;
  }

  /** How many bytes the receiver can take now without overrun (0 in loopback). */
  canReceive(): number {
    return (this.mcr & MCR_LOOP) !== 0 ? 0 : this.capacity() - this.rxCount;
  }

  /** The value an IIR read would return, without its side effect (for the board's debugging and tests). */
  peekIir(): number {
    return this.interruptId() | ((this.fcr & FCR_ENABLE) !== 0 ? IIR_FIFO : 0);
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (!validAccess(offset, size)) return false;
    out[0] = this.readRegister(offset);
    out[1] = 0;
    return true;
  }

  write(offset: number, size: number, lo: number, _hi = 0): boolean {
    if (!validAccess(offset, size)) return false;
    this.writeRegister(offset, lo & 0xff);
    return true;
  }

  snapshot(): Uart16550State {
    const rx: number[] = [];
    for (let i = 0; i < this.rxCount; i++) rx.push(this.rx[(this.rxHead + i) % FIFO_SIZE] as number);
    return {
      version: 1,
      dll: this.dll,
      dlm: this.dlm,
      ier: this.ier,
      lcr: this.lcr,
      mcr: this.mcr,
      fcr: this.fcr,
      scr: this.scr,
      lsrErrors: this.lsrErrors,
      msrDeltas: this.msrDeltas,
      thrPending: this.thrPending,
      rx,
    };
  }

  /** Restores a `snapshot()`; throws (leaving the device unchanged) if `state` is not a valid one. */
  restore(state: unknown): void {
    const s = record(state);
    if (s.version !== 1) throw new TypeError("uart16550 snapshot: unsupported version");
    const ier = field(s, "ier", 0x0f);
    const fcr = field(s, "fcr", 0xff);
    const mcr = field(s, "mcr", MCR_MASK);
    const lsrErrors = field(s, "lsrErrors", 0xff);
    const msrDeltas = field(s, "msrDeltas", 0x0f);
    if ((fcr & ~FCR_KEPT) !== 0 || ((fcr & FCR_ENABLE) === 0 && fcr !== 0)) {
      throw new RangeError("uart16550 snapshot: bad fcr");
    }
    if ((lsrErrors & ~LSR_OE) !== 0) throw new RangeError("uart16550 snapshot: bad lsrErrors");
    const thrPending = s.thrPending;
    if (typeof thrPending !== "boolean")
      throw new TypeError("uart16550 snapshot: thrPending must be a boolean");
    if (thrPending && (ier & IER_THRI) === 0)
      throw new RangeError("uart16550 snapshot: thrPending without THRI");
    const rx = s.rx;
    const capacity = (fcr & FCR_ENABLE) !== 0 ? FIFO_SIZE : 1;
    if (!Array.isArray(rx) || rx.length > capacity || !rx.every((b) => isInt(b, 0xff))) {
      throw new RangeError("uart16550 snapshot: bad rx FIFO");
    }
    const dll = field(s, "dll", 0xff);
    const dlm = field(s, "dlm", 0xff);
    const lcr = field(s, "lcr", 0xff);
    const scr = field(s, "scr", 0xff);
    this.dll = dll;
    this.dlm = dlm;
    this.ier = ier;
    this.lcr = lcr;
    this.mcr = mcr;
    this.fcr = fcr;
    this.scr = scr;
    this.lsrErrors = lsrErrors;
    this.msrDeltas = msrDeltas;
    this.thrPending = thrPending;
    this.rxHead = 0;
    this.rxCount = rx.length;
    this.rx.fill(0);
    this.rx.set(rx as number[]);
    this.updateLine(true);
  }

  private readRegister(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case 0:
        return dlab ? this.dll : this.popRx();
      case 1:
        return dlab ? this.dlm : this.ier;
      case 2: {
        const iir = this.peekIir();
        if ((iir & 0x0f) === IIR_THRI) {
          this.thrPending = false;
          this.updateLine(false);
        }
        return iir;
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5: {
        const lsr = this.lsr();
        if (this.lsrErrors !== 0) {
          this.lsrErrors = 0;
          this.updateLine(false);
        }
        return lsr;
      }
      case 6: {
        const msr = this.modemInputs() | this.msrDeltas;
        if (this.msrDeltas !== 0) {
          this.msrDeltas = 0;
          this.updateLine(false);
        }
        return msr;
      }
      default:
        return this.scr;
    }
  }

  private writeRegister(reg: number, value: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case 0:
        if (dlab) this.dll = value;
        else this.transmit(value);
        return;
      case 1:
        if (dlab) this.dlm = value;
        else this.writeIer(value);
        return;
      case 2:
        this.writeFcr(value);
        return;
      case 3:
        this.lcr = value;
        return;
      case 4: {
        const before = this.modemInputs();
        this.mcr = value & MCR_MASK;
        this.noteModemChange(before, this.modemInputs());
        return;
      }
      case 7:
        this.scr = value;
        return;
      default:
        // LSR and MSR writes (factory test) are ignored.
        return;
    }
  }

  private transmit(byte: number): void {
    if ((this.mcr & MCR_LOOP) !== 0) this.pushRx(byte);
    else this.output.write(byte);
    // Writing THR clears the THRE interrupt; the byte leaves at once, so THR is empty again unless the
    // sink is now full, and then the interrupt comes when it drains.
    this.thrPending = (this.ier & IER_THRI) !== 0 && this.thrEmpty();
    this.updateLine(false);
  }

  private writeIer(value: number): void {
    const changed = (this.ier ^ value) & IER_THRI;
    this.ier = value & 0x0f;
    // Setting ETBEI while THR is empty raises THRE even if an IIR read had cleared it.
    if (changed !== 0) this.thrPending = (this.ier & IER_THRI) !== 0 && this.thrEmpty();
    this.updateLine(false);
  }

  /** THR can take a byte: loopback never waits; otherwise the host sink must have room. */
  private thrEmpty(): boolean {
    if ((this.mcr & MCR_LOOP) !== 0 || sinkWritable(this.output)) return true;
    this.awaitSink();
    return false;
  }

  private awaitSink(): void {
    if (this.awaitingSink || this.output.whenWritable === undefined) return;
    this.awaitingSink = true;
    this.output.whenWritable(() => {
      this.awaitingSink = false;
      if (!this.thrEmpty()) return;
      // THR just became empty: that is the THRE interrupt's edge.
      if ((this.ier & IER_THRI) !== 0) this.thrPending = true;
      this.updateLine(false);
    });
  }

  private writeFcr(value: number): void {
    const wasEnabled = (this.fcr & FCR_ENABLE) !== 0;
    if ((value & FCR_ENABLE) === 0) {
      // The other bits are only programmed with FCR0 set; turning the FIFOs off empties them.
      if (wasEnabled) this.clearRx();
      this.fcr = 0;
    } else {
      if (!wasEnabled || (value & FCR_CLEAR_RX) !== 0) this.clearRx();
      this.fcr = value & FCR_KEPT;
    }
    this.updateLine(false);
  }

  private lsr(): number {
    return (this.rxCount > 0 ? LSR_DR : 0) | this.lsrErrors | (this.thrEmpty() ? LSR_TX_IDLE : 0);
  }

  /** MSR bits 7:4: the modem inputs, wired to MCR's outputs in loopback. */
  private modemInputs(): number {
    const mcr = this.mcr;
    if ((mcr & MCR_LOOP) === 0) return MSR_EXTERNAL;
    // DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
    return ((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4);
  }

  private noteModemChange(before: number, after: number): void {
    const changed = before ^ after;
    let deltas = 0;
    if ((changed & MSR_CTS) !== 0) deltas |= 0x01;
    if ((changed & MSR_DSR) !== 0) deltas |= 0x02;
    if ((before & MSR_RI) !== 0 && (after & MSR_RI) === 0) deltas |= 0x04;
    if ((changed & MSR_DCD) !== 0) deltas |= 0x08;
    if (deltas !== 0) {
      this.msrDeltas |= deltas;
      this.updateLine(false);
    }
  }

  /** Interrupt identification (IIR bits 3:0) by 16550 priority. */
  private interruptId(): number {
    const ier = this.ier;
    if ((ier & IER_RLSI) !== 0 && this.lsrErrors !== 0) return IIR_RLSI;
    if ((ier & IER_RDI) !== 0 && this.rxCount > 0) {
      if ((this.fcr & FCR_ENABLE) === 0) return IIR_RDI;
      return this.rxCount >= (TRIGGER_LEVELS[this.fcr >> 6] as number) ? IIR_RDI : IIR_CTI;
    }
    if ((ier & IER_THRI) !== 0 && this.thrPending) return IIR_THRI;
    if ((ier & IER_MSI) !== 0 && this.msrDeltas !== 0) return IIR_MSI;
    return IIR_NO_INT;
  }

  private updateLine(force: boolean): void {
    const level = this.interruptId() !== IIR_NO_INT;
    if (level !== this.lineLevel || force) {
      this.lineLevel = level;
      this.line.set(level);
    }
  }

  private capacity(): number {
    return (this.fcr & FCR_ENABLE) !== 0 ? FIFO_SIZE : 1;
  }

  /** Stores a received byte; false (and OE) on overrun. */
  private pushRx(byte: number): boolean {
    if (this.rxCount < this.capacity()) {
      this.rx[(this.rxHead + this.rxCount) % FIFO_SIZE] = byte;
      this.rxCount++;
      return true;
    }
    this.lsrErrors |= LSR_OE;
    // Without FIFOs the new character overwrites the unread one; with them it is lost.
    if ((this.fcr & FCR_ENABLE) === 0) this.rx[this.rxHead] = byte;
    return false;
  }

  private popRx(): number {
    if (this.rxCount === 0) return 0;
    const byte = this.rx[this.rxHead] as number;
    this.rxHead = (this.rxHead + 1) % FIFO_SIZE;
    this.rxCount--;
    this.updateLine(false);
    return byte;
  }

  private clearRx(): void {
    this.rxHead = 0;
    this.rxCount = 0;
  }
}

/** Byte registers 0..7; 1-, 2- and 4-byte accesses all act on the addressed register (low byte). */
function validAccess(offset: number, size: number): boolean {
  return offset >= 0 && offset < 8 && (size === 1 || size === 2 || size === 4);
}

function isInt(value: unknown, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max;
}

function record(state: unknown): Record<string, unknown> {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new TypeError("uart16550 snapshot: not an object");
  }
  return state as Record<string, unknown>;
}

function field(s: Record<string, unknown>, key: string, max: number): number {
  const value = s[key];
  if (!isInt(value, max)) throw new RangeError(`uart16550 snapshot: ${key} must be an integer 0..${max}`);
  return value;
}
