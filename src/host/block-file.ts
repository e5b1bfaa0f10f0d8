/**
 * A virtio-blk backend over a raw disk image file: positional I/O on one file handle, opened O_RDONLY
 * for read-only drives and O_RDWR otherwise, and locked (image-lock.ts: shared for read-only, exclusive
 * otherwise) until it is closed; flush is fdatasync. Node only.
 */
import { constants, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open, stat } from "node:fs/promises";
import type { BlockBackend } from "../devices/virtio/blk/backend.js";
import { type LockResult, lockImage, unlockImage } from "./image-lock.js";

/** Zeroing works through this much at a time. */
const ZERO_CHUNK = 1 << 20;
const ZEROES = new Uint8Array(ZERO_CHUNK);

export interface FileBlockOptions {
  readOnly?: boolean;
  /** Take the image lock (default true). */
  lock?: boolean;
}

/** Another process holds a lock on the image that conflicts with ours. */
export class ImageLockedError extends Error {
  override name = "ImageLockedError";
  constructor(
    readonly path: string,
    /** The holder's pid, when it could be found out. */
    readonly holder: number | null,
  ) {
    super(`${path} is locked by ${holder === null ? "another process" : `process ${holder}`}`);
  }
}

/** What a path that is not a regular file is, in words ("a directory"), for error messages. */
export function fileKind(s: Stats): string {
  if (s.isFile()) return "a regular file";
  if (s.isDirectory()) return "a directory";
  if (s.isBlockDevice()) return "a block device";
  if (s.isCharacterDevice()) return "a character device";
  if (s.isFIFO()) return "a FIFO";
  if (s.isSocket()) return "a socket";
  return "not a regular file";
}

function notAFile(path: string, s: Stats): Error {
  return Object.assign(new Error(`${path} is ${fileKind(s)}, not a regular file`), {
    code: "ENOTFILE",
    kind: fileKind(s),
  });
}

export class FileBlockBackend implements BlockBackend {
  /** Reads, writes and flushes under way: a migration waits for them before handing the image over. */
  private readonly busy = new Set<Promise<unknown>>();

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly sizeBytes: number,
    readonly readOnly: boolean,
    private readonly locked: boolean,
  ) {}

  private track<T>(op: Promise<T>): Promise<T> {
    this.busy.add(op);
    const done = () => this.busy.delete(op);
    op.then(done, done);
    return op;
  }

  /**
   * Live migration to another process of this machine: waits for every operation under way, makes the
   * written data durable and drops the image lock, so that the target can take it.
   */
  async handOver(): Promise<void> {
    while (this.busy.size > 0) await Promise.allSettled([...this.busy]);
    if (!this.readOnly) await this.handle.datasync();
    if (this.locked) unlockImage(this.handle.fd);
  }

  /** Takes the lock back after a migration failed; false when someone else has it now. */
  takeBack(): boolean {
    if (!this.locked) return true;
    return (
      lockImage(this.handle.fd, this.readOnly ? "shared" : "exclusive", { dev: 0, ino: 0 }).kind !==
      "conflict"
    );
  }

  /**
   * Opens and locks an existing regular file. Rejects with the fs error (ENOENT, EACCES...), with code
   * ENOTFILE for anything but a regular file (a device, a FIFO, a directory), or with ImageLockedError.
   * `warn` hears when the image could not be locked at all (the open goes on without a lock).
   */
  static async open(
    path: string,
    options: FileBlockOptions = {},
    warn: (message: string) => void = () => {},
  ): Promise<FileBlockBackend> {
    const readOnly = options.readOnly === true;
    // The type is checked before opening: opening a FIFO would wait for a writer, a device may have
    // side effects. O_NONBLOCK covers a file swapped for a FIFO in between (no effect on regular files).
    const before = await stat(path);
    if (!before.isFile()) throw notAFile(path, before);
    const flags = (readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
    const handle = await open(path, flags);
    try {
      const s = await handle.stat();
      if (!s.isFile()) throw notAFile(path, s);
      if (options.lock !== false) {
        const lock: LockResult = lockImage(handle.fd, readOnly ? "shared" : "exclusive", s);
        if (lock.kind === "conflict") throw new ImageLockedError(path, lock.holder);
        if (lock.kind === "unsupported") warn(`${path} is not locked (${lock.why})`);
      }
      return new FileBlockBackend(handle, path, s.size, readOnly, options.lock !== false);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.track(this.readAll(offset, dst));
  }

  private async readAll(offset: number, dst: Uint8Array): Promise<void> {
    let done = 0;
    while (done < dst.length) {
      const { bytesRead } = await this.handle.read(dst, done, dst.length - done, offset + done);
      if (bytesRead === 0) throw new Error(`${this.path}: unexpected end of file at ${offset + done}`);
      done += bytesRead;
    }
  }

  write(offset: number, src: Uint8Array): Promise<void> {
    return this.track(this.writeAll(offset, src));
  }

  private async writeAll(offset: number, src: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error(`${this.path} is read-only`);
    let done = 0;
    while (done < src.length) {
      const { bytesWritten } = await this.handle.write(src, done, src.length - done, offset + done);
      if (bytesWritten === 0) throw new Error(`${this.path}: short write at ${offset + done}`);
      done += bytesWritten;
    }
  }

  flush(): Promise<void> {
    return this.track(this.readOnly ? Promise.resolve() : this.handle.datasync());
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
  writeZeroes(offset: number, length: number): Promise<void> {
    return this.track(this.zeroAll(offset, length));
  }

  private async zeroAll(offset: number, length: number): Promise<void> {
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
