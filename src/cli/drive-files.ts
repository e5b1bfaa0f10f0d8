/**
 * Opening the image files of --drive (and --root-disk) before a VM is built: each must be a regular
 * file, one file (device and inode, whatever the paths) is attached writable at most once, and each is
 * locked against other processes (exclusive for a writable drive, shared for a read-only one) until
 * the VM ends.
 */
import { type Stats, statSync } from "node:fs";
import { SECTOR } from "../devices/virtio/blk/virtio-blk.js";
import { FileBlockBackend, fileKind, ImageLockedError } from "../host/block-file.js";
import { UserError } from "../util/errors.js";
import type { DriveSpec } from "./virtio.js";

/** How a drive is named in messages: "--drive disk.img", "--root-disk /path/root.ext4". */
export function driveLabel(drive: DriveSpec): string {
  return `${drive.flag ?? "--drive"} ${drive.file}`;
}

function notRegular(drive: DriveSpec, kind: string): UserError {
  return new UserError(
    `${driveLabel(drive)}: ${kind}, not a regular file; drives are disk image files ` +
      "(block devices are not supported)",
  );
}

/**
 * Checks the drives' files without opening them: each exists and is a regular file, and no file is
 * attached twice when one of the attachments is writable (two paths can name one file through a
 * symlink or a hard link, so files are compared by device and inode). Read-only twice is allowed.
 */
export function checkDriveFiles(drives: readonly DriveSpec[]): void {
  const seen: { drive: DriveSpec; dev: number; ino: number }[] = [];
  for (const drive of drives) {
    let s: Stats;
    try {
      s = statSync(drive.file);
    } catch (e) {
      throw new UserError(`cannot open drive '${drive.file}': ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    if (!s.isFile()) throw notRegular(drive, fileKind(s));
    const other = seen.find((o) => o.dev === s.dev && o.ino === s.ino);
    if (other !== undefined && !(other.drive.readOnly && drive.readOnly)) {
      throw new UserError(
        `${driveLabel(drive)}: the same file as ${driveLabel(other.drive)} (a link to it); ` +
          "a file can be attached more than once only read-only",
      );
    }
    seen.push({ drive, dev: s.dev, ino: s.ino });
  }
}

/** The drives' files, open and locked; `close` closes them, which drops the locks. */
export interface OpenDrives {
  readonly drives: readonly { spec: DriveSpec; backend: FileBlockBackend }[];
  close(): Promise<void>;
}

/**
 * Checks (checkDriveFiles), opens and locks the drives in order; on any failure the files opened so
 * far are closed and a UserError says which drive and why.
 */
export async function openDrives(
  specs: readonly DriveSpec[],
  warn: (message: string) => void = (m) => process.stderr.write(`vireo: warning: ${m}\n`),
): Promise<OpenDrives> {
  checkDriveFiles(specs);
  const drives: { spec: DriveSpec; backend: FileBlockBackend }[] = [];
  const close = async () => {
    await Promise.allSettled(drives.map((d) => d.backend.close()));
  };
  try {
    for (const spec of specs) {
      drives.push({ spec, backend: await openOne(spec, warn) });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { drives, close };
}

async function openOne(spec: DriveSpec, warn: (message: string) => void): Promise<FileBlockBackend> {
  let backend: FileBlockBackend;
  try {
    backend = await FileBlockBackend.open(spec.file, { readOnly: spec.readOnly }, warn);
  } catch (e) {
    if (e instanceof ImageLockedError) {
      const who = e.holder === null ? "another process" : `another process (pid ${e.holder})`;
      throw new UserError(`${driveLabel(spec)}: locked by ${who}; is another VM using it?`);
    }
    const error = e as NodeJS.ErrnoException & { kind?: string };
    if (error.code === "ENOTFILE") throw notRegular(spec, error.kind ?? "not a regular file");
    throw new UserError(`cannot open drive '${spec.file}': ${error.code ?? error.message}`);
  }
  if (backend.sizeBytes < SECTOR) {
    await backend.close();
    throw new UserError(`drive '${spec.file}' is smaller than one ${SECTOR}-byte sector`);
  }
  return backend;
}
