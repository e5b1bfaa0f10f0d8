/**
 * Physical memory protection (privileged spec 1.12, section 3.7): 16 entries, granularity 4 bytes (G=0),
 * so TOR, NA4 and NAPOT are all available.
 *
 * pmpaddr holds address bits 55:2, more than a JS number carries exactly. Every entry's range is therefore
 * decoded once, on CSR writes, into [start, end) byte bounds clamped to 2^53: the emulator never accesses
 * a physical address at or above 2^53 (check() denies those), so clamping changes no decision while
 * keeping check() to plain number compares with no BigInt and no allocation.
 */
import { type Access, Priv } from "../state.js";

export const PMP_ENTRIES = 16;

/** pmpcfg bits. */
export const PMP_R = 0x01;
export const PMP_W = 0x02;
export const PMP_X = 0x04;
export const PMP_A_SHIFT = 3;
export const PMP_L = 0x80;
/** Bits 6:5 are reserved (WARL, read as zero). */
const CFG_WRITABLE = PMP_L | (3 << PMP_A_SHIFT) | PMP_X | PMP_W | PMP_R;

export enum PmpMode {
  OFF = 0,
  TOR = 1,
  NA4 = 2,
  NAPOT = 3,
}

/** Exclusive upper end of the physical addresses the emulator can represent exactly. */
export const ADDRESS_LIMIT = 2 ** 53;
/** pmpaddr is 54 bits on RV64: 32 in the low half, 22 in the high half. */
const ADDR_HI_MASK = 0x3f_ffff;
const PAGE_SIZE = 4096;

/** Permission bit an access type needs, indexed by Access. */
const NEEDED_BIT = [PMP_X, PMP_R, PMP_W];

export class Pmp {
  readonly cfg = new Uint8Array(PMP_ENTRIES);
  readonly addrLo = new Uint32Array(PMP_ENTRIES);
  readonly addrHi = new Uint32Array(PMP_ENTRIES);

  /** Decoded byte range of each entry, [start, end) clamped to ADDRESS_LIMIT; empty when OFF. */
  private readonly start = new Float64Array(PMP_ENTRIES);
  private readonly end = new Float64Array(PMP_ENTRIES);
  /** Entries at or above this index are all OFF or empty, so check() stops there. */
  private activeCount = 0;
  /** True when one decision holds for every page (no active entry, or the first one covers everything). */
  private uniformEverywhere = true;

  /** Writes pmp<entry>cfg, one byte of a pmpcfg CSR. */
  writeCfg(entry: number, value: number): void {
    if (this.cfg[entry] & PMP_L) return;
    let cfg = value & CFG_WRITABLE;
    // R=0 W=1 is reserved; legalise it (WARL) to R=0 W=0 so a stored value never means "write-only".
    if ((cfg & (PMP_R | PMP_W)) === PMP_W) cfg &= ~PMP_W;
    this.cfg[entry] = cfg;
    this.refresh();
  }

  /** Writes pmpaddr<entry> given as two 32-bit halves; bits above 53 are WARL zero. */
  writeAddr(entry: number, lo: number, hi: number): void {
    if (this.isAddrLocked(entry)) return;
    this.addrLo[entry] = lo;
    this.addrHi[entry] = hi & ADDR_HI_MASK;
    this.refresh();
  }

  /** An entry's address is frozen by its own lock, or by the next entry's lock when that one is TOR. */
  isAddrLocked(entry: number): boolean {
    if (this.cfg[entry] & PMP_L) return true;
    if (entry + 1 >= PMP_ENTRIES) return false;
    const next = this.cfg[entry + 1];
    return (next & PMP_L) !== 0 && modeOf(next) === PmpMode.TOR;
  }

  /**
   * Decodes every entry again. writeCfg/writeAddr call it; code that fills cfg/addrLo/addrHi directly
   * (reset, snapshot restore) must call it afterwards.
   */
  refresh(): void {
    this.activeCount = 0;
    for (let i = 0; i < PMP_ENTRIES; i++) {
      this.decode(i);
      if (this.start[i] < this.end[i]) this.activeCount = i + 1;
    }
    this.uniformEverywhere = this.computeUniformEverywhere();
  }

  /**
   * True if an access of `size` bytes at `paddr` is allowed. The lowest-numbered entry that matches any byte
   * decides, and it must match all of them. Accesses reaching 2^53 are denied (no memory exists there).
   */
  check(paddr: number, size: number, access: Access, priv: Priv): boolean {
    // Compared this way round so that no sum near 2^53 is rounded.
    if (paddr > ADDRESS_LIMIT - size) return false;
    const last = paddr + size;
    for (let i = 0; i < this.activeCount; i++) {
      const start = this.start[i];
      const end = this.end[i];
      if (last <= start || paddr >= end) continue;
      if (paddr < start || last > end) return false;
      return this.grants(i, access, priv);
    }
    // With entries implemented, an unmatched S/U access fails; M-mode keeps full access.
    return priv === Priv.M;
  }

  /**
   * True if every access wholly inside the 4 KiB page holding `paddr` gets the same decision, so the page
   * may be cached in a TLB. Conservative: a page only partly covered by its first overlapping entry
   * answers false even when the decisions happen to agree.
   */
  pageUniform(paddr: number, _access: Access, _priv: Priv): boolean {
    if (this.uniformEverywhere) return true;
    const pageStart = paddr - (paddr % PAGE_SIZE);
    const pageEnd = pageStart + PAGE_SIZE;
    if (pageEnd > ADDRESS_LIMIT) return false;
    for (let i = 0; i < this.activeCount; i++) {
      const start = this.start[i];
      const end = this.end[i];
      if (pageEnd <= start || pageStart >= end) continue;
      return start <= pageStart && pageEnd <= end;
    }
    return true;
  }

  private grants(entry: number, access: Access, priv: Priv): boolean {
    const cfg = this.cfg[entry];
    // Unlocked entries bind only S and U; a lock makes them bind M-mode too.
    if (priv === Priv.M && (cfg & PMP_L) === 0) return true;
    return (cfg & NEEDED_BIT[access]) !== 0;
  }

  private computeUniformEverywhere(): boolean {
    for (let i = 0; i < this.activeCount; i++) {
      if (this.start[i] < this.end[i]) return this.start[i] === 0 && this.end[i] === ADDRESS_LIMIT;
    }
    return true;
  }

  private decode(entry: number): void {
    let start = 0;
    let end = 0;
    switch (modeOf(this.cfg[entry])) {
      case PmpMode.TOR:
        // Entry 0 uses zero as its lower bound; start >= end simply matches nothing.
        start = entry === 0 ? 0 : byteAddress(this.addrLo[entry - 1], this.addrHi[entry - 1]);
        end = byteAddress(this.addrLo[entry], this.addrHi[entry]);
        break;
      case PmpMode.NA4:
        start = byteAddress(this.addrLo[entry], this.addrHi[entry]);
        end = Math.min(start + 4, ADDRESS_LIMIT);
        break;
      case PmpMode.NAPOT: {
        const lo = this.addrLo[entry];
        const hi = this.addrHi[entry];
        // k trailing ones in pmpaddr encode a region of 2^(k+3) bytes; clearing them gives the base.
        const ones = trailingOnes(lo, hi);
        start = ones >= 32 ? byteAddress(0, hi & ~lowMask(ones - 32)) : byteAddress(lo & ~lowMask(ones), hi);
        end = Math.min(start + 2 ** (ones + 3), ADDRESS_LIMIT);
        break;
      }
    }
    this.start[entry] = start;
    this.end[entry] = end;
  }
}

function modeOf(cfg: number): PmpMode {
  return (cfg >>> PMP_A_SHIFT) & 3;
}

/** pmpaddr * 4 as a number, clamped to ADDRESS_LIMIT (exact below it since hi < 2^19 there). */
function byteAddress(lo: number, hi: number): number {
  if (hi >= 2 ** 19) return ADDRESS_LIMIT;
  return hi * 2 ** 34 + (lo >>> 0) * 4;
}

/** Low `bits` bits set, for 0 <= bits <= 32. */
function lowMask(bits: number): number {
  return bits >= 32 ? -1 : (1 << bits) - 1;
}

/** Trailing one bits of the 54-bit value (hi:lo), at most 54. */
function trailingOnes(lo: number, hi: number): number {
  if (lo >>> 0 !== 0xffff_ffff) return countTrailingZeros(~lo);
  return 32 + Math.min(countTrailingZeros(~hi), 22);
}

function countTrailingZeros(x: number): number {
  if (x === 0) return 32;
  return 31 - Math.clz32(x & -x);
}
