/**
 * Where snapshot files live, as the VM layer sees it: the host brings an implementation (files in a
 * directory for Node, `nodeSnapshotStore()` in cli/; something else in a browser). The store only moves
 * bytes and does the (de)compression; the format is this folder's.
 */
import type { Compression } from "./memory-file.js";

export const STATE_FILE = "state.vsnap";
export const MEMORY_FILE = "memory.vsnap";
/**
 * A location ending in this is one file instead of a directory (`--single-file`): SINGLE_FILE_MAGIC,
 * the state file's length (u32, little-endian), the state file, then the memory file as it would be.
 */
export const SINGLE_FILE_SUFFIX = ".vsnap";
export const SINGLE_FILE_MAGIC = "VIREOSF1";

/** Whether `location` names a single-file snapshot rather than a directory. */
export function isSingleFile(location: string): boolean {
  return location.endsWith(SINGLE_FILE_SUFFIX);
}

/** Where a clone's copied disks go: beside a single-file snapshot, inside a directory one. */
export function clonesDir(location: string, name: string): string {
  return isSingleFile(location) ? `${location}.clones/${name}` : `${location}/clones/${name}`;
}

export interface SnapshotWrite {
  state: Uint8Array;
  /** The memory file's header, written as it is. */
  memoryHeader: Uint8Array;
  /** The memory payload, compressed by the store when `compression` says so. */
  memoryPayload: Iterable<Uint8Array>;
  compression: Compression;
}

export interface SnapshotRead {
  state: Uint8Array;
  memoryHeader: Uint8Array;
  /** The payload, decompressed. */
  memoryPayload: AsyncIterable<Uint8Array>;
}

export interface SnapshotStore {
  /** Writes a snapshot into `location` (created if missing); resolves when every byte is written. */
  write(location: string, files: SnapshotWrite): Promise<void>;
  /** Opens a snapshot; `compression` of the payload is read from its header by the caller's decoder. */
  read(location: string, compression: (header: Uint8Array) => Compression): Promise<SnapshotRead>;
}
