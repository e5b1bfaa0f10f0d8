/**
 * Test fixtures for the MMU: a small RAM implementing PageTableMemory, a page-table builder, and helpers
 * to pass 64-bit values around as the (lo, hi) int32 halves the translator takes. BigInt is fine here.
 */
import { Pmp, PmpMode } from "../../../src/cpu/riscv/mmu/pmp.js";
import type { PageTableMemory } from "../../../src/cpu/riscv/mmu/translate.js";

export const RAM_BASE = 0x8000_0000;
export const PAGE = 4096;

export class TestMemory implements PageTableMemory {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Successful PTE write-backs so far. */
  writes = 0;
  /** Makes writePteLow fail, as a bus error would. */
  failWrites = false;

  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  contains(paddr: number, length: number): boolean {
    return paddr >= this.base && paddr + length <= this.base + this.size;
  }

  readPte(paddr: number, out: Int32Array): boolean {
    if (!this.contains(paddr, 8)) return false;
    out[0] = this.view.getInt32(paddr - this.base, true);
    out[1] = this.view.getInt32(paddr - this.base + 4, true);
    return true;
  }

  writePteLow(paddr: number, lo: number): boolean {
    if (this.failWrites || !this.contains(paddr, 8)) return false;
    this.view.setInt32(paddr - this.base, lo, true);
    this.writes++;
    return true;
  }

  read64(paddr: number): bigint {
    return this.view.getBigUint64(paddr - this.base, true);
  }

  write64(paddr: number, value: bigint): void {
    this.view.setBigUint64(paddr - this.base, BigInt.asUintN(64, value), true);
  }
}

/** Allocates page-table pages from the start of a TestMemory and fills in mappings. */
export class PageTableBuilder {
  /** PPN of the root table, for satp. */
  readonly rootPpn: number;
  private nextTable: number;

  constructor(
    readonly mem: TestMemory,
    readonly levels: number,
  ) {
    this.nextTable = mem.base;
    this.rootPpn = this.allocateTable() / PAGE;
  }

  /**
   * Maps vaddr to paddr with a leaf at `level` (0 = 4 KiB) and returns the leaf PTE's address. `flags`
   * is the PTE's low 10 bits; `highBits` is ORed into the PTE as is (for reserved-bit tests).
   */
  map(vaddr: bigint, paddr: bigint, level: number, flags: number, highBits = 0n): number {
    let table = this.rootPpn * PAGE;
    for (let i = this.levels - 1; i > level; i--) {
      const entry = table + vpnOf(vaddr, i) * 8;
      const pte = this.mem.read64(entry);
      if ((pte & 1n) === 0n) {
        const next = this.allocateTable();
        this.mem.write64(entry, (BigInt(next / PAGE) << 10n) | 1n);
        table = next;
      } else {
        table = Number((pte >> 10n) & ((1n << 44n) - 1n)) * PAGE;
      }
    }
    const leaf = table + vpnOf(vaddr, level) * 8;
    this.mem.write64(leaf, ((paddr >> 12n) << 10n) | BigInt(flags) | highBits);
    return leaf;
  }

  /** Address of the PTE that the walk for vaddr reads at `level` (the tables must already exist). */
  pteAddress(vaddr: bigint, level: number): number {
    let table = this.rootPpn * PAGE;
    for (let i = this.levels - 1; i > level; i--) {
      const pte = this.mem.read64(table + vpnOf(vaddr, i) * 8);
      table = Number((pte >> 10n) & ((1n << 44n) - 1n)) * PAGE;
    }
    return table + vpnOf(vaddr, level) * 8;
  }

  private allocateTable(): number {
    const table = this.nextTable;
    if (!this.mem.contains(table, PAGE)) throw new Error("test memory full of page tables");
    this.nextTable += PAGE;
    return table;
  }
}

export function vpnOf(vaddr: bigint, level: number): number {
  return Number((vaddr >> BigInt(12 + 9 * level)) & 511n);
}

/** The int32 halves of a 64-bit value. */
export function halves(value: bigint): [number, number] {
  return [Number(BigInt.asIntN(32, value)), Number(BigInt.asIntN(32, value >> 32n))];
}

/** A PMP whose entry 0 grants RWX on the whole address space (NAPOT with pmpaddr all ones). */
export function openPmp(): Pmp {
  const pmp = new Pmp();
  pmp.writeAddr(0, -1, -1);
  pmp.writeCfg(0, (PmpMode.NAPOT << 3) | 7);
  return pmp;
}
