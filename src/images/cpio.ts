/**
 * A writer for the "newc" cpio format (SVR4 without CRC, magic 070701), the one the Linux kernel unpacks as
 * an initramfs. Every entry is owned by root with a fixed mtime, so the same inputs give the same bytes,
 * and device nodes are plain entries: building an initramfs needs no privileges.
 */

/** File type bits of st_mode. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array | string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char" | "block"; path: string; major: number; minor: number; mode?: number };

export interface CpioOptions {
  /** Modification time of every entry, seconds since the epoch (default 0, for reproducible output). */
  mtime?: number;
}

export const NEWC_MAGIC = "070701";
export const TRAILER_NAME = "TRAILER!!!";
const HEADER_SIZE = 110;

const encoder = new TextEncoder();

/** Normalises an archive path: no leading "/" or "./", no empty or "." components, no "..". */
export function cpioPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) return ".";
  if (parts.includes("..")) throw new Error(`cpio: '..' in path '${path}'`);
  return parts.join("/");
}

function hex8(value: number, field: string): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`cpio: ${field} ${value} does not fit a newc header field`);
  }
  return value.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** The st_mode, data and device numbers an entry is stored with. */
function describe(entry: CpioEntry): {
  mode: number;
  data: Uint8Array;
  rdev: [number, number];
  nlink: number;
} {
  switch (entry.type) {
    case "dir":
      return { mode: S_IFDIR | (entry.mode ?? 0o755), data: new Uint8Array(0), rdev: [0, 0], nlink: 2 };
    case "file": {
      const data = typeof entry.data === "string" ? encoder.encode(entry.data) : entry.data;
      return { mode: S_IFREG | (entry.mode ?? 0o644), data, rdev: [0, 0], nlink: 1 };
    }
    case "symlink":
      return { mode: S_IFLNK | 0o777, data: encoder.encode(entry.target), rdev: [0, 0], nlink: 1 };
    case "char":
    case "block": {
      const kind = entry.type === "char" ? S_IFCHR : S_IFBLK;
      return {
        mode: kind | (entry.mode ?? 0o600),
        data: new Uint8Array(0),
        rdev: [entry.major, entry.minor],
        nlink: 1,
      };
    }
  }
}

function record(
  name: string,
  ino: number,
  mode: number,
  nlink: number,
  mtime: number,
  data: Uint8Array,
  rdev: [number, number],
): Uint8Array[] {
  const nameBytes = encoder.encode(`${name}\0`);
  const header =
    NEWC_MAGIC +
    hex8(ino, "inode") +
    hex8(mode, "mode") +
    hex8(0, "uid") +
    hex8(0, "gid") +
    hex8(nlink, "nlink") +
    hex8(mtime, "mtime") +
    hex8(data.length, "file size") +
    hex8(0, "devmajor") +
    hex8(0, "devminor") +
    hex8(rdev[0], "rdevmajor") +
    hex8(rdev[1], "rdevminor") +
    hex8(nameBytes.length, "name size") +
    hex8(0, "check");
  const chunks: Uint8Array[] = [
    encoder.encode(header),
    nameBytes,
    new Uint8Array(pad4(HEADER_SIZE + nameBytes.length)),
  ];
  if (data.length > 0) chunks.push(data, new Uint8Array(pad4(data.length)));
  return chunks;
}

/**
 * Builds a newc archive of `entries`, in the given order (list a directory before what it holds), followed
 * by the TRAILER!!! record. Paths are stored relative ("bin/busybox"), as the kernel and cpio -i expect.
 */
export function buildCpio(entries: readonly CpioEntry[], options: CpioOptions = {}): Uint8Array {
  const mtime = options.mtime ?? 0;
  const seen = new Set<string>();
  const chunks: Uint8Array[] = [];
  let ino = 1;
  for (const entry of entries) {
    const name = cpioPath(entry.path);
    if (name === TRAILER_NAME) throw new Error(`cpio: '${TRAILER_NAME}' is reserved`);
    if (seen.has(name)) throw new Error(`cpio: '${name}' listed twice`);
    seen.add(name);
    const { mode, data, rdev, nlink } = describe(entry);
    chunks.push(...record(name, ino++, mode, nlink, mtime, data, rdev));
  }
  chunks.push(...record(TRAILER_NAME, 0, 0, 1, 0, new Uint8Array(0), [0, 0]));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Reads a newc archive written by buildCpio (or any newc archive without hard links) back into entries,
 * up to the TRAILER!!! record. Permission bits are kept as `mode`; uid, gid and mtime are dropped.
 */
export function readCpio(archive: Uint8Array): CpioEntry[] {
  const text = (start: number, length: number) =>
    Buffer.from(archive.subarray(start, start + length)).toString("latin1");
  const entries: CpioEntry[] = [];
  let pos = 0;
  for (;;) {
    if (pos + HEADER_SIZE > archive.length) throw new Error("cpio: archive ends without TRAILER!!!");
    const magic = text(pos, 6);
    if (magic !== NEWC_MAGIC) throw new Error(`cpio: bad magic '${magic}' at offset ${pos}`);
    const hex = (index: number) => Number.parseInt(text(pos + 6 + index * 8, 8), 16);
    const mode = hex(1);
    const size = hex(6);
    const rdev: [number, number] = [hex(9), hex(10)];
    const nameSize = hex(11);
    const nameAt = pos + HEADER_SIZE;
    const name = text(nameAt, nameSize - 1);
    const dataAt = nameAt + nameSize + pad4(HEADER_SIZE + nameSize);
    if (dataAt + size > archive.length) throw new Error(`cpio: '${name}' runs past the end`);
    const data = archive.slice(dataAt, dataAt + size);
    pos = dataAt + size + pad4(size);
    if (name === TRAILER_NAME) return entries;
    const perm = mode & 0o7777;
    switch (mode & S_IFMT) {
      case S_IFDIR:
        entries.push({ type: "dir", path: name, mode: perm });
        break;
      case S_IFREG:
        entries.push({ type: "file", path: name, data, mode: perm });
        break;
      case S_IFLNK:
        entries.push({ type: "symlink", path: name, target: Buffer.from(data).toString("utf8") });
        break;
      case S_IFCHR:
      case S_IFBLK:
        entries.push({
          type: (mode & S_IFMT) === S_IFCHR ? "char" : "block",
          path: name,
          major: rdev[0],
          minor: rdev[1],
          mode: perm,
        });
        break;
      default:
        throw new Error(`cpio: '${name}' has an unsupported file type (mode ${mode.toString(8)})`);
    }
  }
}
