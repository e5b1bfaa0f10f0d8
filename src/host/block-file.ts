/**
 * A virtio-blk backend over a raw disk image file: positional I/O on one file handle, opened O_RDONLY
 * for read-only drives and O_RDWR otherwise; flush is fdatasync. Node only.
 */
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import type { BlockBackend } from "../devices/virtio/blk/backend.js";

/** Zeroing works through this much at a time. */
const ZERO_CHUNK = 1 << 20;
const ZEROES = new Uint8Array(ZERO_CHUNK);

export interface FileBlockOptions {
  readOnly?: boolean;
}

export class FileBlockBackend implements BlockBackend {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly sizeBytes: number,
    readonly readOnly: boolean,
  ) {}

  /** Opens an existing regular file; rejects with the fs error (ENOENT, EACCES...) otherwise. */
  static async open(path: string, options: FileBlockOptions = {}): Promise<FileBlockBackend> {
    const readOnly = options.readOnly === true;
    const handle = await open(path, readOnly ? "r" : "r+");
    try {
      const stat = await handle.stat();
      if (!stat.isFile())
        throw Object.assign(new Error(`${path} is not a regular file`), { code: "ENOTFILE" });
      return new FileBlockBackend(handle, path, stat.size, readOnly);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    let done = 0;
    while (done < dst.length) {
      const { bytesRead } = await this.handle.read(dst, done, dst.length - done, offset + done);
      if (bytesRead === 0) throw new Error(`${this.path}: unexpected end of file at ${offset + done}`);
      done += bytesRead;
    }
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error(`${this.path} is read-only`);
    let done = 0;
    while (done < src.length) {
      const { bytesWritten } = await this.handle.write(src, done, src.length - done, offset + done);
      if (bytesWritten === 0) throw new Error(`${this.path}: short write at ${offset + done}`);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.handle.datasync();
  }

  /**
   * Node cannot punch holes, so a discard zeroes the range like writeZeroes: discarded data does not
   * linger in the image, and ranges that already read as zero (holes of a sparse image) are not
   * written, so sparse images stay sparse.
   */
  discard(offset: number, length: number): Promise<void> {
    return this.writeZeroes(offset, length);
  }

  /** Zeroes the range, skipping chunks that already read as zero. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    const chunk = new Uint8Array(Math.min(length, ZERO_CHUNK));
    for (let done = 0; done < length; ) {
      const n = Math.min(chunk.length, length - done);
      const view = chunk.subarray(0, n);
      await this.read(offset + done, view);
      if (!isZero(view)) await this.write(offset + done, ZEROES.subarray(0, n));
      done += n;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function isZero(bytes: Uint8Array): boolean {
  // Word-wise where aligned (the chunk buffer is), then the tail byte by byte.
  const words = bytes.byteOffset % 4 === 0 ? bytes.length >> 2 : 0;
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
  for (let i = 0; i < words; i++) if (w[i] !== 0) return false;
  for (let i = words << 2; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
