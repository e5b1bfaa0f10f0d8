/**
 * Where a virtio-blk disk's bytes live: an image file (src/host/), memory (tests, browsers), anything.
 * Every method may complete synchronously (return nothing) or later (return a promise); throwing or
 * rejecting means the operation failed, and the guest gets VIRTIO_BLK_S_IOERR. The device only calls
 * with ranges inside [0, sizeBytes) and never calls write/discard/writeZeroes on a read-only backend.
 */
export interface BlockBackend {
  /** Disk size; the guest sees floor(sizeBytes / 512) sectors. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Fills `dst` with the disk's bytes at `offset`. */
  read(offset: number, dst: Uint8Array): Promise<void> | void;
  /** Stores `src` at `offset`. Completion means the data is written (not necessarily durable). */
  write(offset: number, src: Uint8Array): Promise<void> | void;
  /** Makes every write completed so far durable (fdatasync). */
  flush(): Promise<void> | void;
  /** Optional: the range's contents are no longer needed (deallocate; reads may then return anything). */
  discard?(offset: number, length: number): Promise<void> | void;
  /** Optional: the range reads as zeroes afterwards. */
  writeZeroes?(offset: number, length: number): Promise<void> | void;
}

/** A disk in memory: synchronous, for tests and hosts without files. */
export class MemoryBlockBackend implements BlockBackend {
  readonly sizeBytes: number;

  constructor(
    readonly data: Uint8Array,
    readonly readOnly = false,
  ) {
    this.sizeBytes = data.length;
  }

  read(offset: number, dst: Uint8Array): void {
    dst.set(this.data.subarray(offset, offset + dst.length));
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error("read-only disk");
    this.data.set(src, offset);
  }

  flush(): void {}

  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    if (this.readOnly) throw new Error("read-only disk");
    this.data.fill(0, offset, offset + length);
  }
}
