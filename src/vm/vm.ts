/**
 * The one interface every front end drives a VM through, whatever its board and engine, and the state
 * machine they share: created → running ⇄ paused → stopped, or failed when the engine or a device
 * throws. `VmBase` holds that machine; a board's VM (riscv.ts, x86.ts) supplies the engine calls.
 */
import type { VirtioConsole } from "../devices/virtio/console/virtio-console.js";
import type { Compression } from "../snapshot/memory-file.js";
import type { Frame } from "../snapshot/migration-wire.js";
import { UserError } from "../util/errors.js";
import type { VmSpec } from "./spec.js";

export type VmStateName = "created" | "running" | "paused" | "stopped" | "failed";

/** How a run ended. */
export type VmExit =
  /** riscv64: the guest ended itself (test finisher, HTIF, SBI system reset); `reboot` when it asked to. */
  | { reason: "exit"; code: number; reboot: boolean }
  /** x86_64: the guest powered off or asked to reboot (ACPI sleep port, i8042). */
  | { reason: "poweroff" | "reboot" }
  /** riscv64: maxInstructions ran out. */
  | { reason: "limit" }
  /** kill(), or stop() past its grace period. */
  | { reason: "stopped" }
  /** x86_64: a vCPU died (triple fault, entry failure, internal error). */
  | { reason: "fatal"; vcpu: number; exit: string; dump: string };

export type VmState =
  | { name: "created" | "running" | "paused" }
  | { name: "stopped"; exit: VmExit }
  | { name: "failed"; reason: string };

/** One device of the VM, for anything that walks them all (stats, a snapshot). */
export interface VmDevice {
  /** Unique within the VM: "uart0", "virtio0"... */
  name: string;
  /** What it is: "uart16550", "virtio-blk", "plic"... */
  kind: string;
  device: object;
}

/** What `snapshot()` wrote. */
export interface SnapshotResult {
  /** Non-zero RAM pages saved, the bytes they hold, and the state file's sections. */
  pages: number;
  ramBytes: number;
  sections: number;
  /** How long the guest was paused for it (ms). */
  pausedMs: number;
}

export interface SnapshotOptions {
  /** Run on afterwards (default); false leaves the VM paused. */
  resume?: boolean;
  /** zlib-compress the memory file (default: none). */
  compression?: Compression;
}

/** Counters, as plain data (what --stats prints). Fields only one arch has are absent on the other. */
export interface VmStats {
  arch: VmSpec["arch"];
  /** Seconds since start (to the end once the VM has ended). */
  seconds: number;
  instructions?: number;
  /** By SBI extension / trap cause / interrupt, most frequent first. */
  hypercalls?: [string, number][];
  traps?: [string, number][];
  interrupts?: [string, number][];
  exits?: { total: number; forwarded: number; localPio: number; mmio: number; firstExitMs: number | null };
  balloon?: Record<string, number | string>;
  /** riscv64 --engine translate: blocks compiled, wasm bytes, invalidations, compile time... */
  translation?: Record<string, number>;
  /** riscv64 --engine translate: why pcs went back to TypeScript, most frequent first, and the
   *  instructions the interpreter ran after each reason (the map of what to translate next). */
  translationExits?: [string, number][];
  translationInterpreted?: [string, number][];
  nics: { mac: string; counters: Record<string, number> }[];
  vsock?: { cid: number; counters: Record<string, number> };
  /** riscv64: the virtio keyboard (events delivered, pending, dropped; status events read). */
  keyboard?: Record<string, number>;
  /** x86_64: how virtio interrupts reach the guest. */
  virtioInterrupts?: "irqfd-resample" | "irq-line";
  /**
   * Per virtio slot: its device, its interrupt line (x86_64: the GSI; riscv64: the PLIC source), and
   * counters (x86_64: exits, ioeventfd doorbells and irqfd interrupts; riscv64: the transport's queue
   * notifications and interrupts).
   */
  virtio?: { slot: number; device: string; gsi: number; counters: Record<string, number> }[];
  rejectedMsrs?: number[];
  /**
   * A daemon's memory governor: the VM's memory mode, its balloon's target and what the guest holds as
   * of the governor's last round, and the governor's last decision for it.
   */
  memory?: {
    mode: "reserved" | "overcommit";
    balloonTargetBytes?: number;
    balloonActualBytes?: number;
    guestFreeBytes?: number | null;
    lastDecision?: { from: number; target: number; reason: string; at: string };
  };
  /** `memoryMode: "reserved"`: whether guest RAM is locked into host memory or only pre-faulted. */
  reservedMemory?: { locked: boolean; pages: number; why?: string };
  /** A daemon's scheduler: how the VM gets host CPU, the CPU time charged to it, its ready time. */
  scheduling?: {
    mode: "shared" | "dedicated";
    cpuMs: number;
    readyMs: number;
    /** The host CPUs its thread may run on. */
    cpus: number[];
    /** Its worker thread's kernel id (/proc/PID/task/TID), where known. */
    thread?: number;
    /**
     * KVM: the vCPU threads' kernel ids, their nice level or their cgroup (with the periods it ran out
     * of quota in), and what could not be applied.
     */
    vcpuThreads?: number[];
    nice?: number;
    cgroup?: { path: string; throttledPeriods: number };
    errors?: string[];
  };
}

export interface Vm {
  readonly spec: VmSpec;
  readonly state: VmState;
  /** Listens to state changes, in order; returns a function that removes the listener. */
  on(event: "state", listener: (state: VmState) => void): () => void;
  start(): void;
  pause(): void;
  resume(): void;
  /**
   * Asks the guest to power off (Ctrl-Alt-Del on the board's keyboard, where it has one), waits up to
   * `graceMs` for it to end, then stops it hard.
   */
  stop(options?: { graceMs?: number }): Promise<VmExit>;
  /**
   * Only the first half of stop(): sends the guest the board's power-off request while the VM runs;
   * false when it is not running or has no device to carry one.
   */
  requestPowerOff(): boolean;
  /** Stops the VM now (at the next slice boundary / vCPU kick). A created VM just releases what it holds. */
  kill(): void;
  /** Resolves when the VM has stopped (and released its host resources); rejects if it failed. */
  wait(): Promise<VmExit>;
  /** Keyboard input: to the virtio console when there is one (see switchConsole), else the UART. */
  input(bytes: Uint8Array): void;
  /** Swaps where input goes between hvc0 and ttyS0; returns the new target. */
  switchConsole(): "hvc0" | "ttyS0";
  resizeConsole(cols: number, rows: number): void;
  stats(): VmStats;
  devices(): VmDevice[];
  /**
   * Pauses a running or paused VM, saves it into `location` through the host's snapshot store, then
   * resumes it (unless `resume` is false or it was paused). riscv64 only; absent where unsupported.
   * Not `snapshot`: the manager's WorkerVm already has a (stats) field of that name.
   */
  saveSnapshot?(location: string, options?: SnapshotOptions): Promise<SnapshotResult>;
  /**
   * Live-migrates the running guest to the target at the other end of `channel` (riscv64 only): on
   * success the guest runs there and this VM is killed; on failure it runs on here and this rejects.
   */
  migrate?(channel: MigrationChannel, options?: MigrateOptions): Promise<MigrationResult>;
}

/** One end of a migration stream (frames of snapshot/migration-wire.ts). */
export interface MigrationChannel {
  /** Sends one frame; resolves once the transport can take more (back-pressure paces the passes). */
  send(frame: Uint8Array): Promise<void>;
  /** The peer's next frame; null once it closed the stream. Rejects on garbage or a broken stream. */
  next(): Promise<Frame | null>;
  /** A frame the peer already sent, if any, without waiting. */
  poll(): Frame | null;
  close(): void;
}

export interface MigrateOptions {
  /** The longest the guest may stay paused for the last pass, at the measured send rate (default 300). */
  downtimeMs?: number;
  /** Passes while the guest runs, at most, before it is paused anyway (default 30). */
  maxPasses?: number;
}

export interface MigrationResult {
  /** Memory passes sent, the last (paused) one included. */
  passes: number;
  /** Bytes sent in all: frames of memory and state. */
  bytes: number;
  /** Pages sent over all passes. */
  pages: number;
  totalMs: number;
  /** From pausing the guest here to the target's word that it runs there. */
  downtimeMs: number;
  /** The strongest throttle auto-converge applied (0: none; 0.5: the guest ran half the time). */
  throttle: number;
}

/** The board-specific part of a VM. */
export interface VmEngineOps {
  run(): Promise<VmExit>;
  pause(): void;
  resume(): void;
  halt(): void;
  /**
   * Sends the guest the board's power-off request (Ctrl-Alt-Del: the guest's init decides what it
   * means); false when the VM has no device to carry one.
   */
  requestPowerOff(): boolean;
  uartInput(bytes: Uint8Array): void;
  /** The guest may have work (console input reached a device): an idle engine looks again. */
  wake(): void;
  /** Frees host resources (files, sockets, KVM fds); called once, when the VM ends or is killed unstarted. */
  release(): Promise<void>;
  stats(seconds: number): VmStats;
  devices(): VmDevice[];
  /** Saves the paused VM; absent on boards without snapshots. */
  snapshot?(location: string, compression: Compression): Promise<Omit<SnapshotResult, "pausedMs">>;
  /** Migrates the running guest out, pausing and resuming through `control`; absent where unsupported. */
  migrate?(
    channel: MigrationChannel,
    options: MigrateOptions,
    control: { pause(): void; resume(): void },
  ): Promise<MigrationResult>;
}

/**
 * The state and its listeners, and the rule every Vm applies before an action: the action fits the
 * state, and the run has not ended (its release may still be under way: "stopping"). Shared by VmBase
 * and the manager's WorkerVm, whose VM runs in another thread.
 */
export abstract class VmStateMachine {
  protected current: VmState = { name: "created" };
  private readonly listeners = new Set<(state: VmState) => void>();
  abstract readonly spec: VmSpec;

  get state(): VmState {
    return this.current;
  }

  on(_event: "state", listener: (state: VmState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected set(state: VmState): void {
    this.current = state;
    for (const l of [...this.listeners]) l(state);
  }

  /** Throws a UserError unless the VM is in one of `names` and, `ended` false, its run still going. */
  protected expectState(action: string, ended: boolean, ...names: VmStateName[]): void {
    if (!names.includes(this.current.name) || (ended && this.current.name !== "created")) {
      const now = ended && this.current.name !== "stopped" ? "stopping" : this.current.name;
      throw new UserError(`cannot ${action} VM '${this.spec.name}': it is ${now}`);
    }
  }
}

export class VmBase extends VmStateMachine implements Vm {
  private readonly finished: Promise<VmExit>;
  private settle!: { resolve: (exit: VmExit) => void; reject: (e: unknown) => void };
  private toHvc: boolean;
  private startedAt = 0;
  /** Set when the engine's run has ended (the release of host resources may still be under way). */
  private endedAt: number | null = null;
  private released = false;

  constructor(
    readonly spec: VmSpec,
    private readonly ops: VmEngineOps,
    private readonly hvc: VirtioConsole | null,
  ) {
    super();
    this.toHvc = hvc !== null;
    this.finished = new Promise<VmExit>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A failure is reported through state and wait(); nobody has to await it.
    this.finished.catch(() => {});
  }

  private expect(action: string, ...names: VmStateName[]): void {
    this.expectState(action, this.endedAt !== null, ...names);
  }

  start(): void {
    this.expect("start", "created");
    this.startedAt = performance.now();
    this.set({ name: "running" });
    this.ops.run().then(
      async (exit) => {
        this.endedAt = performance.now();
        await this.ops.release();
        this.set({ name: "stopped", exit });
        this.settle.resolve(exit);
      },
      async (error: unknown) => {
        this.endedAt = performance.now();
        await this.ops.release().catch(() => {});
        this.set({ name: "failed", reason: error instanceof Error ? error.message : String(error) });
        this.settle.reject(error);
      },
    );
  }

  pause(): void {
    this.expect("pause", "running");
    this.ops.pause();
    this.set({ name: "paused" });
  }

  resume(): void {
    this.expect("resume", "paused");
    this.ops.resume();
    this.set({ name: "running" });
  }

  async stop(options: { graceMs?: number } = {}): Promise<VmExit> {
    if (this.current.name === "created" || this.current.name === "paused") {
      this.kill();
      return this.wait();
    }
    if (this.current.name === "running") {
      this.requestPowerOff();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.graceMs ?? 0);
      });
      await Promise.race([grace, this.finished.then(undefined, () => {})]);
      clearTimeout(timer);
      if (this.current.name === "running" || this.current.name === "paused") this.kill();
    }
    return this.wait();
  }

  requestPowerOff(): boolean {
    if (this.current.name !== "running" || this.endedAt !== null) return false;
    return this.ops.requestPowerOff();
  }

  kill(): void {
    if (this.current.name === "created") {
      if (this.released) return;
      this.released = true;
      const exit: VmExit = { reason: "stopped" };
      this.ops.release().then(
        () => {
          this.set({ name: "stopped", exit });
          this.settle.resolve(exit);
        },
        (e) => this.settle.reject(e),
      );
      return;
    }
    if (this.current.name === "running" || this.current.name === "paused") this.ops.halt();
  }

  wait(): Promise<VmExit> {
    return this.finished;
  }

  input(bytes: Uint8Array): void {
    if (this.toHvc && this.hvc !== null) this.hvc.receive(bytes);
    else this.ops.uartInput(bytes);
    this.ops.wake();
  }

  switchConsole(): "hvc0" | "ttyS0" {
    this.toHvc = this.hvc !== null && !this.toHvc;
    return this.toHvc ? "hvc0" : "ttyS0";
  }

  resizeConsole(cols: number, rows: number): void {
    this.hvc?.resize(cols, rows);
  }

  stats(): VmStats {
    const end = this.endedAt ?? performance.now();
    return this.ops.stats(this.startedAt === 0 ? 0 : (end - this.startedAt) / 1000);
  }

  devices(): VmDevice[] {
    return this.ops.devices();
  }

  async migrate(channel: MigrationChannel, options: MigrateOptions = {}): Promise<MigrationResult> {
    const go = this.ops.migrate;
    if (go === undefined) {
      channel.close();
      throw new UserError(`VM '${this.spec.name}': live migration is not supported for ${this.spec.arch}`);
    }
    this.expect("migrate", "running");
    const result = await go(channel, options, {
      pause: () => this.pause(),
      // A stop or kill meanwhile has the last word.
      resume: () => {
        if (this.current.name === "paused" && this.endedAt === null) this.resume();
      },
    });
    // The guest runs on the target now: two copies of it must never run.
    this.kill();
    return result;
  }

  async saveSnapshot(location: string, options: SnapshotOptions = {}): Promise<SnapshotResult> {
    const save = this.ops.snapshot;
    if (save === undefined)
      throw new UserError(`VM '${this.spec.name}': snapshots are not supported for ${this.spec.arch}`);
    this.expect("snapshot", "running", "paused");
    const wasRunning = this.current.name === "running";
    const started = performance.now();
    if (wasRunning) this.pause();
    try {
      const info = await save(location, options.compression ?? "none");
      return { ...info, pausedMs: performance.now() - started };
    } finally {
      // A stop or kill while it was written has the last word.
      if (wasRunning && options.resume !== false && this.current.name === "paused" && this.endedAt === null) {
        this.resume();
      }
    }
  }
}
