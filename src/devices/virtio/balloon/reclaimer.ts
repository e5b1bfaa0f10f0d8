/**
 * How virtio-balloon gives the host memory behind inflated guest pages back. The device only knows
 * guest RAM as `GuestMemory`; what lies behind it (a WebAssembly.Memory, an mmap'd buffer under KVM)
 * and how its pages are released (madvise on Linux, nothing in a browser) is the reclaimer's business.
 * Node implementations live in `src/host/page-reclaimer.ts`.
 */

/** The balloon's page size: PFNs in inflate/deflate requests are in 4 KiB units whatever the guest uses. */
export const BALLOON_PAGE = 4096;

export interface PageReclaimer {
  /** What releases memory ("madvise", "none"), for diagnostics. */
  readonly kind: string;
  /**
   * The guest put bytes [offset, offset + length) of guest RAM (offsets into `GuestMemory.bytes`, both
   * multiples of BALLOON_PAGE, inside RAM) into the balloon: release the host memory behind them if
   * possible. Afterwards those bytes read as zeros (released) or as before (not released); the guest
   * may take the pages back at any time and use them like fresh memory (the spec allows either
   * content). Returns how many bytes of host memory were released.
   */
  reclaim(offset: number, length: number): number;
}

/**
 * A reclaimer that releases nothing (browsers, hosts without madvise): the balloon still works as a
 * guest-side limit, and this counts what would have been given back.
 */
export class CountingReclaimer implements PageReclaimer {
  readonly kind = "none";
  /** Pages handed over so far, and in how many calls. */
  pages = 0;
  calls = 0;

  reclaim(_offset: number, length: number): number {
    this.calls++;
    this.pages += length / BALLOON_PAGE;
    return 0;
  }
}
