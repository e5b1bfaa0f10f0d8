/**
 * The few libc calls a KVM virtual machine monitor needs, and fcntl record locks for disk images, bound
 * with koffi (Linux x86-64; the fcntl lock calls also on aarch64).
 *
 * glibc's ioctl is variadic; on the x86-64 SysV ABI a fixed-arity prototype with integer or pointer
 * arguments is call-compatible, so it is declared twice: once taking a pointer (a Buffer the kernel reads or
 * fills in place) and once taking an unsigned long by value. Failures throw a `SysError` that names the call
 * (e.g. "KVM_SET_SREGS") and the errno. Pointers are BigInts (koffi 3), never Numbers.
 */
import { createRequire } from "node:module";

/** koffi's module, loaded lazily so that importing this file never fails on hosts without it. */
type Koffi = typeof import("koffi");

export const O_RDWR = 0x2;
export const O_CLOEXEC = 0x80000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const EFD_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;
export const SIGUSR2 = 12;
export const EINTR = 4;
export const EAGAIN = 11;
export const EACCES = 13;
/** fcntl commands for record locks (the same numbers on x86-64 and aarch64). */
export const F_GETLK = 5;
export const F_SETLK = 6;
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  37: "ENOLCK",
  95: "EOPNOTSUPP",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A failed system call: `call` says which (an ioctl's name, "open /dev/kvm"), `errno` why. */
export class SysError extends Error {
  override name = "SysError";
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${errnoName(errno)}`);
  }
}

interface Bindings {
  koffi: Koffi;
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  ioctlPtr: (fd: number, request: number, arg: Uint8Array | null) => number;
  ioctlInt: (fd: number, request: number, arg: number) => number;
  mmap: (addr: null, length: number, prot: number, flags: number, fd: number, offset: number) => bigint;
  munmap: (addr: bigint, length: number) => number;
  eventfd: (initval: number, flags: number) => number;
  read: (fd: number, buffer: Uint8Array, count: number) => number;
  write: (fd: number, buffer: Uint8Array, count: number) => number;
  fcntlPtr: (fd: number, command: number, arg: Uint8Array) => number;
  pthreadSelf: () => bigint;
  pthreadKill: (thread: bigint, signal: number) => number;
  schedSetaffinity: (pid: number, size: number, mask: Uint8Array) => number;
  schedGetaffinity: (pid: number, size: number, mask: Uint8Array) => number;
  gettid: () => number;
  setpriority: (which: number, who: number, prio: number) => number;
  mlock: (addr: Uint8Array, length: number) => number;
}

let bindings: Bindings | null = null;

/** Loads koffi and libc on first use; throws a clear error when koffi (or its native part) is missing. */
function libc(): Bindings {
  if (bindings !== null) return bindings;
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch (e) {
    throw new Error(`cannot load koffi (needed for KVM): ${(e as Error).message.split("\n")[0]}`);
  }
  const lib = koffi.load("libc.so.6");
  bindings = {
    koffi,
    open: lib.func("open", "int", ["str", "int"]),
    close: lib.func("close", "int", ["int"]),
    ioctlPtr: lib.func("ioctl", "int", ["int", "unsigned long", "void *"]),
    ioctlInt: lib.func("ioctl", "int", ["int", "unsigned long", "unsigned long"]),
    mmap: lib.func("mmap", "void *", ["void *", "size_t", "int", "int", "int", "int64_t"]),
    munmap: lib.func("munmap", "int", ["void *", "size_t"]),
    eventfd: lib.func("eventfd", "int", ["unsigned int", "int"]),
    read: lib.func("read", "long", ["int", "void *", "size_t"]),
    write: lib.func("write", "long", ["int", "void *", "size_t"]),
    // Variadic like ioctl, and call-compatible with this fixed prototype on x86-64 and aarch64 Linux.
    fcntlPtr: lib.func("fcntl", "int", ["int", "int", "void *"]),
    pthreadSelf: lib.func("pthread_self", "void *", []),
    pthreadKill: lib.func("pthread_kill", "int", ["void *", "int"]),
    schedSetaffinity: lib.func("sched_setaffinity", "int", ["int", "size_t", "void *"]),
    schedGetaffinity: lib.func("sched_getaffinity", "int", ["int", "size_t", "void *"]),
    gettid: lib.func("gettid", "int", []),
    setpriority: lib.func("setpriority", "int", ["int", "int", "int"]),
    mlock: lib.func("mlock", "int", ["void *", "size_t"]),
  };
  return bindings;
}

function check(result: number, call: string): number {
  if (result < 0) throw new SysError(call, libc().koffi.errno());
  return result;
}

export function open(path: string, flags: number): number {
  return check(libc().open(path, flags | O_CLOEXEC), `open ${path}`);
}

export function close(fd: number): void {
  libc().close(fd);
}

/** An ioctl whose argument is a struct: the kernel reads and writes `arg` in place. */
export function ioctlPtr(fd: number, request: number, arg: Uint8Array | null, name: string): number {
  return check(libc().ioctlPtr(fd, request, arg), name);
}

/** An ioctl whose argument is passed by value. */
export function ioctlInt(fd: number, request: number, arg: number, name: string): number {
  return check(libc().ioctlInt(fd, request, arg), name);
}

/**
 * The raw ioctl for hot paths (KVM_RUN): returns the result, or -errno, without allocating an Error.
 */
export function ioctlRaw(fd: number, request: number, arg: number): number {
  const b = libc();
  const r = b.ioctlInt(fd, request, arg);
  return r < 0 ? -b.koffi.errno() : r;
}

export function mmap(length: number, prot: number, flags: number, fd: number, what: string): bigint {
  const address = libc().mmap(null, length, prot, flags, fd, 0);
  if (address === MAP_FAILED || address === 0n) throw new SysError(`mmap ${what}`, libc().koffi.errno());
  return address;
}

export function munmap(address: bigint, length: number): void {
  libc().munmap(address, length);
}

export function eventfd(flags: number): number {
  return check(libc().eventfd(0, flags | EFD_CLOEXEC), "eventfd");
}

/** struct flock on 64-bit Linux: l_type, l_whence (shorts), l_start, l_len (off_t), l_pid, padding. */
export const FLOCK_SIZE = 32;

export interface Flock {
  type: number;
  start: number;
  /** 0: to the end of the file, however long it grows. */
  length: number;
  /** Who holds a lock F_GETLK/F_OFD_GETLK reports: the owner's pid for classic locks, -1 for OFD locks. */
  pid: number;
}

/**
 * fcntl with a struct flock (F_SETLK, F_GETLK, F_OFD_SETLK, F_OFD_GETLK) over a range from the start of
 * the file: returns the struct as the kernel left it, or the errno when the call failed (EAGAIN/EACCES:
 * a conflicting lock is held).
 */
export function fcntlLock(fd: number, command: number, lock: Omit<Flock, "pid">): Flock | number {
  const b = libc();
  const buffer = new Uint8Array(FLOCK_SIZE);
  const view = new DataView(buffer.buffer);
  view.setInt16(0, lock.type, true);
  view.setInt16(2, 0, true); // SEEK_SET
  view.setBigInt64(8, BigInt(lock.start), true);
  view.setBigInt64(16, BigInt(lock.length), true);
  if (b.fcntlPtr(fd, command, buffer) < 0) return b.koffi.errno();
  return {
    type: view.getInt16(0, true),
    start: Number(view.getBigInt64(8, true)),
    length: Number(view.getBigInt64(16, true)),
    pid: view.getInt32(24, true),
  };
}

/** The 8-byte counter buffer of eventfdRead/eventfdWrite (main thread and workers each have their own). */
const counter = new Uint8Array(8);
const counterView = new DataView(counter.buffer);

/**
 * Reads and so resets a non-blocking eventfd's counter: the number of signals since the last read, or 0
 * when there were none (EAGAIN). Other failures throw.
 */
export function eventfdRead(fd: number): number {
  const b = libc();
  const r = b.read(fd, counter, 8);
  if (r < 0) {
    const errno = b.koffi.errno();
    if (errno === EAGAIN) return 0;
    throw new SysError("read eventfd", errno);
  }
  return Number(counterView.getBigUint64(0, true));
}

/** Adds `value` to an eventfd's counter (wakes whoever polls it; an irqfd raises its interrupt). */
export function eventfdWrite(fd: number, value = 1): void {
  const b = libc();
  counterView.setBigUint64(0, BigInt(value), true);
  if (b.write(fd, counter, 8) < 0) throw new SysError("write eventfd", b.koffi.errno());
}

/** A libuv poll watch on a descriptor (koffi.node.poll); `close` stops it for good. */
export interface FdWatch {
  close(): void;
}

/**
 * Calls `onReadable` on the event loop whenever `fd` is readable (level-triggered: it comes back while
 * the descriptor stays readable). koffi's poll is not in its typings' shape: the callback receives
 * (status, events), status < 0 on an error.
 */
export function watchReadable(fd: number, onReadable: (status: number) => void): FdWatch {
  const handle = libc().koffi.node.poll(fd, { readable: true }, onReadable as never);
  let open = true;
  return {
    close() {
      if (!open) return;
      open = false;
      handle.close();
    },
  };
}

/**
 * An ArrayBuffer over `length` bytes of native memory at `address`, without copying. Not a
 * SharedArrayBuffer: each thread makes its own view from the address. At most 4 GiB (koffi aborts the
 * process beyond that), and it must not be touched after the memory is unmapped.
 */
export function view(address: bigint, length: number): ArrayBuffer {
  if (length > 2 ** 32) throw new RangeError(`view of ${length} bytes: at most 4 GiB`);
  return libc().koffi.view(address, length);
}

/** The calling thread's pthread_t, for `signalThread`. */
export function threadSelf(): bigint {
  return libc().pthreadSelf();
}

export function signalThread(thread: bigint, signal: number): void {
  const r = libc().pthreadKill(thread, signal);
  if (r !== 0) throw new SysError("pthread_kill", r);
}

/** Bytes of a cpu_set_t for sched_*affinity: 1024 CPUs, glibc's CPU_SETSIZE. */
const CPU_SET_BYTES = 128;

/** The host CPUs a thread of this process (by kernel id; 0: the calling one) may run on. */
export function threadAffinity(thread = 0): number[] {
  const b = libc();
  const mask = new Uint8Array(CPU_SET_BYTES);
  if (b.schedGetaffinity(thread, CPU_SET_BYTES, mask) !== 0)
    throw new SysError("sched_getaffinity", b.koffi.errno());
  const cpus: number[] = [];
  for (let cpu = 0; cpu < CPU_SET_BYTES * 8; cpu++)
    if ((mask[cpu >> 3] as number) & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

/**
 * Confines a thread of this process to `cpus`: `thread` is its kernel id (threadId()), 0 the calling
 * thread (never the whole process: Linux applies sched_setaffinity to one thread).
 */
export function setThreadAffinity(cpus: readonly number[], thread = 0): void {
  const b = libc();
  const mask = new Uint8Array(CPU_SET_BYTES);
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= CPU_SET_BYTES * 8)
      throw new RangeError(`no host CPU ${cpu}`);
    mask[cpu >> 3] = (mask[cpu >> 3] as number) | (1 << (cpu & 7));
  }
  if (b.schedSetaffinity(thread, CPU_SET_BYTES, mask) !== 0)
    throw new SysError("sched_setaffinity", b.koffi.errno());
}

const PRIO_PROCESS = 0;

/**
 * Sets one thread's nice level (Linux applies PRIO_PROCESS with a thread id to that thread only).
 * Lowering it below what the thread has needs CAP_SYS_NICE: that fails with EACCES.
 */
export function setThreadNice(thread: number, nice: number): void {
  const b = libc();
  if (b.setpriority(PRIO_PROCESS, thread, nice) !== 0) throw new SysError("setpriority", b.koffi.errno());
}

/**
 * Locks the pages under `bytes` into RAM (mlock): committed now and never swapped out. Throws the
 * kernel's error, e.g. ENOMEM past RLIMIT_MEMLOCK without CAP_IPC_LOCK, or EPERM.
 */
export function lockMemory(bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  if (libc().mlock(bytes, bytes.length) !== 0) throw new SysError("mlock", libc().koffi.errno());
}

/** The calling thread's kernel id (what /proc/PID/task/TID names). */
export function threadId(): number {
  return libc().gettid();
}

/** Whether koffi and libc can be loaded here (false on non-Linux hosts or without koffi's native part). */
export function available(): boolean {
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}
