/**
 * The guest's root disk: an ext4 image built without privileges by e2fsprogs. `mke2fs -d` copies a
 * staging folder into a new sparse image file; `debugfs -w` then makes everything owned by root and
 * adds the device nodes an unprivileged user cannot create in the staging folder.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { UserError } from "../util/errors.js";
import { onPath } from "./apt.js";
import type { CpioEntry } from "./cpio.js";

export const NEEDS_E2FSPROGS =
  "vireo needs mke2fs and debugfs (package e2fsprogs) to build the guest's root disk";

/** The root disk's size: room for the busybox system, the modules and what tests write. */
export const ROOTFS_SIZE = 64 * 1024 * 1024;
export const ROOTFS_LABEL = "vireo-root";

/** A system tool by name: on $PATH, else in /usr/sbin or /sbin (not on a normal user's PATH on Debian). */
export function findTool(name: string, path: string = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(delimiter), "/usr/sbin", "/sbin"]) {
    if (dir !== "" && onPath(name, dir)) return join(dir, name);
  }
  return undefined;
}

/**
 * The applet names of a busybox binary (its sorted, NUL-separated applet_names table, which starts
 * "[\0[[\0"), or undefined when the table is not found.
 */
export function busyboxApplets(binary: Uint8Array): string[] | undefined {
  const data = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength);
  const start = data.indexOf("[\0[[\0", 0, "latin1");
  if (start < 0) return undefined;
  const names: string[] = [];
  let pos = start;
  for (;;) {
    const end = data.indexOf(0, pos);
    if (end <= pos) break;
    const name = data.subarray(pos, end).toString("latin1");
    if (!/^[a-z0-9_.[\]-]+$/.test(name)) break;
    names.push(name);
    pos = end + 1;
  }
  const sorted = names.every((n, i) => i === 0 || (names[i - 1] as string) < n);
  return names.length >= 10 && sorted ? names : undefined;
}

function debugfsQuote(path: string): string {
  if (/["\s]/.test(path)) throw new Error(`rootfs: unsupported character in path '${path}'`);
  return `/${path}`;
}

export interface Ext4Options {
  /** Image size in bytes (a multiple of 1024). */
  size: number;
  label?: string;
  /** Where to stage the files (default: a temp folder next to the image). Removed afterwards. */
  staging?: string;
}

function run(tool: string, args: string[], what: string): string {
  const r = spawnSync(tool, args, { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) {
    const message = `${r.stderr}\n${r.stdout}`.trim().split("\n")[0] ?? "";
    throw new UserError(`${what} failed: ${message}`);
  }
  return r.stderr;
}

/**
 * Writes an ext4 image of `entries` (folders before what they hold) to `image`, replacing it: a
 * sparse file (all-zero 64 KiB blocks are holes), everything owned by root:root with the entries' modes.
 */
export function buildExt4(entries: readonly CpioEntry[], image: string, options: Ext4Options): void {
  const mke2fs = findTool("mke2fs");
  const debugfs = findTool("debugfs");
  if (mke2fs === undefined || debugfs === undefined) throw new UserError(NEEDS_E2FSPROGS);
  const staging = options.staging ?? mkdtempSync(join(dirname(image), ".rootfs-"));
  const commands: string[] = ["sif / uid 0", "sif / gid 0"];
  const raw = `${image}.mke2fs-${process.pid}`;
  try {
    chmodSync(staging, 0o755);
    for (const entry of entries) {
      const path = join(staging, entry.path);
      const at = debugfsQuote(entry.path);
      switch (entry.type) {
        case "dir":
          mkdirSync(path, { recursive: true });
          chmodSync(path, entry.mode ?? 0o755);
          break;
        case "file":
          writeFileSync(path, entry.data);
          chmodSync(path, entry.mode ?? 0o644);
          break;
        case "symlink":
          symlinkSync(entry.target, path);
          break;
        case "char":
        case "block": {
          const kind = entry.type === "char" ? "c" : "b";
          const type = entry.type === "char" ? 0o020000 : 0o060000;
          // debugfs's mknod links a plain name into its current folder.
          const slash = entry.path.lastIndexOf("/");
          const parent = slash < 0 ? "" : entry.path.slice(0, slash);
          commands.push(
            `cd /${parent}`,
            `mknod ${entry.path.slice(slash + 1)} ${kind} ${entry.major} ${entry.minor}`,
            "cd /",
          );
          commands.push(`sif ${at} mode 0${(type | (entry.mode ?? 0o600)).toString(8)}`);
          break;
        }
      }
      commands.push(`sif ${at} uid 0`, `sif ${at} gid 0`);
    }
    rmSync(image, { force: true });
    rmSync(raw, { force: true });
    const label = options.label ?? ROOTFS_LABEL;
    // lazy_itable_init=0: the inode tables are initialised now (as holes in the file), so the guest's
    // kernel does not start zeroing them in the background on first mount.
    run(
      mke2fs,
      [
        ...["-q", "-F", "-t", "ext4", "-L", label],
        ...["-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", staging],
        ...[raw, `${Math.floor(options.size / 1024)}k`],
      ],
      "mke2fs",
    );
    const script = `${image}.debugfs-${process.pid}`;
    writeFileSync(script, `${commands.join("\n")}\n`);
    let stderr: string;
    try {
      stderr = run(debugfs, ["-w", "-f", script, raw], "debugfs");
    } finally {
      rmSync(script, { force: true });
    }
    // debugfs exits 0 even when a command fails; its errors go to stderr after the version banner.
    const errors = stderr.split("\n").filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l));
    if (errors.length > 0) throw new UserError(`debugfs on ${raw}: ${errors[0]}`);
    // mke2fs writes the zeroed inode tables out; copying turns them (and any other zeros) into holes.
    sparseCopy(raw, image);
  } catch (e) {
    rmSync(image, { force: true });
    throw e;
  } finally {
    rmSync(raw, { force: true });
    if (options.staging === undefined) rmSync(staging, { recursive: true, force: true });
  }
}

/** The root disk's /etc/fstab (busybox mount -a reads it; the init mounts what it needs itself). */
export const FSTAB = `# <device> <mount point> <type> <options> <dump> <pass>
/dev/vda / ext4 rw 0 1
proc /proc proc defaults 0 0
sysfs /sys sysfs defaults 0 0
devtmpfs /dev devtmpfs defaults 0 0
tmpfs /tmp tmpfs mode=1777 0 0
`;

/**
 * The root disk's contents: busybox with a link per applet in /bin, /sbin/init (the same init script as
 * the initramfs), a minimal /etc, the kernel modules (`modules`: lib/… entries) and the usual folders.
 */
export function rootfsEntries(
  busybox: Uint8Array,
  init: Uint8Array | string,
  modules: readonly CpioEntry[],
  applets: readonly string[],
): CpioEntry[] {
  const entries: CpioEntry[] = [];
  for (const dir of ["bin", "sbin", "dev", "etc", "mnt", "proc", "root", "run", "sys", "usr"]) {
    entries.push({ type: "dir", path: dir, mode: dir === "root" ? 0o700 : 0o755 });
  }
  for (const dir of ["usr/bin", "usr/sbin", "var"]) entries.push({ type: "dir", path: dir, mode: 0o755 });
  entries.push({ type: "dir", path: "tmp", mode: 0o1777 });
  entries.push({ type: "dir", path: "var/tmp", mode: 0o1777 });
  entries.push({ type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 });
  entries.push({ type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 });
  entries.push({ type: "file", path: "bin/busybox", data: busybox, mode: 0o755 });
  for (const applet of applets) {
    // /sbin/init is ours; an /bin/init or /linuxrc applet link would only confuse.
    if (applet === "busybox" || applet === "init" || applet === "linuxrc" || applet.includes("/")) continue;
    entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
  }
  entries.push({ type: "file", path: "sbin/init", data: init, mode: 0o755 });
  // Where the kernel runs modprobe (request_module: e.g. fs-ext4 when a disk is mounted).
  entries.push({ type: "symlink", path: "sbin/modprobe", target: "../bin/busybox" });
  entries.push({ type: "file", path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" });
  entries.push({ type: "file", path: "etc/group", data: "root:x:0:\n" });
  entries.push({ type: "file", path: "etc/hostname", data: "vireo\n" });
  entries.push({ type: "file", path: "etc/fstab", data: FSTAB });
  entries.push(...modules);
  return entries;
}

/**
 * Copies `src` to `dest` keeping it sparse: all-zero 64 KiB blocks become holes. Writes a temp file
 * next to `dest` and renames it into place.
 */
export function sparseCopy(src: string, dest: string): void {
  const tmp = `${dest}.tmp-${process.pid}`;
  const input = openSync(src, "r");
  let output: number | undefined;
  try {
    output = openSync(tmp, "w", 0o644);
    const size = fstatSync(input).size;
    const block = Buffer.alloc(64 * 1024);
    const zero = Buffer.alloc(block.length);
    for (let offset = 0; offset < size; ) {
      const n = readSync(input, block, 0, block.length, offset);
      if (n <= 0) break;
      const chunk = block.subarray(0, n);
      if (!chunk.equals(zero.subarray(0, n))) writeSync(output, chunk, 0, n, offset);
      offset += n;
    }
    ftruncateSync(output, size);
    closeSync(output);
    output = undefined;
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    closeSync(input);
    if (output !== undefined) closeSync(output);
  }
}
