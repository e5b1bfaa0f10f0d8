/**
 * Disk image locks, as QEMU takes them: a writer holds an exclusive lock on the whole file, a read-only
 * user a shared one, so two VMs never write one image (and nobody reads an image another VM is
 * writing). They are open-file-description (OFD) fcntl locks on the descriptor the I/O goes through:
 * unlike classic POSIX locks, closing another descriptor of the same file in this process does not drop
 * them, and they go away by themselves when the descriptor is closed or the process dies. Linux only,
 * through koffi (libc.ts). Node only.
 */
import { readdirSync, readFileSync } from "node:fs";
import {
  available,
  EACCES,
  EAGAIN,
  F_OFD_GETLK,
  F_OFD_SETLK,
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  fcntlLock,
} from "../hypervisor/libc.js";

export type LockMode = "shared" | "exclusive";

export type LockResult =
  | { kind: "locked" }
  /** Someone holds a conflicting lock; `holder` is their pid when it can be found out. */
  | { kind: "conflict"; holder: number | null }
  /** Locks cannot be taken here (no koffi, not Linux, a filesystem without fcntl locks): `why`. */
  | { kind: "unsupported"; why: string };

/** The file a descriptor is open on, as stat gives it (Linux dev_t encoding). */
export interface FileId {
  dev: number;
  ino: number;
}

const WHOLE_FILE = { start: 0, length: 0 };

function lockType(mode: LockMode): number {
  return mode === "exclusive" ? F_WRLCK : F_RDLCK;
}

/**
 * Takes the lock on `fd` without waiting. The descriptor must be open for writing for an exclusive lock
 * and for reading for a shared one.
 */
export function lockImage(fd: number, mode: LockMode, file: FileId): LockResult {
  if (process.platform !== "linux" || !available()) {
    return { kind: "unsupported", why: "fcntl locks need Linux and koffi" };
  }
  const r = fcntlLock(fd, F_OFD_SETLK, { type: lockType(mode), ...WHOLE_FILE });
  if (typeof r !== "number") return { kind: "locked" };
  if (r === EAGAIN || r === EACCES) return { kind: "conflict", holder: lockHolder(fd, mode, file) };
  // EINVAL: a kernel before 3.15 (no OFD locks); ENOLCK, EOPNOTSUPP: a filesystem without them.
  return { kind: "unsupported", why: `fcntl F_OFD_SETLK failed with errno ${r}` };
}

/** Drops this descriptor's lock (a live migration hands the image to the target); idempotent. */
export function unlockImage(fd: number): void {
  if (process.platform !== "linux" || !available()) return;
  fcntlLock(fd, F_OFD_SETLK, { type: F_UNLCK, ...WHOLE_FILE });
}

/**
 * Who holds a lock that keeps `mode` from being taken on `fd`'s file: null when nobody does (any more),
 * or when the holder cannot be named. The kernel names the owner of a classic POSIX lock (l_pid); an OFD
 * lock belongs to an open file, not a process (l_pid = -1), so the processes whose descriptors carry
 * a lock on this file are looked for in /proc/PID/fdinfo (as lslocks does).
 */
export function lockHolder(fd: number, mode: LockMode, file: FileId): number | null {
  const r = fcntlLock(fd, F_OFD_GETLK, { type: lockType(mode), ...WHOLE_FILE });
  if (typeof r === "number" || r.type === F_UNLCK) return null;
  if (r.pid > 0) return r.pid;
  return findOfdHolder(file, mode);
}

/** Whether anyone holds a lock that would keep `mode` from being taken on `fd`'s file. */
export function isLocked(fd: number, mode: LockMode): boolean {
  const r = fcntlLock(fd, F_OFD_GETLK, { type: lockType(mode), ...WHOLE_FILE });
  return typeof r !== "number" && r.type !== F_UNLCK;
}

/** Linux's userspace major/minor of a dev_t (the encoding /proc/locks and fdinfo print). */
export function majorMinor(dev: number): [number, number] {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xffff_f000n);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffff_ff00n);
  return [Number(major), Number(minor)];
}

/**
 * The first process (lowest pid) with a descriptor that holds an OFD lock on `file` that conflicts with
 * `mode` (any lock for an exclusive request, a write lock for a shared one). Processes whose fdinfo
 * cannot be read (other users') are skipped.
 */
export function findOfdHolder(file: FileId, mode: LockMode): number | null {
  const [major, minor] = majorMinor(file.dev);
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  const where = `${hex(major)}:${hex(minor)}:${file.ino}`;
  // "lock:\t1: OFDLCK ADVISORY  WRITE -1 fd:01:1234 0 EOF"
  const line = new RegExp(`^lock:\\s+\\S+\\s+OFDLCK\\s+\\S+\\s+(READ|WRITE)\\s+\\S+\\s+${where}\\s`, "m");
  const pids = readdirSafe("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .sort((a, b) => a - b);
  for (const pid of pids) {
    for (const fd of readdirSafe(`/proc/${pid}/fdinfo`)) {
      let info: string;
      try {
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
      } catch {
        continue;
      }
      const match = line.exec(info);
      if (match !== null && (mode === "exclusive" || match[1] === "WRITE")) return pid;
    }
  }
  return null;
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
