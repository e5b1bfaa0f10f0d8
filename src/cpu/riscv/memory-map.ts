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

  /** Devices and loaders call this after writing [paddr, paddr + length) of RAM directly. */
  written(paddr: number, length: number): void {
    this.onWrite?.(paddr, length);
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
    return true;
  }
}
