/**
 * Runs one target's cases in a worker thread, so the main thread can notice a hang (a case that never
 * returns) and end it. Before each case the worker stores its index in shared memory; crashes are posted.
 */
import { parentPort, workerData } from "node:worker_threads";
import fc from "fast-check";
import { caseSeed, useFuzzSizes } from "./seeds.js";
import { targets } from "./targets/index.js";

export interface WorkerJob {
  target: string;
  seed: number;
  /** First case index. */
  from: number;
  /** Last case index + 1 (cases are counted, not timed, when finite). */
  to: number;
  /** Wall-clock end (ms since the epoch) for --seconds runs. */
  deadline: number;
  /** Int32Array view: [0] = index of the case being run, [1] = 1 once the worker has finished. */
  progress: SharedArrayBuffer;
}

export interface CrashMessage {
  kind: "crash";
  index: number;
  error: string;
}

export interface DoneMessage {
  kind: "done";
  /** One past the last case that ran. */
  next: number;
}

export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const frames = (e.stack ?? "").split("\n").filter((l) => l.trimStart().startsWith("at "));
    return `${e.name}: ${e.message}${frames.length ? `\n      ${frames.slice(0, 4).join("\n      ").trim()}` : ""}`;
  }
  return `non-Error thrown: ${String(e)}`;
}

async function main(job: WorkerJob): Promise<void> {
  useFuzzSizes();
  const target = targets.find((t) => t.name === job.target);
  if (target === undefined) throw new Error(`no target ${job.target}`);
  const progress = new Int32Array(job.progress);
  let i = job.from;
  for (; i < job.to; i++) {
    // The clock is read every 64 cases: cheap, and a slow case still ends the run on time.
    if ((i & 63) === 0 && Date.now() >= job.deadline) break;
    Atomics.store(progress, 0, i);
    const [input] = fc.sample(target.input, { seed: caseSeed(job.seed, i), numRuns: 1 });
    try {
      await target.run(input);
    } catch (e) {
      parentPort?.postMessage({ kind: "crash", index: i, error: describeError(e) } satisfies CrashMessage);
    }
  }
  Atomics.store(progress, 1, 1);
  parentPort?.postMessage({ kind: "done", next: i } satisfies DoneMessage);
}

if (parentPort !== null && workerData !== null) await main(workerData as WorkerJob);
