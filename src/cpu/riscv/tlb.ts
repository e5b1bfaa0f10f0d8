import {
  Access,
  HartOffset,
  Priv,
  TLB_ENTRIES,
  TLB_SET_BYTES,
  TLB_TABLE_BYTES,
  TLB_TAGS_BYTES,
  tlbSetAddress,
  tlbTableAddress,
} from "./state.js";

/**
 * The soft-TLB as TypeScript sees it: fills on a miss, flushes on satp/SFENCE/permission changes. The
 * wasm side only ever reads it. `i32` views the whole linear memory.
 */
export class SoftTlb {
  constructor(
    private readonly i32: Int32Array,
    private readonly hartBase: number,
  ) {
    this.flushAll();
  }

  /** Caches the 4 KiB page of virtual address (vaLo, vaHi) → host address `hostPage` (linear memory). */
  fill(priv: Priv, access: Access, vaLo: number, vaHi: number, hostPage: number, user: boolean): void {
    const table = tlbTableAddress(tlbSetAddress(this.hartBase, priv), access);
    const index = (vaLo >>> 12) & (TLB_ENTRIES - 1);
    const pageLo = vaLo & ~0xfff;
    const tag = (table + index * 8) >> 2;
    this.i32[tag] = pageLo;
    this.i32[tag + 1] = vaHi;
    this.i32[(table + TLB_TAGS_BYTES + index * 4) >> 2] = (hostPage - pageLo) | 0;
    if (user && priv === Priv.S) this.userPagesInSupervisor = true;
  }

  /** Whether the S set caches user pages (possible only while mstatus.SUM was set). */
  userPagesInSupervisor = false;

  /** Forgets every translation made through page tables (U and S sets). */
  flushTranslated(): void {
    this.flushSet(Priv.U);
    this.flushSet(Priv.S);
    this.userPagesInSupervisor = false;
  }

  /** SUM was cleared: S-mode loses access to user pages it may have cached. */
  revokeSupervisorUserAccess(): void {
    if (!this.userPagesInSupervisor) return;
    this.flushTables(Priv.S, 1, 3);
    this.userPagesInSupervisor = false;
  }

  /** MXR was cleared: pages readable only because they were executable are readable no more. */
  revokeExecutableReads(): void {
    this.flushTables(Priv.U, 1, 2);
    this.flushTables(Priv.S, 1, 2);
  }

  flushAll(): void {
    this.flushSet(Priv.U);
    this.flushSet(Priv.S);
    this.flushSet(Priv.M);
  }

  /** Tags set to all ones: no masked address equals it, so every lookup misses. */
  private flushSet(priv: Priv): void {
    this.flushTables(priv, 0, 3);
  }

  /** Invalidates tables [first, end) (fetch 0, load 1, store 2) of a set. */
  private flushTables(priv: Priv, first: number, end: number): void {
    const set = tlbSetAddress(this.hartBase, priv);
    for (let t = first; t < end; t++) {
      const start = (set + t * TLB_TABLE_BYTES) >> 2;
      this.i32.fill(-1, start, start + TLB_ENTRIES * 2);
    }
  }

  /** Forgets every store translation: the next store to each page takes the slow path (dirty tracking). */
  flushStores(): void {
    for (const priv of [Priv.U, Priv.S, Priv.M]) this.flushTables(priv, Access.STORE, Access.STORE + 1);
  }

  /** Forgets store translations to the linear-memory page `hostPage` (it now holds translated code). */
  dropStoresTo(hostPage: number): void {
    for (const priv of [Priv.U, Priv.S, Priv.M]) {
      const table = tlbTableAddress(tlbSetAddress(this.hartBase, priv), Access.STORE);
      for (let i = 0; i < TLB_ENTRIES; i++) {
        const tag = (table + i * 8) >> 2;
        const addend = this.i32[(table + TLB_TAGS_BYTES + i * 4) >> 2] as number;
        if (this.i32[tag] === -1 && this.i32[tag + 1] === -1) continue;
        if ((((this.i32[tag] as number) + addend) | 0) === (hostPage | 0)) {
          this.i32[tag] = -1;
          this.i32[tag + 1] = -1;
        }
      }
    }
  }

  /** Points the wasm side at the sets for the current fetch and data privileges. */
  select(fetchPriv: Priv, dataPriv: Priv): void {
    this.i32[(this.hartBase + HartOffset.FETCH_TLB) >> 2] = tlbSetAddress(this.hartBase, fetchPriv);
    this.i32[(this.hartBase + HartOffset.DATA_TLB) >> 2] = tlbSetAddress(this.hartBase, dataPriv);
  }
}

export const TLB_BYTES_PER_HART = TLB_SET_BYTES * 3;
