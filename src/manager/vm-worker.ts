/**
 * The worker-thread side of a WorkerVm: builds the VM with createVm on a host the caller supplies (the
 * Node host lives in cli/, which this layer may not import, hence the parameter), runs it, and answers
 * the parent's messages. Anything that throws outside the VM's own run (a device callback, a timer)
 * is deliberately not caught here: it ends this thread, and the parent marks the VM failed.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ByteSink } from "../devices/byte-sink.js";
import { UserError } from "../util/errors.js";
import { createVm } from "../vm/create.js";
import type { VmHost } from "../vm/host.js";
import type { Vm } from "../vm/vm.js";
import { balloonRequest } from "./balloon.js";
import type { FromWorker, ToWorker, WorkerFault, WorkerInit } from "./worker-protocol.js";

/** Console bytes are posted in chunks of at most this size, or at the next turn of the event loop. */
const CHUNK_BYTES = 4096;
/** While the VM runs, the parent gets a stats snapshot this often (its stats() answers from the last). */
const STATS_INTERVAL_MS = 500;
const FAULT_AFTER_BYTES = 64;

export type WorkerHostFactory = (options: { console: ByteSink; warn: (message: string) => void }) => VmHost;

/** Whether this thread was started as a VM worker (the entry module checks before it runs). */
export function isVmWorker(): boolean {
  return (workerData as Partial<WorkerInit> | null)?.vireoVmWorker === true;
}

/** Streams console output to the parent; the ring there never fills, so this sink never does either. */
class ChunkedConsole implements ByteSink {
  private readonly buffer = new Uint8Array(CHUNK_BYTES);
  private length = 0;
  private queued = false;
  private written = 0;

  constructor(
    private readonly post: (message: FromWorker) => void,
    private readonly fault: WorkerFault | null,
  ) {}

  write(byte: number): void {
    this.buffer[this.length++] = byte;
    if (this.length === CHUNK_BYTES) this.flush();
    else if (!this.queued) {
      this.queued = true;
      setImmediate(() => this.flush());
    }
    if (++this.written === FAULT_AFTER_BYTES && this.fault !== null) this.trip(this.fault);
  }

  flush(): void {
    this.queued = false;
    if (this.length === 0) return;
    this.post({ t: "console", bytes: this.buffer.slice(0, this.length) });
    this.length = 0;
  }

  private trip(fault: WorkerFault): void {
    const what = `test hook: the console device threw after ${FAULT_AFTER_BYTES} bytes`;
    if (fault === "console") throw new Error(what);
    if (fault === "uncaught") {
      setImmediate(() => {
        throw new Error(`${what} (outside the run loop)`);
      });
      return;
    }
    this.flush();
    process.exit(3);
  }
}

export async function runVmWorker(makeHost: WorkerHostFactory): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("runVmWorker: not in a worker thread");
  const init = workerData as WorkerInit;
  const post = (message: FromWorker) => port.postMessage(message);
  const console = new ChunkedConsole(post, init.fault);
  let vm: Vm;
  try {
    vm = await createVm(init.spec, makeHost({ console, warn: (message) => post({ t: "log", message }) }));
  } catch (e) {
    post({
      t: "build-failed",
      message: e instanceof Error ? e.message : String(e),
      user: e instanceof UserError,
    });
    port.close();
    return;
  }
  let timer: ReturnType<typeof setInterval> | undefined;
  vm.on("state", (state) => {
    console.flush();
    if (state.name === "running" && timer === undefined) {
      timer = setInterval(() => post({ t: "stats", stats: vm.stats(), id: null }), STATS_INTERVAL_MS);
    }
    if (state.name === "stopped" || state.name === "failed") clearInterval(timer);
    post({ t: "state", state, stats: vm.stats() });
  });
  port.on("message", (m: ToWorker) => {
    try {
      switch (m.t) {
        case "start":
          return vm.start();
        case "pause":
          return vm.pause();
        case "resume":
          return vm.resume();
        case "kill":
          return vm.kill();
        case "switch":
          vm.switchConsole();
          return;
        case "input":
          return vm.input(m.bytes);
        case "resize":
          return vm.resizeConsole(m.cols, m.rows);
        case "stats":
          console.flush();
          return post({ t: "stats", stats: vm.stats(), id: m.id });
        case "balloon":
          return post({ t: "balloon", id: m.id, figures: balloonRequest(vm.devices(), m.targetBytes) });
      }
    } catch (e) {
      // The parent checks states before it sends; a refusal here only means the run ended meanwhile,
      // and the parent hears of that through the state message already on its way.
      if (!(e instanceof UserError)) throw e;
    }
  });
  const devices = vm.devices().map((d) => ({ name: d.name, kind: d.kind }));
  post({ t: "ready", devices, hasHvc: devices.some((d) => d.kind === "virtio-console"), stats: vm.stats() });
}
