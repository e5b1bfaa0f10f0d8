/**
 * Giving the host the memory behind ballooned guest pages back (virtio-balloon's PageReclaimer).
 *
 * Guest RAM is a region of a WebAssembly.Memory (the interpreter) or of an mmap'd buffer (KVM). There
 * is no JavaScript API to release pages of either, but on Linux both are anonymous private mappings
 * (V8 reserves wasm memory with mmap and commits it with mprotect), and madvise(MADV_DONTNEED) on a
 * page-aligned range of such a mapping drops its pages: RSS goes down and the range reads back as zeros,
 * faulted in afresh on the next touch. The mapping itself stays, so every pointer into it stays valid.
 *
 * The host address of the bytes comes from koffi.address(typedArray): the address of the view's first
 * byte (buffer data pointer + byteOffset), not of a copy. Tests check it the hard way: a range filled
 * with non-zero bytes reads zeros after madvise, and RSS drops by its size.
 *
 * The interpreter's soft-TLB caches, per guest page, an addend that turns a guest virtual address into
 * a linear-memory address. madvise does not move or unmap anything, so those addresses stay right: an
 * access through a cached entry reaches the same (now zero-filled) page as a TLB miss would. No TLB
 * flush is needed, and no other cache holds RAM contents.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { BALLOON_PAGE, CountingReclaimer, type PageReclaimer } from "../devices/virtio/balloon/reclaimer.js";

type Koffi = typeof import("koffi");

const MADV_DONTNEED = 4;
const SC_PAGESIZE = 30;

interface Bindings {
  koffi: Koffi;
  madvise: (address: bigint, length: number, advice: number) => number;
  pageSize: number;
}

let bindings: Bindings | null | undefined;

/** koffi and libc's madvise, or null off Linux or without koffi's native part (loaded once). */
function bind(): Bindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  if (process.platform !== "linux") return null;
  try {
    const koffi = createRequire(import.meta.url)("koffi") as Koffi;
    const lib = koffi.load("libc.so.6");
    const sysconf = lib.func("sysconf", "long", ["int"]) as (name: number) => number;
    const pageSize = sysconf(SC_PAGESIZE);
    if (!Number.isInteger(pageSize) || pageSize < BALLOON_PAGE || (pageSize & (pageSize - 1)) !== 0)
      return null;
    bindings = {
      koffi,
      madvise: lib.func("madvise", "int", ["void *", "size_t", "int"]),
      pageSize,
    };
  } catch {
    bindings = null;
  }
  return bindings;
}

/**
 * Releases guest pages with madvise(MADV_DONTNEED) on the host memory behind a guest RAM view. Only
 * whole host pages inside a range are released (on hosts with pages above 4 KiB, a lone 4 KiB guest
 * page keeps its memory). Linux only.
 */
export class MadviseReclaimer implements PageReclaimer {
  readonly kind = "madvise";
  /** madvise calls made, bytes released, calls that failed (and the last errno). */
  calls = 0;
  releasedBytes = 0;
  failures = 0;
  lastErrno = 0;

  private constructor(
    private readonly ram: Uint8Array,
    private readonly b: Bindings,
  ) {}

  /**
   * A reclaimer for `ram` (guest RAM's bytes: a view of a WebAssembly.Memory or of anonymous private
   * mmap'd memory), or null when madvise is not available here.
   */
  static open(ram: Uint8Array): MadviseReclaimer | null {
    const b = bind();
    if (b === null) return null;
    try {
      if (b.koffi.address(ram) === 0n) return null;
    } catch {
      return null;
    }
    return new MadviseReclaimer(ram, b);
  }

  /** The host's page size (madvise's granule). */
  get hostPageSize(): number {
    return this.b.pageSize;
  }

  reclaim(offset: number, length: number): number {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.ram.byteLength
    ) {
      throw new RangeError(`reclaim [${offset}, +${length}) is outside guest RAM`);
    }
    // Computed on every call (cheap): the address of the view's first byte, never of a copy.
    const base = this.b.koffi.address(this.ram);
    const page = BigInt(this.b.pageSize);
    const start = base + BigInt(offset);
    const end = start + BigInt(length);
    const first = ((start + page - 1n) / page) * page;
    const last = (end / page) * page;
    if (last <= first) return 0;
    const bytes = Number(last - first);
    this.calls++;
    if (this.b.madvise(first, bytes, MADV_DONTNEED) !== 0) {
      this.failures++;
      this.lastErrno = this.b.koffi.errno();
      return 0;
    }
    this.releasedBytes += bytes;
    return bytes;
  }
}

/** The best reclaimer for guest RAM here: madvise on Linux, else one that only counts. */
export function hostPageReclaimer(ram: Uint8Array): PageReclaimer {
  return MadviseReclaimer.open(ram) ?? new CountingReclaimer();
}

/** This process's resident set size in bytes (from /proc/self/statm), or null where it cannot be read. */
export function residentBytes(): number | null {
  const b = bind();
  if (b === null) return null;
  try {
    const pages = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
    return Number.isFinite(pages) ? pages * b.pageSize : null;
  } catch {
    return null;
  }
}
