/**
 * The worker-thread side of a WorkerVm: builds the VM with createVm on a host the caller supplies (the
 * Node host lives in cli/, which this layer may not import, hence the parameter), runs it, and answers
 * the parent's messages. Anything that throws outside the VM's own run (a device callback, a timer)
 * is deliberately not caught here: it ends this thread, and the parent marks the VM failed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { adoptCompiledInterpreter } from "../cpu/riscv/interpreter/shared.js";
import type { ByteSink } from "../devices/byte-sink.js";
import { InterpreterEngine, type TurnGate } from "../engines/interpreter.js";
import { threadCpuClock } from "../host/thread-cpu.js";
import { available as libcAvailable, setThreadAffinity, threadId } from "../hypervisor/libc.js";
import { VirtBoard } from "../machine/riscv-virt/board.js";
import type { FrameLink } from "../net/frame-link.js";
import type { Frame, StartHeader } from "../snapshot/migration-wire.js";
import { UserError } from "../util/errors.js";
import { createVm } from "../vm/create.js";
import type { VmHost } from "../vm/host.js";
import { openSnapshot } from "../vm/restore.js";
import type { VmSpec } from "../vm/spec.js";
import type { MigrationResult, Vm, VmStats } from "../vm/vm.js";
import { balloonPoll, balloonRequest } from "./balloon.js";
import { connectMigration } from "./migration-socket.js";
import { portLink, withLinkDrops } from "./nic-links.js";
import type { Placement } from "./scheduler/vm-scheduler.js";
import type {
  FromWorker,
  ToWorker,
  WorkerFault,
  WorkerInit,
  WorkerLinks,
  WorkerRestore,
} from "./worker-protocol.js";

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

/**
 * `host` with the daemon's links as the backends of the `switch:` NICs (claimed in NIC order, which is
 * the order createVm asks for backends); `links` gets each claimed link by NIC index.
 */
function linkedHost(host: VmHost, given: WorkerLinks, links: Map<number, FrameLink>): VmHost {
  const unclaimed = [...given];
  return {
    ...host,
    netBackend(backend: string) {
      const i = unclaimed.findIndex((l) => l.backend === backend);
      if (i < 0) return host.netBackend(backend);
      const [claimed] = unclaimed.splice(i, 1);
      const { nic, port } = claimed as WorkerLinks[number];
      const link = portLink(port);
      links.set(nic, link);
      return link;
    },
  };
}

/** The engine's side of the daemon's CPU pool, across the thread boundary: turns asked and granted by message. */
class RemoteTurns implements TurnGate {
  private granted: ((sliceMs: number) => void) | null = null;
  /** Numbers each request, so that a grant that crossed a cancel is not taken for the next request's. */
  private seq = 0;
  readonly cpuMs?: () => number;

  constructor(private readonly post: (message: FromWorker) => void) {
    const clock = threadCpuClock();
    if (clock !== null) this.cpuMs = clock;
  }

  turn(usedMs?: number): Promise<number> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.granted = resolve;
      this.post({ t: "turn", usedMs: usedMs ?? null, seq });
    });
  }

  end(usedMs: number): void {
    this.post({ t: "turn-end", usedMs });
  }

  cancel(): void {
    this.granted = null;
    this.post({ t: "turn-cancel", seq: this.seq });
  }

  grant(sliceMs: number, seq: number): void {
    if (seq !== this.seq) return;
    const granted = this.granted;
    this.granted = null;
    granted?.(sliceMs);
  }
}

/** Confines this thread to `cpus`; where the host cannot, says so and runs unconfined. */
function pin(cpus: readonly number[], post: (message: FromWorker) => void): void {
  if (!libcAvailable()) {
    post({ t: "log", message: "cannot set CPU affinity here (no libc binding)" });
    return;
  }
  try {
    setThreadAffinity(cpus);
  } catch (e) {
    post({
      t: "log",
      message: `cannot confine the VM's thread to CPUs ${cpus.join(",")}: ${(e as Error).message}`,
    });
  }
}

/** Instructions the warm-up runs: enough for the engine's slice loop to have run a few times. */
const WARM_UP_INSTRUCTIONS = 10_000;

/**
 * Runs a throwaway 1 MiB board (`j .`) for a few thousand instructions, so that what building and
 * starting a VM executes (board and CPU set-up, the engine's loop, the interpreter's first calls) has
 * been compiled by V8 before a VM is asked for: measured, it halves a pooled worker's build and start.
 */
async function warmUp(): Promise<void> {
  const board = new VirtBoard({ memory: 1 << 20, cpus: 1, console: { write() {} } });
  board.loadRaw(new Uint8Array([0x6f, 0x00, 0x00, 0x00]), "warm-up");
  await new InterpreterEngine(board, { maxInstructions: WARM_UP_INSTRUCTIONS }).run();
}

export async function runVmWorker(makeHost: WorkerHostFactory): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("runVmWorker: not in a worker thread");
  adoptCompiledInterpreter((workerData as WorkerInit).interpreter);
  // Done now, while a pool worker waits for its VM, instead of after the VM was asked for.
  await import("../vm/riscv.js");
  await warmUp();
  const post = (message: FromWorker) => port.postMessage(message);
  let vm: Vm | null = null;
  let output: ChunkedConsole | null = null;
  const links = new Map<number, FrameLink>();
  const stats = (): VmStats => withLinkDrops((vm as Vm).stats(), links, "txLinkDropped");

  let turns: RemoteTurns | null = null;
  /** Frames of an incoming migration the build has not taken yet, and the build waiting for one. */
  const inbox: { frame: Frame | null; error: string | null }[] = [];
  let inboxWaiter: (() => void) | null = null;
  const nextFrame = async (): Promise<Frame | null> => {
    while (inbox.length === 0) await new Promise<void>((resolve) => (inboxWaiter = resolve));
    const { frame, error } = inbox.shift() as (typeof inbox)[number];
    if (error !== null) throw new UserError(error);
    return frame;
  };

  const build = async (
    spec: VmSpec,
    fault: WorkerFault | null,
    given: WorkerLinks,
    placement: Placement | null,
    restore: WorkerRestore | undefined,
    incoming: { start: StartHeader } | undefined,
  ): Promise<void> => {
    const console = new ChunkedConsole(post, fault);
    output = console;
    if (placement !== null) pin(placement.cpus, post);
    if (placement?.mode === "shared") turns = new RemoteTurns(post);
    let built: Vm;
    try {
      const host = makeHost({ console, warn: (message) => post({ t: "log", message }) });
      const linked = linkedHost(host, given, links);
      const vmHost = turns === null ? linked : { ...linked, cpuTurns: turns };
      if (incoming !== undefined) {
        built = await createVm(spec, vmHost, { incoming: { start: incoming.start, next: nextFrame } });
      } else if (restore === undefined) built = await createVm(spec, vmHost);
      else {
        // The spec is the daemon's (a clone's new MACs and CID in it); the snapshot gives the rest.
        const { source } = await openSnapshot(restore.path, vmHost);
        built = await createVm(spec, vmHost, { restore: { ...source, clone: restore.clone } });
      }
    } catch (e) {
      for (const l of given) l.port.close();
      post({
        t: "build-failed",
        message: e instanceof Error ? e.message : String(e),
        user: e instanceof UserError,
      });
      port.close();
      return;
    }
    vm = built;
    let timer: ReturnType<typeof setInterval> | undefined;
    built.on("state", (state) => {
      console.flush();
      if (state.name === "running" && timer === undefined) {
        timer = setInterval(() => post({ t: "stats", stats: stats(), id: null }), STATS_INTERVAL_MS);
      }
      if (state.name === "stopped" || state.name === "failed") clearInterval(timer);
      post({ t: "state", state, stats: stats() });
    });
    const devices = built.devices().map((d) => ({ name: d.name, kind: d.kind }));
    post({
      t: "ready",
      thread: libcAvailable() ? threadId() : null,
      devices,
      hasHvc: devices.some((d) => d.kind === "virtio-console"),
      stats: stats(),
    });
  };

  port.on("message", (m: ToWorker) => {
    if (m.t === "build") {
      void build(m.spec, m.fault, m.links, m.placement, m.restore, m.incoming);
      return;
    }
    if (m.t === "migrate-frame") {
      inbox.push({ frame: m.frame, error: m.error });
      const wake = inboxWaiter;
      inboxWaiter = null;
      wake?.();
      return;
    }
    if (m.t === "grant") return turns?.grant(m.sliceMs, m.seq);
    if (m.t === "affinity") return pin(m.cpus, post);
    // The parent sends nothing else before "ready".
    if (vm === null) return;
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
        case "poweroff":
          vm.requestPowerOff();
          return;
        case "switch":
          vm.switchConsole();
          return;
        case "input":
          return vm.input(m.bytes);
        case "resize":
          return vm.resizeConsole(m.cols, m.rows);
        case "stats":
          output?.flush();
          return post({ t: "stats", stats: stats(), id: m.id });
        case "balloon":
          return post({ t: "balloon", id: m.id, figures: balloonRequest(vm.devices(), m.targetBytes) });
        case "balloon-poll":
          return post({ t: "balloon-poll", id: m.id, poll: balloonPoll(vm.devices()) });
        case "snapshot": {
          const id = m.id;
          const save = vm.saveSnapshot?.bind(vm);
          if (save === undefined) {
            const error = { message: "this VM cannot be snapshotted", user: true };
            return post({ t: "snapshot", id, result: null, error });
          }
          output?.flush();
          save(m.path, m.options).then(
            (result) => post({ t: "snapshot", id, result, error: null }),
            (e: unknown) =>
              post({
                t: "snapshot",
                id,
                result: null,
                error: { message: e instanceof Error ? e.message : String(e), user: e instanceof UserError },
              }),
          );
          return;
        }
        case "migrate-out": {
          const id = m.id;
          const fail = (e: unknown) =>
            post({
              t: "migrate-out",
              id,
              result: null,
              error: { message: e instanceof Error ? e.message : String(e), user: e instanceof UserError },
            });
          const migrate = vm.migrate?.bind(vm);
          if (migrate === undefined) return fail(new UserError("this VM cannot be migrated"));
          output?.flush();
          connectMigration(m.to)
            .then((channel) => migrate(channel, m.options))
            .then((result: MigrationResult) => post({ t: "migrate-out", id, result, error: null }), fail);
          return;
        }
      }
    } catch (e) {
      // The parent checks states before it sends; a refusal here only means the run ended meanwhile,
      // and the parent hears of that through the state message already on its way.
      if (!(e instanceof UserError)) throw e;
    }
  });
}
