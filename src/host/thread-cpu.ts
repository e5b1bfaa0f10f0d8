/**
 * CPU time of the calling thread, for charging a shared pool's turns by the CPU a VM really got rather
 * than by wall time (on a busy host a thread loses the CPU in the middle of a turn, and the VM that
 * happened to be running would pay for it). Node 20 has no per-thread CPU clock, so it reads the
 * thread's /proc/thread-self/schedstat (first field: nanoseconds on a CPU), through one descriptor per
 * thread, ~10 µs a read.
 */
import { openSync, readFileSync, readSync } from "node:fs";

const buffer = new Uint8Array(128);
const decoder = new TextDecoder();

/** A clock of this thread's CPU time in milliseconds, or null where the kernel does not offer one. */
export function threadCpuClock(): (() => number) | null {
  let fd: number;
  try {
    fd = openSync("/proc/thread-self/schedstat", "r");
  } catch {
    return null;
  }
  const read = (): number => {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    const text = decoder.decode(buffer.subarray(0, n));
    return Number(text.slice(0, text.indexOf(" "))) / 1e6;
  };
  // A kernel without schedstats gives a file of zeros: no clock.
  const first = read();
  if (!Number.isFinite(first) || first === 0) return null;
  return read;
}

/** CPU time (ms) a thread of this process has used so far, by kernel id; null once it has exited. */
export function threadCpuMs(tid: number): number | null {
  try {
    const text = readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8");
    return Number(text.slice(0, text.indexOf(" "))) / 1e6;
  } catch {
    return null;
  }
}
