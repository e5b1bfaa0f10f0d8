/**
 * Keeps this process's own threads off the CPUs given to dedicated VMs: the daemon's main thread, libuv's
 * pool and V8's helpers would otherwise run wherever the kernel likes, dedicated CPUs included, and take
 * time from the VM that was promised the CPU. Threads created later inherit their creator's affinity,
 * so sweeping the threads that exist whenever the dedicated set changes is enough.
 */
import { readdirSync } from "node:fs";
import { setThreadAffinity, threadAffinity } from "../hypervisor/libc.js";

/**
 * Moves each thread of this process onto `others`, except those in `keep` (VM threads placed by the
 * scheduler) and those already confined within `dedicated` (a dedicated VM's thread not yet known by
 * id). Returns how many moved and what failed (a thread that exited meanwhile is not a failure).
 */
export function confineOtherThreads(
  others: readonly number[],
  dedicated: ReadonlySet<number>,
  keep: ReadonlySet<number>,
): { moved: number; errors: string[] } {
  const errors: string[] = [];
  let moved = 0;
  if (others.length === 0) return { moved, errors };
  let tids: number[];
  try {
    tids = readdirSync("/proc/self/task").map(Number);
  } catch (e) {
    return { moved, errors: [`/proc/self/task: ${(e as Error).message}`] };
  }
  const wanted = others.join(",");
  for (const tid of tids) {
    if (keep.has(tid)) continue;
    try {
      const now = threadAffinity(tid);
      if (dedicated.size > 0 && now.every((c) => dedicated.has(c))) continue;
      if (now.join(",") === wanted) continue;
      setThreadAffinity(others, tid);
      moved++;
    } catch (e) {
      if (!/ESRCH/.test((e as Error).message)) errors.push(`thread ${tid}: ${(e as Error).message}`);
    }
  }
  return { moved, errors };
}
