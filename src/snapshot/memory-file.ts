/**
 * The memory file of a snapshot: a 32-byte header, then a payload (zlib-compressed when the header says
 * so; the host does the compressing) of a page bitmap, the pages whose bit is set in page order, and a
 * CRC-64 of bitmap and pages. A full snapshot sets the bits of the non-zero pages only (a fresh VM's RAM
 * is zero); a later dirty-page pass can use the same layout with the bits of the pages it sends.
 * Both directions stream: the encoder yields views into RAM, the decoder takes chunks of any size.
 */
import { UserError } from "../util/errors.js";
import { Crc64 } from "./crc64.js";
import { checkVersion, FORMAT_MAJOR, FORMAT_MINOR } from "./version.js";

export const MEMORY_MAGIC = "VIREOMEM";
export const MEMORY_HEADER_BYTES = 32;
export const PAGE_BYTES = 4096;
/** Largest chunk the encoder yields: runs of pages are cut so a writer's buffers stay small. */
const MAX_CHUNK = 1 << 20;

export type Compression = "none" | "zlib";

export interface MemoryHeader {
  compression: Compression;
  pageBytes: number;
  pages: number;
  /** Guest physical address of the first page. */
  base: number;
}

export function encodeMemoryHeader(h: MemoryHeader): Uint8Array {
  const out = new Uint8Array(MEMORY_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MEMORY_MAGIC), 0);
  view.setUint16(8, FORMAT_MAJOR, true);
  view.setUint16(10, FORMAT_MINOR, true);
  out[12] = h.compression === "zlib" ? 1 : 0;
  view.setUint32(16, h.pageBytes, true);
  view.setUint32(20, h.pages, true);
  view.setUint32(24, h.base % 2 ** 32, true);
  view.setUint32(28, Math.floor(h.base / 2 ** 32), true);
  return out;
}

export function decodeMemoryHeader(bytes: Uint8Array, what: string): MemoryHeader {
  if (bytes.length < MEMORY_HEADER_BYTES) throw new UserError(`${what}: truncated (no complete header)`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MEMORY_MAGIC) {
    throw new UserError(`${what}: not a Vireo snapshot memory file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkVersion(what, view.getUint16(8, true), view.getUint16(10, true), 0);
  const c = bytes[12];
  if (c !== 0 && c !== 1) throw new UserError(`${what}: unknown compression ${c}`);
  const pageBytes = view.getUint32(16, true);
  if (pageBytes !== PAGE_BYTES)
    throw new UserError(`${what}: page size ${pageBytes}, expected ${PAGE_BYTES}`);
  return {
    compression: c === 1 ? "zlib" : "none",
    pageBytes,
    pages: view.getUint32(20, true),
    base: view.getUint32(24, true) + view.getUint32(28, true) * 2 ** 32,
  };
}

function isZeroPage(words: Uint32Array, page: number): boolean {
  const first = page * (PAGE_BYTES / 4);
  const end = first + PAGE_BYTES / 4;
  // OR eight words at a time, one test per group: most of a guest's RAM is zero pages.
  for (let i = first; i < end; i += 8) {
    const any =
      (words[i] as number) |
      (words[i + 1] as number) |
      (words[i + 2] as number) |
      (words[i + 3] as number) |
      (words[i + 4] as number) |
      (words[i + 5] as number) |
      (words[i + 6] as number) |
      (words[i + 7] as number);
    if (any !== 0) return false;
  }
  return true;
}

/** The bitmap of `ram`'s non-zero pages (optionally only among `candidates`, a bitmap of its own). */
export function nonZeroPages(ram: Uint8Array, candidates: Uint8Array | null = null): Uint8Array {
  if (ram.length % PAGE_BYTES !== 0 || ram.byteOffset % 4 !== 0)
    throw new RangeError("RAM must be whole pages");
  const pages = ram.length / PAGE_BYTES;
  const words = new Uint32Array(ram.buffer, ram.byteOffset, ram.length / 4);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  for (let p = 0; p < pages; p++) {
    if (candidates !== null && ((candidates[p >> 3] as number) & (1 << (p & 7))) === 0) continue;
    if (!isZeroPage(words, p)) bitmap[p >> 3] = (bitmap[p >> 3] as number) | (1 << (p & 7));
  }
  return bitmap;
}

function hasPage(bitmap: Uint8Array, p: number): boolean {
  return ((bitmap[p >> 3] as number) & (1 << (p & 7))) !== 0;
}

/**
 * The payload for the pages of `ram` that `bitmap` selects: the bitmap, those pages (views into `ram`:
 * write each before the guest runs again; or copies, with `copy`) and the CRC-64 trailer.
 */
export function* memoryPayload(ram: Uint8Array, bitmap: Uint8Array, copy = false): Generator<Uint8Array> {
  const pages = ram.length / PAGE_BYTES;
  if (bitmap.length !== Math.ceil(pages / 8)) throw new RangeError("bitmap does not fit the RAM");
  const crc = new Crc64().update(bitmap);
  yield bitmap;
  let p = 0;
  while (p < pages) {
    if (!hasPage(bitmap, p)) {
      p++;
      continue;
    }
    const first = p;
    while (p < pages && hasPage(bitmap, p) && (p - first) * PAGE_BYTES < MAX_CHUNK) p++;
    // `copy`: RAM another thread writes meanwhile (KVM vCPUs) must be read once, for the CRC and the bytes.
    const run = copy
      ? ram.slice(first * PAGE_BYTES, p * PAGE_BYTES)
      : ram.subarray(first * PAGE_BYTES, p * PAGE_BYTES);
    crc.update(run);
    yield run;
  }
  const [lo, hi] = crc.digest();
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, lo, true);
  view.setUint32(4, hi, true);
  yield trailer;
}

/**
 * Takes a payload in chunks and writes its pages into `ram` (which must be as large as the header says);
 * `finish()` checks that it was complete and its CRC matched. Pages whose bit is clear are left alone.
 */
export class MemoryDecoder {
  private readonly bitmap: Uint8Array;
  private bitmapFill = 0;
  private readonly crc = new Crc64();
  private page = -1;
  private pageFill = 0;
  private readonly trailer = new Uint8Array(8);
  private trailerFill = 0;
  /** Pages written so far. */
  loaded = 0;

  constructor(
    private readonly ram: Uint8Array,
    header: MemoryHeader,
    private readonly what: string,
  ) {
    if (header.pages * PAGE_BYTES !== ram.length) {
      throw new UserError(
        `${what}: holds ${header.pages * PAGE_BYTES} bytes of RAM, the VM has ${ram.length}`,
      );
    }
    this.bitmap = new Uint8Array(Math.ceil(header.pages / 8));
  }

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.bitmapFill < this.bitmap.length) {
        const n = Math.min(chunk.length - at, this.bitmap.length - this.bitmapFill);
        this.bitmap.set(chunk.subarray(at, at + n), this.bitmapFill);
        this.crc.update(chunk.subarray(at, at + n));
        this.bitmapFill += n;
        at += n;
        if (this.bitmapFill === this.bitmap.length) {
          this.checkBitmapEnd();
          this.nextPage();
        }
        continue;
      }
      if (this.page >= 0) {
        const n = Math.min(chunk.length - at, PAGE_BYTES - this.pageFill);
        const part = chunk.subarray(at, at + n);
        this.ram.set(part, this.page * PAGE_BYTES + this.pageFill);
        this.crc.update(part);
        this.pageFill += n;
        at += n;
        if (this.pageFill === PAGE_BYTES) {
          this.loaded++;
          this.nextPage();
        }
        continue;
      }
      const n = Math.min(chunk.length - at, 8 - this.trailerFill);
      if (n === 0) throw new UserError(`${this.what}: data after the end of the memory image`);
      this.trailer.set(chunk.subarray(at, at + n), this.trailerFill);
      this.trailerFill += n;
      at += n;
    }
  }

  finish(): void {
    if (this.bitmapFill < this.bitmap.length || this.page >= 0 || this.trailerFill < 8) {
      throw new UserError(`${this.what}: truncated memory image`);
    }
    const view = new DataView(this.trailer.buffer);
    const [lo, hi] = this.crc.digest();
    if (lo !== view.getUint32(0, true) || hi !== view.getUint32(4, true)) {
      throw new UserError(`${this.what}: CRC-64 mismatch: the memory image is corrupt`);
    }
  }

  /** Bits past the last page name pages the RAM does not have: the image was made for another VM. */
  private checkBitmapEnd(): void {
    const pages = this.ram.length / PAGE_BYTES;
    const used = pages % 8;
    if (used !== 0 && (this.bitmap[this.bitmap.length - 1] as number) >> used !== 0) {
      throw new UserError(`${this.what}: the page bitmap names pages past the end of RAM`);
    }
  }

  private nextPage(): void {
    const pages = this.ram.length / PAGE_BYTES;
    let p = this.page + 1;
    while (p < pages && !hasPage(this.bitmap, p)) p++;
    if (p < pages) {
      this.page = p;
      this.pageFill = 0;
    } else {
      this.page = -2;
    }
  }
}
