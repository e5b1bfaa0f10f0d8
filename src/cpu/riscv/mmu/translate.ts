/**
 * Sv39/Sv48 page-table walk (privileged spec 1.12, section 4.3.2), run on software-TLB misses.
 *
 * Runs without BigInt or allocation: the 64-bit virtual address and PTEs travel as int32 halves and the
 * result is left in fields. Physical addresses are numbers; anything at or above 2^53 has no memory
 * behind it in this emulator and becomes an access fault.
 */
import { Access, Priv } from "../state.js";
import { ADDRESS_LIMIT, type Pmp } from "./pmp.js";

/** 4 KiB frames in a leaf at each level (2^(9 × level)): a table, as `**` with a variable exponent is a
 *  Math.pow call in every page walk. */
const SUPERPAGE_FRAMES = [1, 2 ** 9, 2 ** 18, 2 ** 27, 2 ** 36];

export enum TranslateResult {
  OK = 0,
  PAGE_FAULT = 1,
  ACCESS_FAULT = 2,
}

/** satp.MODE values. satp is WARL and ignores writes of other modes, so no other value can arrive. */
export enum SatpMode {
  BARE = 0,
  SV39 = 8,
  SV48 = 9,
}

export interface PageTableMemory {
  /** Reads the 64-bit PTE at `paddr` into out[0] (lo) and out[1] (hi); false if it is not RAM. */
  readPte(paddr: number, out: Int32Array): boolean;
  /** Writes back a PTE's low word (A/D updates only touch bits 6 and 7); false on failure. */
  writePteLow(paddr: number, lo: number): boolean;
}

/** PTE bits (low word). */
export const PTE_V = 0x01;
export const PTE_R = 0x02;
export const PTE_W = 0x04;
export const PTE_X = 0x08;
export const PTE_U = 0x10;
export const PTE_A = 0x40;
export const PTE_D = 0x80;
/** PTE bits 63:54 (N, PBMT, reserved): Svnapot and Svpbmt are not implemented, so all must be zero. */
const PTE_RESERVED_HI = 0xffc0_0000 | 0;
/** PPN bits 53:32 of the PTE sit in the high word's low 22 bits. */
const PTE_PPN_HI_MASK = 0x3f_ffff;
const PAGE_SIZE = 4096;
const PTE_SIZE = 8;

export class Translator {
  /** Physical address of the access; valid after translate() returned OK. */
  paddr = 0;
  /** Whether the leaf PTE of that translation had U set (false for untranslated accesses). */
  leafUser = false;
  private readonly pte = new Int32Array(2);

  constructor(
    private readonly mem: PageTableMemory,
    private readonly pmp: Pmp,
  ) {}

  translate(
    vaddrLo: number,
    vaddrHi: number,
    access: Access,
    priv: Priv,
    sum: boolean,
    mxr: boolean,
    satpMode: number,
    satpPpn: number,
  ): TranslateResult {
    // M-mode is never translated; unknown modes cannot be in satp but are treated like Bare.
    if (priv === Priv.M || (satpMode !== SatpMode.SV39 && satpMode !== SatpMode.SV48)) {
      return this.untranslated(vaddrLo, vaddrHi);
    }
    const levels = satpMode === SatpMode.SV48 ? 4 : 3;
    if (!isCanonical(vaddrHi, levels)) return TranslateResult.PAGE_FAULT;

    let table = satpPpn * PAGE_SIZE;
    for (let level = levels - 1; level >= 0; level--) {
      const pteAddr = table + vpn(vaddrLo, vaddrHi, level) * PTE_SIZE;
      if (!this.readPte(pteAddr)) return TranslateResult.ACCESS_FAULT;
      const lo = this.pte[0];
      const hi = this.pte[1];
      if ((lo & PTE_V) === 0 || (lo & (PTE_R | PTE_W)) === PTE_W || (hi & PTE_RESERVED_HI) !== 0) {
        return TranslateResult.PAGE_FAULT;
      }
      if ((lo & (PTE_R | PTE_X)) !== 0) {
        if (!leafPermits(lo, access, priv, sum, mxr)) return TranslateResult.PAGE_FAULT;
        return this.leaf(pteAddr, lo, hi, level, vaddrLo, vaddrHi, access);
      }
      // In a pointer PTE, D, A and U are reserved; the spec's walk faults on reserved bits.
      if ((lo & (PTE_D | PTE_A | PTE_U)) !== 0) return TranslateResult.PAGE_FAULT;
      table = ppnOf(lo, hi) * PAGE_SIZE;
    }
    // A pointer PTE at level 0 has nothing left to point to.
    return TranslateResult.PAGE_FAULT;
  }

  /** Bare mode and M-mode: the virtual address is the physical one. */
  private untranslated(lo: number, hi: number): TranslateResult {
    // Above the 56-bit physical space, or beyond what a number holds exactly: nothing is there.
    if (hi >>> 0 >= 2 ** 21) return TranslateResult.ACCESS_FAULT;
    this.paddr = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    this.leafUser = false;
    return TranslateResult.OK;
  }

  /** Finishes a walk at a leaf whose permissions passed: alignment, A/D update, final address. */
  private leaf(
    pteAddr: number,
    lo: number,
    hi: number,
    level: number,
    vaddrLo: number,
    vaddrHi: number,
    access: Access,
  ): TranslateResult {
    const ppn = ppnOf(lo, hi);
    // A superpage's PPN must be aligned to its size (in 4 KiB frames).
    if (level !== 0 && ppn % (SUPERPAGE_FRAMES[level] as number) !== 0) return TranslateResult.PAGE_FAULT;

    const updated = lo | PTE_A | (access === Access.STORE ? PTE_D : 0);
    // The A/D write-back is an implicit S-mode store to the page table, subject to PMP.
    if (updated !== lo) {
      if (!this.pmp.check(pteAddr, PTE_SIZE, Access.STORE, Priv.S)) return TranslateResult.ACCESS_FAULT;
      if (!this.mem.writePteLow(pteAddr, updated)) return TranslateResult.ACCESS_FAULT;
    }

    const paddr = ppn * PAGE_SIZE + pageOffset(vaddrLo, vaddrHi, level);
    // The translation itself succeeded (A/D are already set, spec step 7); the physical access cannot.
    if (paddr >= ADDRESS_LIMIT) return TranslateResult.ACCESS_FAULT;
    this.paddr = paddr;
    this.leafUser = (lo & PTE_U) !== 0;
    return TranslateResult.OK;
  }

  /** Reads a PTE into this.pte; false means an access fault (out of range, PMP, or not RAM). */
  private readPte(pteAddr: number): boolean {
    if (pteAddr + PTE_SIZE > ADDRESS_LIMIT) return false;
    // Page-table reads are implicit accesses checked by PMP as S-mode, whatever the current privilege.
    if (!this.pmp.check(pteAddr, PTE_SIZE, Access.LOAD, Priv.S)) return false;
    return this.mem.readPte(pteAddr, this.pte);
  }
}

/** Whether a valid leaf PTE lets this access through (U bit, SUM, MXR and R/W/X). */
export function leafPermits(pteLo: number, access: Access, priv: Priv, sum: boolean, mxr: boolean): boolean {
  if ((pteLo & PTE_U) !== 0) {
    // S-mode may touch user pages only with SUM, and may never execute them.
    if (priv === Priv.S && (!sum || access === Access.FETCH)) return false;
  } else if (priv === Priv.U) {
    return false;
  }
  switch (access) {
    case Access.FETCH:
      return (pteLo & PTE_X) !== 0;
    case Access.LOAD:
      return (pteLo & PTE_R) !== 0 || (mxr && (pteLo & PTE_X) !== 0);
    default:
      return (pteLo & PTE_W) !== 0;
  }
}

/** Bits 63:VA-1 must all equal bit VA-1 (VA = 39 or 48); they live in the high word. */
function isCanonical(vaddrHi: number, levels: number): boolean {
  const sign = vaddrHi >> (12 + 9 * levels - 1 - 32);
  return sign === 0 || sign === -1;
}

/** The 9-bit index of the vaddr into the table at `level`. */
function vpn(lo: number, hi: number, level: number): number {
  const shift = 12 + 9 * level;
  const bits = shift < 32 ? (lo >>> shift) | (hi << (32 - shift)) : hi >>> (shift - 32);
  return bits & 511;
}

/** The vaddr's offset inside a page mapped at `level` (4 KiB, 2 MiB, 1 GiB or 512 GiB). */
function pageOffset(lo: number, hi: number, level: number): number {
  const bits = 12 + 9 * level;
  if (bits < 32) return lo & ((1 << bits) - 1);
  return (hi & ((1 << (bits - 32)) - 1)) * 2 ** 32 + (lo >>> 0);
}

/** PTE bits 53:10 as a number (at most 2^44, exact). */
function ppnOf(lo: number, hi: number): number {
  return (hi & PTE_PPN_HI_MASK) * 2 ** 22 + (lo >>> 10);
}
