/**
 * What the CPU sees of the world outside RAM: physical addresses that are not RAM go to a bus, which the
 * machine layer fills with devices. The CPU knows nothing of which devices exist.
 */
export interface MmioBus {
  /** Reads `size` (1, 2, 4, 8) bytes at `paddr` into out[0] (low 32 bits) and out[1] (high 32 bits).
   *  Returns false when nothing answers there (the CPU raises an access fault). */
  read(paddr: number, size: number, out: Uint32Array): boolean;
  write(paddr: number, size: number, lo: number, hi: number): boolean;
}

/** Guest time: the value of mtime, in ticks of the timebase (10 MHz), taken from the host clock. */
export interface GuestClock {
  ticks(): number;
}

/**
 * Raised by a device or hypercall that needs the engine to look at the machine before the slice would
 * end by itself (a shutdown request, for instance). The CPU ends the slice at the next call out of wasm;
 * the engine clears it.
 */
export interface SliceRequests {
  endSlice: boolean;
}

/** Called after a store lands in a watched RAM page (a mailbox such as HTIF's tohost). Returns true to
 *  end the current slice, e.g. because the guest asked to stop. */
export type StoreWatcher = (paddr: number, size: number) => boolean;
