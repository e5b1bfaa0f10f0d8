/**
 * Reading the files a guest is made of (kernel, initrd, firmware) without trusting the path: a device
 * like /dev/zero never ends, a FIFO blocks the open until a writer comes, and a huge file would be read
 * whole before any size check. So the file is checked first and read only up to the size it had.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from "node:fs";
import { fileKind } from "../host/block-file.js";
import { UserError } from "../util/errors.js";
import { formatSize } from "../util/size.js";
import { describeFsError } from "./fs-errors.js";

/**
 * The bytes of the regular file at `path` (`what` names it in errors: "kernel", "initrd"...). Refused
 * with a UserError: a path that cannot be opened, anything but a regular file, an empty file, and a file
 * larger than `limit` bytes (the guest RAM it has to fit in).
 */
export function readGuestFile(path: string, what: string, limit: number): Uint8Array {
  const fail = (why: string): never => {
    throw new UserError(`${what} '${path}': ${why}`);
  };
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  }
  check(stats, limit, fail);
  let fd: number;
  try {
    // O_NONBLOCK: if the path became a FIFO since the stat, the open still returns (and fstat refuses it).
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new UserError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  }
  try {
    const opened = fstatSync(fd);
    check(opened, limit, fail);
    const bytes = new Uint8Array(opened.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, null);
      if (n === 0) break;
      done += n;
    }
    if (done === 0) fail("is empty");
    return done === bytes.length ? bytes : bytes.subarray(0, done);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  } finally {
    closeSync(fd);
  }
}

function check(stats: Stats, limit: number, fail: (why: string) => never): void {
  if (!stats.isFile()) fail(`${fileKind(stats)}, not a regular file`);
  if (stats.size === 0) fail("is empty");
  if (stats.size > limit) {
    fail(`${formatSize(stats.size)} (${stats.size} bytes) does not fit in ${formatSize(limit)} of guest RAM`);
  }
}
