import type { PageTableMemory } from "./mmu/translate.js";
import { RAM_OFFSET } from "./state.js";

/**
 * Guest RAM inside the wasm linear memory, and the checks that keep every guest-controlled physical
 * address inside it. Page-table walks read PTEs only from RAM.
 */
export class GuestRam implements PageTableMemory {
  readonly bytes: Uint8Array;
  private readonly i32: Int32Array;

  constructor(
    memory: WebAssembly.Memory,
    readonly base: number,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(memory.buffer, RAM_OFFSET, size);
    // Not size >> 2: sizes of 2 GiB and more overflow 32-bit arithmetic.
    this.i32 = new Int32Array(memory.buffer, RAM_OFFSET, size / 4);
  }

  /** Told of writes to RAM that bypass the CPU (devices, loaders): the translator drops stale code. */
  onWrite: ((paddr: number, length: number) => void) | null = null;

  /**
   * One bit per page written since the current dirty-tracking pass started (live migration), or null
   * while nothing tracks. The CPU's store slow path, page-table A/D updates and device writes set bits.
   */
  dirty: Uint8Array | null = null;

  /** Devices and loaders call this after writing [paddr, paddr + length) of RAM directly. */
  written(paddr: number, length: number): void {
    this.onWrite?.(paddr, length);
    this.markDirty(paddr, length);
  }

  /** Records a write to [paddr, paddr + length) in the dirty bitmap, if one is kept. */
  markDirty(paddr: number, length: number): void {
    const dirty = this.dirty;
    if (dirty === null || length <= 0 || !this.contains(paddr, 1)) return;
    const first = Math.floor((paddr - this.base) / 4096);
    const end = Math.min(this.size, paddr - this.base + length);
    const last = Math.floor((end - 1) / 4096);
    for (let p = first; p <= last; p++) dirty[p >> 3] = (dirty[p >> 3] as number) | (1 << (p & 7));
  }

  /** True if [paddr, paddr + length) lies entirely in RAM. */
  contains(paddr: number, length: number): boolean {
    return paddr >= this.base && paddr + length <= this.base + this.size;
  }

  /** Linear-memory address of a RAM physical address (caller checked `contains`). */
  host(paddr: number): number {
    return RAM_OFFSET + (paddr - this.base);
  }

  readPte(paddr: number, out: Int32Array): boolean {
    if ((paddr & 7) !== 0 || !this.contains(paddr, 8)) return false;
    const i = (paddr - this.base) / 4;
    out[0] = this.i32[i] as number;
    out[1] = this.i32[i + 1] as number;
    return true;
  }

  writePteLow(paddr: number, lo: number): boolean {
    if ((paddr & 7) !== 0 || !this.contains(paddr, 8)) return false;
    this.i32[(paddr - this.base) / 4] = lo;
    this.markDirty(paddr, 4);
    return true;
  }
}
