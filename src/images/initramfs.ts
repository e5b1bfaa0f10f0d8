/**
 * What the default guests of every architecture share: our /init (guest/init, one busybox sh script for
 * riscv64 and x86_64) and the initramfs layout around it (busybox with links, device nodes, /etc files,
 * kernel module entries), packed by our own newc writer and gzip'd.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { UserError } from "../util/errors.js";
import { buildCpio, type CpioEntry } from "./cpio.js";

/** Applets linked in the initramfs: what /init and a first shell need before `busybox --install`. */
export const BUSYBOX_LINKS = [
  "sh",
  "ash",
  "cat",
  "chmod",
  "cttyhack",
  "date",
  "dmesg",
  "echo",
  "grep",
  "halt",
  "head",
  "hostname",
  "ln",
  "ls",
  "mkdir",
  "mount",
  "poweroff",
  "reboot",
  "rm",
  "setsid",
  "sleep",
  "sort",
  "tr",
  "umount",
  "uname",
];

/** Where the init script's source lives (dist/src/images/ → guest/init). */
export function initScriptPath(): string {
  return fileURLToPath(new URL("../../../guest/init", import.meta.url));
}

/** The key of the init script's fingerprint in a manifest's inputs (a change rebuilds the initramfs). */
export const INIT_INPUT = "guest/init";

export function readInitScript(): Uint8Array {
  const path = initScriptPath();
  try {
    return readFileSync(path);
  } catch {
    throw new UserError(`the guest init script ${path} is missing (is the vireo install complete?)`);
  }
}

/** The initramfs contents, in archive order (directories first); `modules` are lib/… entries. */
export function initramfsEntries(
  busybox: Uint8Array,
  init: Uint8Array | string,
  modules: readonly CpioEntry[] = [],
): CpioEntry[] {
  const entries: CpioEntry[] = [];
  for (const dir of ["bin", "sbin", "dev", "etc", "proc", "sys", "root", "usr", "usr/bin", "usr/sbin"]) {
    entries.push({ type: "dir", path: dir, mode: dir === "root" ? 0o700 : 0o755 });
  }
  entries.push({ type: "dir", path: "tmp", mode: 0o1777 });
  entries.push({ type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 });
  entries.push({ type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 });
  entries.push({ type: "file", path: "bin/busybox", data: busybox, mode: 0o755 });
  for (const applet of BUSYBOX_LINKS)
    entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
  // Where the kernel runs modprobe (request_module: e.g. fs-ext4 when a disk is mounted).
  entries.push({ type: "symlink", path: "sbin/modprobe", target: "../bin/busybox" });
  entries.push({ type: "file", path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" });
  entries.push({ type: "file", path: "etc/group", data: "root:x:0:\n" });
  entries.push({ type: "file", path: "etc/hostname", data: "vireo\n" });
  entries.push({ type: "file", path: "init", data: init, mode: 0o755 });
  entries.push(...modules);
  return entries;
}

/** gzip of the newc archive (level 6: -9 takes 9× as long on the modules for 0.4 % less). */
export function buildInitramfs(
  busybox: Uint8Array,
  init: Uint8Array | string,
  modules: readonly CpioEntry[] = [],
): Uint8Array {
  return gzipSync(buildCpio(initramfsEntries(busybox, init, modules)), { level: 6 });
}
