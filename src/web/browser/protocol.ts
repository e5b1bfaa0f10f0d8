/**
 * The messages between the page (xterm.js, main thread) and the Web Worker that runs the machine. Plain
 * structured-cloneable data, so both sides type-check against this one file under their own libs.
 */

/** Where a guest file comes from: a URL the worker fetches, or a file the user picked on the page. */
export type GuestSource = { url: string } | { file: Blob; name: string };

export interface BootRequest {
  type: "boot";
  kernel: GuestSource;
  initrd: GuestSource | null;
  /**
   * The root disk's first contents, copied into the Origin Private File System on the first boot (or
   * when `freshDisk`); later boots use the copy there, with whatever the guest wrote to it. null: no disk.
   */
  rootDisk: GuestSource | null;
  /** Start the persistent disk over from `rootDisk`. */
  freshDisk: boolean;
  cmdline: string;
  memoryBytes: number;
  engine: "interpret" | "translate";
}

export type PageToWorker = BootRequest | { type: "input"; bytes: Uint8Array };

export type WorkerToPage =
  | { type: "output"; bytes: Uint8Array }
  /** A step of the boot the page shows under the terminal ("copying the root disk…"). */
  | { type: "status"; text: string }
  /** VIREO-READY went by on the console. */
  | { type: "ready" }
  | { type: "stats"; instructions: number; seconds: number }
  | { type: "exit"; reason: string }
  | { type: "error"; message: string };

/** The OPFS file that holds the persistent root disk. */
export const DISK_FILE = "vireo-riscv64-rootfs.ext4";
