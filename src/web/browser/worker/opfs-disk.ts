/**
 * The persistent root disk: a file in the Origin Private File System, read and written through a
 * synchronous access handle (only workers get one), so it is a synchronous BlockBackend like a memory
 * disk, and what the guest wrote survives a reload.
 */
import type { BlockBackend } from "../../../devices/virtio/blk/backend.js";

/**
 * The part of FileSystemSyncAccessHandle used here, declared locally: only the WebWorker lib has the
 * type, and these files are also compiled by the main build, whose lib is the DOM one.
 */
export interface SyncAccessHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  flush(): void;
  getSize(): number;
  truncate(size: number): void;
  close(): void;
}

interface OpfsFile {
  createSyncAccessHandle(): Promise<SyncAccessHandle>;
}
interface OpfsDirectory {
  getFileHandle(name: string, options: { create: boolean }): Promise<OpfsFile>;
}

/** How long to wait for the handle a closing page (a reload) still holds on the file. */
const OPEN_TRIES = 50;
const OPEN_RETRY_MS = 100;

/** Opens (creating it empty if new) the OPFS file `name` for synchronous access. */
export async function openOpfsFile(name: string): Promise<SyncAccessHandle> {
  const storage = (navigator as unknown as { storage: { getDirectory(): Promise<OpfsDirectory> } }).storage;
  const file = await (await storage.getDirectory()).getFileHandle(name, { create: true });
  for (let i = 1; ; i++) {
    try {
      return await file.createSyncAccessHandle();
    } catch (e) {
      // The worker of the page before a reload may not have let go of its handle yet.
      if ((e as Error).name !== "NoModificationAllowedError" || i >= OPEN_TRIES) throw e;
      await new Promise((resolve) => setTimeout(resolve, OPEN_RETRY_MS));
    }
  }
}

export class OpfsBlockBackend implements BlockBackend {
  readonly readOnly = false;
  readonly sizeBytes: number;

  constructor(private readonly handle: SyncAccessHandle) {
    this.sizeBytes = handle.getSize();
  }

  read(offset: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const n = this.handle.read(dst.subarray(done), { at: offset + done });
      if (n <= 0) break;
      done += n;
    }
    // The device never reads past sizeBytes; a short read would only come from a file cut meanwhile.
    dst.fill(0, done);
  }

  write(offset: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const n = this.handle.write(src.subarray(done), { at: offset + done });
      if (n <= 0) throw new Error(`OPFS write at ${offset + done} wrote nothing`);
      done += n;
    }
  }

  flush(): void {
    this.handle.flush();
  }
}

/** Replaces the file's contents with `bytes` (the first boot's copy of the root disk). */
export function fillOpfsFile(handle: SyncAccessHandle, bytes: Uint8Array): void {
  handle.truncate(0);
  new OpfsBlockBackend(handle).write(0, bytes);
  handle.truncate(bytes.length);
  handle.flush();
}
