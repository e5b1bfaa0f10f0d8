/**
 * VM worker threads, started ahead of need. A fresh worker spends most of a VM's start-up before the
 * VM is even asked for: a V8 isolate, then loading some hundred modules in cold code. A pool keeps
 * `size` workers that have done that and wait for a spec; each is used for one VM only (a VM's thread
 * ends with it) and replaced in the background. Every worker, pooled or not, gets the daemon's
 * compiled interpreter, so none generates or compiles its own.
 */
import { Worker } from "node:worker_threads";
import { compiledInterpreter } from "../cpu/riscv/interpreter/shared.js";
import type { WorkerInit } from "./worker-protocol.js";

export { DEFAULT_WARM_WORKERS } from "./defaults.js";

/** Starts a VM worker from `entry` (src/cli/vm-worker.ts); it waits for its "build" message. */
export function startVmWorker(entry: URL): Worker {
  const init: WorkerInit = { vireoVmWorker: true, interpreter: compiledInterpreter() };
  return new Worker(entry, { workerData: init });
}

export class WorkerPool {
  private readonly idle = new Set<Worker>();
  private closed = false;
  private refillQueued = false;

  constructor(
    private readonly entry: URL,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`pool size ${size}`);
    this.refill();
  }

  /** A worker for one VM: a warm one when the pool has one, else one started now. */
  take(): Worker {
    const warm = this.idle.values().next();
    let worker: Worker;
    if (warm.done) worker = startVmWorker(this.entry);
    else {
      worker = warm.value;
      this.idle.delete(worker);
      worker.off("error", ignore);
      worker.ref();
    }
    this.queueRefill();
    return worker;
  }

  /** Idle warm workers now (tests, metrics). */
  get warm(): number {
    return this.idle.size;
  }

  /** Ends the idle workers and starts no more. */
  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.idle];
    this.idle.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  /** After the current turn, so that the worker just taken builds its VM first. */
  private queueRefill(): void {
    if (this.refillQueued || this.size === 0) return;
    this.refillQueued = true;
    setImmediate(() => {
      this.refillQueued = false;
      this.refill();
    });
  }

  private refill(): void {
    while (!this.closed && this.idle.size < this.size) {
      const worker = startVmWorker(this.entry);
      // A waiting worker neither keeps the daemon alive nor, should it die, takes anything with it:
      // it leaves the pool, which refills at the next take (not at once: a worker that cannot start
      // would otherwise be restarted for ever).
      worker.unref();
      worker.on("error", ignore);
      worker.once("exit", () => this.idle.delete(worker));
      this.idle.add(worker);
    }
  }
}

function ignore(): void {}
