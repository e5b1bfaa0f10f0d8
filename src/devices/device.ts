/**
 * The small interfaces devices are written against, so one device serves every engine and board:
 * a register window, an interrupt line, guest memory, a clock.
 */

/** A device's register window; offsets are relative to where the board maps it. */
export interface MmioDevice {
  readonly name: string;
  /** Reads `size` bytes at `offset` into out[0] (low 32 bits) / out[1] (high). false = no register. */
  read(offset: number, size: number, out: Uint32Array): boolean;
  write(offset: number, size: number, lo: number, hi: number): boolean;
}

export interface InterruptLine {
  set(level: boolean): void;
}

/** Guest RAM as devices see it (DMA, mailboxes); every address must be checked with `contains`. */
export interface GuestMemory {
  readonly base: number;
  readonly size: number;
  readonly bytes: Uint8Array;
  contains(paddr: number, length: number): boolean;
  /** Reports a device write (DMA) into [paddr, paddr + length) so cached translations of it are dropped. */
  written?(paddr: number, length: number): void;
}

/** Guest time in timebase ticks (10 MHz), from the host clock. */
export interface Clock {
  ticks(): number;
}
