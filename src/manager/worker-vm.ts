/**
 * WorkerVm: a riscv64 VM that runs in a worker thread of its own (its own isolate, event loop and
 * WebAssembly.Memory), behind the same `Vm` interface as an in-process one. What it does to its thread
 * (a device callback that throws, a runaway exception, process.exit) ends that VM `failed` with the
 * reason, never the daemon or another VM.
 *
 * Across the boundary:
 * - start/pause/resume/kill/requestPowerOff/input/switchConsole/resizeConsole are posted; the state
 *   checks run here, synchronously, with the same rules and messages as VmBase, so callers see the
 *   same behaviour.
 *   The worker reports how the run ended (stopped or failed), and the VM takes that state once the
 *   thread is gone, so that wait() means "ended and everything released".
 * - stats() answers from the latest snapshot the worker posted (with each state change and every
 *   500 ms while it runs); `refreshStats()` asks for a fresh one, answered after every message sent
 *   before it (so after a pause() the answer is the paused count).
 * - devices() lists name and kind only; `device` is an empty object (the device stays in the worker).
 * - console output arrives in chunks (up to 4 KiB, or whatever a turn of the worker's loop produced).
 * - each `switch:` NIC's frames cross through a bounded frame link (src/net/frame-link.ts) to a port
 *   that `options.netBackend` gives here (the daemon's switch); the port is unplugged when the link
 *   closes or the thread is gone, however it ended.
 */
import { MessageChannel, type Worker } from "node:worker_threads";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import type { TurnGate } from "../engines/interpreter.js";
import type { FrameLink } from "../net/frame-link.js";
import { type Frame, FrameType } from "../snapshot/migration-wire.js";
import { UserError } from "../util/errors.js";
import type { IncomingMigration } from "../vm/riscv-migrate.js";
import type { VmSpec } from "../vm/spec.js";
import {
  type MigrateOptions,
  type MigrationResult,
  type SnapshotOptions,
  type SnapshotResult,
  type Vm,
  type VmDevice,
  type VmExit,
  type VmState,
  VmStateMachine,
  type VmStateName,
  type VmStats,
} from "../vm/vm.js";
import type { BalloonFigures, BalloonPoll } from "./balloon.js";
import { bridgeLink, withLinkDrops } from "./nic-links.js";
import type { Placement } from "./scheduler/vm-scheduler.js";
import { startVmWorker, type WorkerPool } from "./worker-pool.js";
import type {
  FromWorker,
  MigrateOutAnswer,
  ToWorker,
  WorkerFault,
  WorkerLinks,
  WorkerRestore,
} from "./worker-protocol.js";

type Ended = Extract<VmState, { name: "stopped" | "failed" }>;

export interface WorkerVmOptions {
  /** The worker's entry module: it calls runVmWorker with the Node host (src/cli/vm-worker.ts). */
  entry: URL;
  /** Where a warm worker comes from; without one (or when it is empty) a worker starts from `entry`. */
  pool?: WorkerPool;
  /** Receives the guest's console output. */
  console(bytes: Uint8Array): void;
  /** Host warnings from inside the worker. */
  log?(message: string): void;
  /** Test hook (VIREO_TEST_HOOKS): a fault for the worker to raise. */
  fault?: WorkerFault | null;
  /** The backend in this thread of a `switch:NAME` NIC (a port of this thread's switch). */
  netBackend?(backend: string): NetBackend;
  /** Where the thread runs (the scheduler's placement); absent: anywhere, turns of its own. */
  placement?: Placement;
  /** A shared VM's turns, granted here (the daemon's CpuPool) and run in the worker. */
  turns?: TurnGate;
  /** Build the VM from this snapshot instead of booting it. */
  restore?: WorkerRestore;
  /** Build the VM from this incoming live migration (its frames are passed on to the worker). */
  incoming?: IncomingMigration;
}

export class WorkerVm extends VmStateMachine implements Vm {
  private readonly finished: Promise<VmExit>;
  private settle!: { resolve: (exit: VmExit) => void; reject: (e: unknown) => void };
  /** How the worker said the run ended; applied when the thread has exited. */
  private ending: Ended | null = null;
  /** Why the thread died, when an exception killed it. */
  private crash: string | null = null;
  private killSent = false;
  private toHvc: boolean;
  private snapshot: VmStats;
  private readonly devicesList: VmDevice[];
  private nextStatsId = 0;
  private readonly statsWaiters = new Map<number, (stats: VmStats) => void>();
  /** The worker's kernel thread id (/proc/PID/task/TID), or null where it is not known. */
  readonly thread: number | null;
  private readonly balloonWaiters = new Map<number, (figures: BalloonFigures | null) => void>();
  private readonly pollWaiters = new Map<number, (poll: BalloonPoll | null) => void>();
  private readonly migrateWaiters = new Map<number, (m: MigrateOutAnswer | null) => void>();
  private readonly snapshotWaiters = new Map<
    number,
    (m: Extract<FromWorker, { t: "snapshot" }> | null) => void
  >();

  private constructor(
    readonly spec: VmSpec,
    private readonly worker: Worker,
    ready: Extract<FromWorker, { t: "ready" }>,
    private readonly options: WorkerVmOptions,
    /** This thread's ends of the NICs' frame links, by NIC index. */
    private readonly links: ReadonlyMap<number, FrameLink>,
  ) {
    super();
    this.toHvc = ready.hasHvc;
    this.snapshot = ready.stats;
    this.thread = ready.thread;
    this.devicesList = ready.devices.map((d) => ({ ...d, device: {} }));
    this.finished = new Promise<VmExit>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.finished.catch(() => {});
    worker.on("message", (m: FromWorker) => this.receive(m));
    worker.on("error", (e) => {
      this.crash = e instanceof Error ? e.message : String(e);
    });
    worker.on("exit", (code) => this.exited(code));
  }

  /** Starts the worker and builds the VM in it; throws as createVm does (UserError for bad input). */
  static create(spec: VmSpec, options: WorkerVmOptions): Promise<WorkerVm> {
    const links = new Map<number, FrameLink>();
    const given: WorkerLinks = [];
    const unplug = () => {
      for (const link of links.values()) link.close();
    };
    try {
      spec.nics.forEach((nic, i) => {
        if (!nic.backend.startsWith("switch:")) return;
        if (options.netBackend === undefined)
          throw new Error("WorkerVm: switch NICs need options.netBackend");
        const { port1, port2 } = new MessageChannel();
        links.set(i, bridgeLink(port1, options.netBackend(nic.backend)));
        given.push({ nic: i, backend: nic.backend, port: port2 });
      });
    } catch (e) {
      unplug();
      for (const l of given) l.port.close();
      return Promise.reject(e);
    }
    let worker: Worker;
    try {
      worker = options.pool?.take() ?? startVmWorker(options.entry);
    } catch (e) {
      unplug();
      for (const l of given) l.port.close();
      return Promise.reject(e);
    }
    const build: ToWorker = {
      t: "build",
      spec,
      fault: options.fault ?? null,
      links: given,
      placement: options.placement ?? null,
      ...(options.restore === undefined ? {} : { restore: options.restore }),
      ...(options.incoming === undefined ? {} : { incoming: { start: options.incoming.start } }),
    };
    worker.postMessage(
      build,
      given.map((l) => l.port),
    );
    if (options.incoming !== undefined) void forwardFrames(worker, options.incoming);
    return new Promise((resolve, reject) => {
      let crash: string | null = null;
      const onError = (e: unknown) => {
        crash = e instanceof Error ? e.message : String(e);
      };
      const onExit = (code: number) => {
        cleanup();
        unplug();
        reject(new Error(`the VM's worker ended before the VM was built: ${crash ?? `exit code ${code}`}`));
      };
      const onMessage = (m: FromWorker) => {
        if (m.t === "log") return options.log?.(m.message);
        if (m.t === "ready") {
          cleanup();
          resolve(new WorkerVm(spec, worker, m, options, links));
        } else if (m.t === "build-failed") {
          cleanup();
          unplug();
          void worker.terminate();
          reject(m.user ? new UserError(m.message) : new Error(m.message));
        }
      };
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
    });
  }

  private send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  /** VmBase's rule: the action fits the state, and the run has not ended (its release may be under way). */
  private expect(action: string, ...names: VmStateName[]): void {
    this.expectState(action, this.ending !== null || this.crash !== null, ...names);
  }

  start(): void {
    this.expect("start", "created");
    if (this.killSent) throw new UserError(`cannot start VM '${this.spec.name}': it is stopping`);
    this.set({ name: "running" });
    this.send({ t: "start" });
  }

  pause(): void {
    this.expect("pause", "running");
    this.set({ name: "paused" });
    this.send({ t: "pause" });
  }

  resume(): void {
    this.expect("resume", "paused");
    this.set({ name: "running" });
    this.send({ t: "resume" });
  }

  async stop(options: { graceMs?: number } = {}): Promise<VmExit> {
    if (this.current.name === "running") {
      this.requestPowerOff();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.graceMs ?? 0);
      });
      await Promise.race([grace, this.finished.then(undefined, () => {})]);
      clearTimeout(timer);
    }
    this.kill();
    return this.wait();
  }

  /** Posted: the answer is whether the VM has a keyboard to carry the request (the worker presses it). */
  requestPowerOff(): boolean {
    const ended = this.ending !== null || this.crash !== null || this.killSent;
    if (this.current.name !== "running" || ended) return false;
    this.send({ t: "poweroff" });
    return this.devicesList.some((d) => d.kind === "virtio-input");
  }

  kill(): void {
    const s = this.current.name;
    if (s === "stopped" || s === "failed" || this.killSent) return;
    this.killSent = true;
    this.send({ t: "kill" });
  }

  wait(): Promise<VmExit> {
    return this.finished;
  }

  input(bytes: Uint8Array): void {
    this.send({ t: "input", bytes });
  }

  switchConsole(): "hvc0" | "ttyS0" {
    if (this.devicesList.some((d) => d.kind === "virtio-console")) {
      this.toHvc = !this.toHvc;
      this.send({ t: "switch" });
    }
    return this.toHvc ? "hvc0" : "ttyS0";
  }

  /** The shared pool's CPUs changed: the thread confines itself to the new set. */
  setAffinity(cpus: number[]): void {
    if (this.current.name === "stopped" || this.current.name === "failed") return;
    this.send({ t: "affinity", cpus });
  }

  resizeConsole(cols: number, rows: number): void {
    this.send({ t: "resize", cols, rows });
  }

  stats(): VmStats {
    return withLinkDrops(this.snapshot, this.links, "rxLinkDropped");
  }

  /** A snapshot taken after every message sent before this call; the last one once the VM has ended. */
  refreshStats(): Promise<VmStats> {
    if (this.current.name === "stopped" || this.current.name === "failed" || this.ending !== null) {
      return Promise.resolve(this.stats());
    }
    const id = this.nextStatsId++;
    return new Promise((resolve) => {
      this.statsWaiters.set(id, () => resolve(this.stats()));
      this.send({ t: "stats", id });
    });
  }

  devices(): VmDevice[] {
    return this.devicesList;
  }

  /**
   * Sets the balloon's target in the worker (null: only reads it) and answers its figures; null when
   * the VM has no balloon or its thread ended before answering.
   */
  balloon(targetBytes: number | null): Promise<BalloonFigures | null> {
    if (this.current.name === "stopped" || this.current.name === "failed" || this.ending !== null) {
      return Promise.resolve(null);
    }
    const id = this.nextStatsId++;
    return new Promise((resolve) => {
      this.balloonWaiters.set(id, resolve);
      this.send({ t: "balloon", id, targetBytes });
    });
  }

  /** The balloon's figures and guest statistics (see balloonPoll); null as balloon() answers null. */
  balloonPoll(): Promise<BalloonPoll | null> {
    if (this.current.name === "stopped" || this.current.name === "failed" || this.ending !== null) {
      return Promise.resolve(null);
    }
    const id = this.nextStatsId++;
    return new Promise((resolve) => {
      this.pollWaiters.set(id, resolve);
      this.send({ t: "balloon-poll", id });
    });
  }

  /**
   * Saves the VM into `path` inside its worker (pausing it there meanwhile); a paused VM stays paused,
   * a running one runs on unless `resume` is false.
   */
  async saveSnapshot(path: string, options: SnapshotOptions = {}): Promise<SnapshotResult> {
    this.expect("snapshot", "running", "paused");
    const wasRunning = this.current.name === "running";
    const stay = wasRunning && options.resume === false;
    const id = this.nextStatsId++;
    const answer = await new Promise<Extract<FromWorker, { t: "snapshot" }> | null>((resolve) => {
      this.snapshotWaiters.set(id, resolve);
      this.send({ t: "snapshot", id, path, options: { ...options, resume: !stay } });
    });
    if (answer === null) throw new UserError(`VM '${this.spec.name}' ended before its snapshot was saved`);
    if (answer.error !== null) {
      throw answer.error.user ? new UserError(answer.error.message) : new Error(answer.error.message);
    }
    if (stay && this.current.name === "running") {
      // The worker's VM stayed paused after saving: this side says so too.
      this.set({ name: "paused" });
    }
    return answer.result as SnapshotResult;
  }

  /**
   * Live-migrates the running VM to the target at `to` from inside its worker (which connects there and
   * sends the passes); once the target runs it, the worker's VM ends.
   */
  async migrateTo(to: string, options: MigrateOptions = {}): Promise<MigrationResult> {
    this.expect("migrate", "running");
    const id = this.nextStatsId++;
    const answer = await new Promise<MigrateOutAnswer | null>((resolve) => {
      this.migrateWaiters.set(id, resolve);
      this.send({ t: "migrate-out", id, to, options });
    });
    if (answer === null) throw new UserError(`VM '${this.spec.name}' ended before its migration did`);
    if (answer.error !== null) {
      throw answer.error.user ? new UserError(answer.error.message) : new Error(answer.error.message);
    }
    return answer.result as MigrationResult;
  }

  private receive(m: FromWorker): void {
    switch (m.t) {
      case "migrate-out":
        this.migrateWaiters.get(m.id)?.(m);
        this.migrateWaiters.delete(m.id);
        return;
      case "console":
        this.options.console(m.bytes);
        return;
      case "log":
        this.options.log?.(m.message);
        return;
      case "turn": {
        const turns = this.options.turns;
        if (turns === undefined) return;
        const seq = m.seq;
        void turns.turn(m.usedMs ?? undefined).then((sliceMs) => this.send({ t: "grant", sliceMs, seq }));
        return;
      }
      case "turn-cancel":
        this.options.turns?.cancel();
        return;
      case "turn-end":
        this.options.turns?.end(m.usedMs);
        return;
      case "stats":
        this.snapshot = m.stats;
        if (m.id !== null) {
          this.statsWaiters.get(m.id)?.(m.stats);
          this.statsWaiters.delete(m.id);
        }
        return;
      case "balloon":
        this.balloonWaiters.get(m.id)?.(m.figures);
        this.balloonWaiters.delete(m.id);
        return;
      case "balloon-poll":
        this.pollWaiters.get(m.id)?.(m.poll);
        this.pollWaiters.delete(m.id);
        return;
      case "state":
        this.snapshot = m.stats;
        if (m.state.name === "stopped" || m.state.name === "failed") {
          this.ending ??= m.state;
          // Everything the VM held is released by now (VmBase reports the end after release).
          void this.worker.terminate();
        }
        return;
      case "snapshot":
        this.snapshotWaiters.get(m.id)?.(m);
        this.snapshotWaiters.delete(m.id);
        return;
      case "ready":
      case "build-failed":
        return;
    }
  }

  /** The thread is gone: the VM takes the state its run ended in, or fails with why the thread died. */
  private exited(code: number): void {
    for (const link of this.links.values()) link.close();
    for (const resolve of this.statsWaiters.values()) resolve(this.snapshot);
    this.statsWaiters.clear();
    for (const resolve of this.balloonWaiters.values()) resolve(null);
    this.balloonWaiters.clear();
    for (const resolve of this.pollWaiters.values()) resolve(null);
    this.pollWaiters.clear();
    for (const resolve of this.snapshotWaiters.values()) resolve(null);
    for (const resolve of this.migrateWaiters.values()) resolve(null);
    this.migrateWaiters.clear();
    this.snapshotWaiters.clear();
    let end: Ended | null = this.ending;
    if (end === null && this.killSent && this.current.name === "created") {
      end = { name: "stopped", exit: { reason: "stopped" } };
    }
    end ??= { name: "failed", reason: this.crash ?? `the VM's worker thread exited with code ${code}` };
    this.set(end);
    if (end.name === "stopped") this.settle.resolve(end.exit);
    else this.settle.reject(new Error(end.reason));
  }
}

/** Passes an incoming migration's frames on to the worker building its VM, up to COMPLETE or ABANDON. */
async function forwardFrames(worker: Worker, incoming: IncomingMigration): Promise<void> {
  for (;;) {
    let frame: Frame | null;
    try {
      frame = await incoming.next();
    } catch (e) {
      worker.postMessage({ t: "migrate-frame", frame: null, error: (e as Error).message } satisfies ToWorker);
      return;
    }
    const message: ToWorker = { t: "migrate-frame", frame, error: null };
    worker.postMessage(message, frame === null ? [] : [frame.payload.buffer as ArrayBuffer]);
    if (frame === null || frame.type === FrameType.COMPLETE || frame.type === FrameType.ABANDON) return;
  }
}
