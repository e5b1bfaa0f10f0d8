/**
 * Guest RAM for a KVM VM: one anonymous private mapping per region (MAP_NORESERVE: pages are allocated on
 * first touch), each registered as a KVM memory slot and seen from JavaScript through views of at most
 * 4 GiB (koffi's limit) as `GuestMemory` for devices and loaders.
 */
import type { GuestMemory } from "../../devices/device.js";
import * as libc from "../libc.js";
import type { Vm } from "./kvm.js";

/** Largest single view; regions above it are split into chunks of this size. */
export const VIEW_CHUNK = 2 ** 32;

export interface RamRegion {
  /** Guest-physical start, page aligned. */
  base: number;
  size: number;
}

class RamChunk implements GuestMemory {
  constructor(
    readonly base: number,
    readonly size: number,
    readonly bytes: Uint8Array,
  ) {}

  contains(paddr: number, length: number): boolean {
    return paddr >= this.base && length >= 0 && paddr + length <= this.base + this.size;
  }
}

interface Mapping {
  region: RamRegion;
  host: bigint;
}

export class GuestRam {
  /** Every view, sorted by guest address; a region larger than 4 GiB has several. */
  readonly chunks: readonly GuestMemory[];
  private readonly mappings: Mapping[] = [];
  private released = false;

  constructor(readonly regions: readonly RamRegion[]) {
    const chunks: RamChunk[] = [];
    try {
      for (const region of regions) {
        if (region.base % 4096 !== 0 || region.size % 4096 !== 0 || region.size <= 0) {
          throw new RangeError(`RAM region at 0x${region.base.toString(16)} is not page aligned`);
        }
        const host = libc.mmap(
          region.size,
          libc.PROT_READ | libc.PROT_WRITE,
          libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE,
          -1,
          "guest RAM",
        );
        this.mappings.push({ region, host });
        for (let offset = 0; offset < region.size; offset += VIEW_CHUNK) {
          const size = Math.min(VIEW_CHUNK, region.size - offset);
          const bytes = new Uint8Array(libc.view(host + BigInt(offset), size));
          chunks.push(new RamChunk(region.base + offset, size, bytes));
        }
      }
    } catch (e) {
      this.release();
      throw e;
    }
    this.chunks = chunks.sort((a, b) => a.base - b.base);
  }

  /** Registers every region with the VM as memory slots 0, 1, … */
  register(vm: Vm): void {
    this.mappings.forEach((m, slot) => {
      vm.setMemoryRegion(slot, m.region.base, m.region.size, m.host);
    });
  }

  /** Where region `slot` is mapped in this process (for KVM's memory slot). */
  hostAddress(slot: number): bigint {
    const m = this.mappings[slot];
    if (m === undefined) throw new RangeError(`no RAM region ${slot}`);
    return m.host;
  }

  get size(): number {
    return this.regions.reduce((sum, r) => sum + r.size, 0);
  }

  /** The view holding [paddr, paddr + length), or undefined if that range is not inside one view. */
  memoryAt(paddr: number, length = 1): GuestMemory | undefined {
    return this.chunks.find((c) => c.contains(paddr, length));
  }

  /** Whether [paddr, paddr + length) is RAM (possibly spanning views of one region). */
  contains(paddr: number, length: number): boolean {
    return this.regions.some((r) => paddr >= r.base && paddr + length <= r.base + r.size);
  }

  /** Copies `data` into guest RAM at `paddr`; throws if any byte falls outside RAM. */
  write(paddr: number, data: Uint8Array): void {
    this.forEachPiece(paddr, data.length, (bytes, at, from, length) => {
      bytes.set(data.subarray(from, from + length), at);
    });
  }

  read(paddr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.forEachPiece(paddr, length, (bytes, at, from, n) => {
      out.set(bytes.subarray(at, at + n), from);
    });
    return out;
  }

  fill(paddr: number, length: number, value = 0): void {
    this.forEachPiece(paddr, length, (bytes, at, _from, n) => {
      bytes.fill(value, at, at + n);
    });
  }

  private forEachPiece(
    paddr: number,
    length: number,
    action: (bytes: Uint8Array, at: number, from: number, length: number) => void,
  ): void {
    if (!this.contains(paddr, length)) {
      throw new RangeError(
        `guest RAM access [0x${paddr.toString(16)}, +0x${length.toString(16)}) is outside RAM`,
      );
    }
    let done = 0;
    while (done < length) {
      const chunk = this.memoryAt(paddr + done) as GuestMemory;
      const at = paddr + done - chunk.base;
      const n = Math.min(length - done, chunk.size - at);
      action(chunk.bytes, at, done, n);
      done += n;
    }
  }

  /** Unmaps the RAM. Every view becomes invalid (touching one crashes the process), so call it last. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const m of this.mappings) libc.munmap(m.host, m.region.size);
    this.mappings.length = 0;
  }
}
