/**
 * Runs a board's KVM VM: one worker thread per vCPU with a blocking KVM_RUN loop (vcpu-worker.ts),
 * device exits forwarded to the main thread where the board's devices live, and a clean stop. The board
 * (machine/x86-microvm/) builds the VM and owns its devices; the engine takes the board, as the
 * interpreter engine takes the RISC-V board.
 *
 * Stopping: set the shared stop flag, then for each vCPU still in its loop set kvm_run.immediate_exit and
 * send SIGUSR2 to its thread (the flag covers a thread between two KVM_RUNs, the signal one inside the
 * guest), repeating until every loop has ended. Only then are the threads released and the fds closed: a
 * thread inside KVM_RUN can neither be terminated nor let the process exit.
 *
 * Pausing: set the shared pause flag and kick the same way; each worker parks (Atomics.wait on the flag)
 * at the top of its loop, outside KVM_RUN. `pause()` returns once every vCPU still in its loop is parked,
 * completing on the spot any forwarded exit a vCPU is waiting for (the device answer must reach the guest
 * before it stops). The kvmclock is read then and written back on resume, so the guest's clock does not
 * count the pause (as QEMU does). A stop clears the pause flag, which wakes the parked workers.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { RUN } from "../../hypervisor/kvm/abi.js";
import type { Vcpu, Vm } from "../../hypervisor/kvm/kvm.js";
import type { VcpuStateBytes, VcpuStateCaps } from "../../hypervisor/kvm/vcpu-state.js";
import * as libc from "../../hypervisor/libc.js";
import type { PortRange } from "../../machine/x86-microvm/board.js";
import {
  COUNTER,
  CTL,
  CTL_BYTES,
  CTL_COUNTERS_OFFSET,
  CTL_THREAD_OFFSET,
  LOOP,
  SHARED,
  SHARED_BYTES,
  SHARED_PORT_BITMAP_OFFSET,
  STATE,
  type VcpuReply,
  type VcpuRequest,
  type WorkerConfig,
  type WorkerReport,
} from "./protocol.js";

/** The board side of exits: `data` holds the access's bytes (to fill for reads), little-endian. */
export interface ExitHandler {
  portIo(vcpu: number, port: number, write: boolean, data: Uint8Array): void;
  mmio(vcpu: number, address: number, write: boolean, data: Uint8Array): void;
}

/**
 * What the engine needs of a board: the VM and its vCPUs (built and loaded), the device side of exits,
 * the ports to forward (others are answered in the vCPU thread), and a hook its devices call when the
 * guest asks to power off or reboot, which the engine sets.
 */
export interface KvmBoard extends ExitHandler {
  readonly vm: Vm;
  readonly vcpus: readonly Vcpu[];
  readonly forwardedPorts: readonly PortRange[];
  onGuestEvent: (event: "poweroff" | "reboot") => void;
}

/** Where the vCPU threads run (a daemon's scheduler): confined to `cpus` (vCPU i alone on cpus[i] when
 * `pinEach`), at nice level `nice`. */
export interface VcpuPlacement {
  cpus: readonly number[];
  pinEach: boolean;
  nice: number | null;
  /** Puts a vCPU thread, by kernel id, where its weight and cap are kept (the host's cgroup for it). */
  enter?: (tid: number) => void;
}

export type KvmRunResult =
  | { reason: "poweroff" | "reboot" | "stopped" }
  | { reason: "fatal"; vcpu: number; exit: string; dump: string };

export interface VcpuCounters {
  exits: number;
  forwarded: number;
  localPio: number;
  /** MMIO exits (each also counted in `forwarded`). */
  mmio: number;
  /** Milliseconds (performance.timeOrigin based) of the first KVM_RUN and of the first exit. */
  firstRunTime: number;
  firstExitTime: number;
}

const KICK_INTERVAL_MS = 20;

type WaitAsyncResult =
  | { async: false; value: "not-equal" | "timed-out" }
  | { async: true; value: Promise<"ok" | "timed-out"> };
/** Atomics.waitAsync (Node ≥ 16; not in the ES2022 typings this project compiles against). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(array: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
  }
).waitAsync;
const STOP_TIMEOUT_MS = 5000;
/** How long `pause()` sleeps between looks at the vCPUs it waits for (it must also answer their exits). */
const PAUSE_POLL_MS = 1;

/** A process-wide SIGUSR2 handler must exist, or the kick signal would kill the process. */
function ensureKickSignalHandler(): void {
  if (process.listenerCount("SIGUSR2") === 0) process.on("SIGUSR2", () => {});
}

interface VcpuThread {
  vcpu: Vcpu;
  worker: Worker;
  ctl: Int32Array;
  counters: Float64Array;
  thread: BigInt64Array;
  exited: Promise<void>;
  /** The main thread's end of the worker's request port. */
  port: MessagePort;
  /** The worker has ended (normally only after `release`; earlier if it failed to start). */
  gone: boolean;
}

export class KvmEngine {
  private readonly shared = new SharedArrayBuffer(SHARED_BYTES);
  private readonly flags = new Int32Array(this.shared, 0, 2);
  private readonly portBitmap = new Uint8Array(this.shared, SHARED_PORT_BITMAP_OFFSET);
  private threads: VcpuThread[] = [];
  private result: KvmRunResult | null = null;
  private finish: (() => void) | null = null;
  private started = false;
  private paused = false;
  /** The kvmclock when paused, written back on resume; null when KVM could not read it. */
  private pausedClock: bigint | null = null;

  private readonly vcpus: readonly Vcpu[];
  private readonly handler: ExitHandler;

  private placement: VcpuPlacement | null = null;
  /** The threads have started and the placement given before run() is applied to them. */
  private placedAtStart = false;
  /** Per vCPU, the state its thread writes before its first KVM_RUN (a restored VM). */
  private readonly restore: readonly VcpuStateBytes[] | null;
  /** Why a placement could not be applied to a thread (EACCES for a lower nice, say), one line each. */
  readonly placementErrors: string[] = [];

  constructor(
    readonly board: KvmBoard,
    options: { placement?: VcpuPlacement; restore?: readonly VcpuStateBytes[] } = {},
  ) {
    this.placement = options.placement ?? null;
    this.restore = options.restore ?? null;
    if (this.restore !== null && this.restore.length !== board.vcpus.length) {
      throw new RangeError(`${this.restore.length} vCPU states for ${board.vcpus.length} vCPUs`);
    }
    this.vcpus = board.vcpus;
    this.handler = board;
    for (const { start, count } of board.forwardedPorts) this.forwardPorts(start, count);
    board.onGuestEvent = (event) => this.stop(event);
  }

  /** Port I/O to [start, start + count) goes to the board; other ports are answered in the vCPU thread. */
  private forwardPorts(start: number, count: number): void {
    for (let port = start; port < start + count; port++) {
      this.portBitmap[port >> 3] = (this.portBitmap[port >> 3] as number) | (1 << (port & 7));
    }
  }

  /** Starts the vCPU threads and resolves when the guest ends or `stop` is called. */
  async run(): Promise<KvmRunResult> {
    if (this.started) throw new Error("KvmEngine.run called twice");
    this.started = true;
    ensureKickSignalHandler();
    const done = new Promise<void>((resolve) => {
      this.finish = resolve;
    });
    if (this.result !== null) this.finish?.(); // stopped before it started
    const workerUrl = new URL("./vcpu-worker.js", import.meta.url);
    for (const [i, vcpu] of this.vcpus.entries()) {
      const control = new SharedArrayBuffer(CTL_BYTES);
      const { port1, port2 } = new MessageChannel();
      const restore = this.restore?.[i];
      const config: WorkerConfig = {
        vcpu: vcpu.id,
        fd: vcpu.fd,
        runAddress: vcpu.runAddress,
        runSize: vcpu.runSize,
        control,
        shared: this.shared,
        requests: port2,
        ...(restore === undefined ? {} : { restore }),
      };
      const worker = new Worker(workerUrl, {
        workerData: config,
        transferList: [port2],
        stdout: false,
        stderr: false,
      });
      let thread: VcpuThread | null = null;
      const exited = new Promise<void>((resolve) =>
        worker.once("exit", () => {
          if (thread !== null) thread.gone = true;
          resolve();
        }),
      );
      thread = {
        vcpu,
        worker,
        ctl: new Int32Array(control, 0, 8),
        counters: new Float64Array(control, CTL_COUNTERS_OFFSET, 8),
        thread: new BigInt64Array(control, CTL_THREAD_OFFSET, 1),
        exited,
        port: port1,
        gone: false,
      };
      worker.on("message", (report: WorkerReport) => this.onReport(report));
      worker.on("error", (e) => {
        this.end({ reason: "fatal", vcpu: vcpu.id, exit: "vCPU thread error", dump: String(e.stack ?? e) });
      });
      this.threads.push(thread);
    }
    // Every thread must have published its pthread_t before any can be kicked.
    for (const t of this.threads) {
      while (Atomics.load(t.ctl, CTL.loop) === LOOP.STARTING && !t.gone) {
        const wait = waitAsync(t.ctl, CTL.loop, LOOP.STARTING, 1000);
        if (wait.async) await wait.value;
        if (this.result !== null) break;
      }
    }
    if (this.placement !== null) this.place(this.placement);
    this.placedAtStart = true;
    for (const t of this.threads) {
      this.serve(t);
      Atomics.store(t.ctl, CTL.go, 1);
      Atomics.notify(t.ctl, CTL.go);
    }
    await done;
    await this.shutdownThreads();
    return this.result as KvmRunResult;
  }

  /**
   * The vCPU threads' kernel ids (0 for one that has not started). A thread counts as started once the
   * placement given before run() is on it: whoever reads an id may then rely on its CPUs and cgroup.
   */
  threadIds(): number[] {
    return this.threads.map((t) => (this.placedAtStart ? (t.counters[COUNTER.tid] as number) : 0));
  }

  /**
   * Confines the vCPU threads (set from this thread by their ids: a thread inside KVM_RUN need not
   * take part); before run() it is kept for when they start. Failures are collected, not thrown: a
   * VM runs unconfined rather than not at all.
   */
  place(placement: VcpuPlacement): void {
    this.placement = placement;
    this.threads.forEach((t, i) => {
      const tid = t.counters[COUNTER.tid] as number;
      if (tid === 0 || t.gone) return;
      const cpus = placement.pinEach ? [placement.cpus[i % placement.cpus.length] as number] : placement.cpus;
      try {
        libc.setThreadAffinity(cpus, tid);
      } catch (e) {
        this.placementErrors.push(`vCPU ${i}: affinity ${cpus.join(",")}: ${(e as Error).message}`);
      }
      try {
        placement.enter?.(tid);
      } catch (e) {
        this.placementErrors.push(`vCPU ${i}: cgroup: ${(e as Error).message}`);
      }
      if (placement.nice === null) return;
      try {
        libc.setThreadNice(tid, placement.nice);
      } catch (e) {
        this.placementErrors.push(`vCPU ${i}: nice ${placement.nice}: ${(e as Error).message}`);
      }
    });
  }

  /** Asks the guest to stop from the host side (or records why it stopped, for the board's devices). */
  stop(reason: "poweroff" | "reboot" | "stopped" = "stopped"): void {
    this.end({ reason });
  }

  /**
   * Stops every vCPU outside KVM_RUN until `resume()`; returns when they are all parked. A no-op once the
   * VM has ended or when already paused. vCPUs not yet started park before their first KVM_RUN.
   */
  pause(): void {
    if (this.paused || this.result !== null) return;
    this.paused = true;
    Atomics.store(this.flags, SHARED.pause, 1);
    try {
      this.parkAll();
    } catch (e) {
      // Not paused after all: let the vCPUs that did park go on, so the VM is as it was.
      this.paused = false;
      Atomics.store(this.flags, SHARED.pause, 0);
      Atomics.notify(this.flags, SHARED.pause);
      throw e;
    }
    this.pausedClock = this.readClock();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.result !== null) return;
    if (this.pausedClock !== null) {
      try {
        this.board.vm.setClock(this.pausedClock);
      } catch {
        // A kvmclock that cannot be set keeps counting the pause, as on a host without KVM_SET_CLOCK.
      }
      this.pausedClock = null;
    }
    Atomics.store(this.flags, SHARED.pause, 0);
    Atomics.notify(this.flags, SHARED.pause);
  }

  /** The kvmclock as it was when the VM paused (what a snapshot saves); null if not paused or unread. */
  clockAtPause(): bigint | null {
    return this.paused ? this.pausedClock : null;
  }

  /**
   * Every vCPU's state, read by its own thread while parked (see vcpu-worker.ts `answer`). The VM must be
   * paused; a vCPU that does not answer, or an ioctl KVM refuses, throws.
   */
  readVcpuStates(caps: VcpuStateCaps): VcpuStateBytes[] {
    if (!this.paused || this.result !== null) throw new Error("the VM is not paused");
    return this.threads.map((t) => this.request(t, { type: "read", caps }));
  }

  private request(t: VcpuThread, request: VcpuRequest): VcpuStateBytes {
    if (t.gone || Atomics.load(t.ctl, CTL.parked) !== 1) {
      throw new Error(`vCPU ${t.vcpu.id} is not parked`);
    }
    t.port.postMessage(request);
    Atomics.store(t.ctl, CTL.request, 1);
    const deadline = performance.now() + STOP_TIMEOUT_MS;
    while (Atomics.load(t.ctl, CTL.request) === 1) {
      if (performance.now() > deadline || t.gone) {
        throw new Error(`vCPU ${t.vcpu.id} did not answer a state request`);
      }
      // The worker may have looked at `request` just before it was raised and gone back to sleep.
      Atomics.notify(this.flags, SHARED.pause);
      Atomics.wait(t.ctl, CTL.request, 1, PAUSE_POLL_MS);
    }
    const reply = receiveMessageOnPort(t.port)?.message as VcpuReply | undefined;
    if (reply === undefined) throw new Error(`vCPU ${t.vcpu.id} answered nothing`);
    if (reply.type === "error") throw new Error(`vCPU ${t.vcpu.id}: ${reply.message}`);
    return reply.state;
  }

  private readClock(): bigint | null {
    try {
      return this.board.vm.getClock();
    } catch {
      return null;
    }
  }

  /**
   * Synchronous on purpose: the VM is paused when this returns. It cannot wait on the event loop, so it
   * answers a pending forwarded exit itself (the same dispatch `serve` does; both run on this thread).
   */
  private parkAll(): void {
    const deadline = performance.now() + STOP_TIMEOUT_MS;
    let lastKick = Number.NEGATIVE_INFINITY;
    for (;;) {
      // A thread not yet let go looks at the pause flag before its first KVM_RUN.
      const running = this.threads.filter(
        (t) =>
          !t.gone &&
          Atomics.load(t.ctl, CTL.go) === 1 &&
          Atomics.load(t.ctl, CTL.loop) === LOOP.RUNNING &&
          Atomics.load(t.ctl, CTL.parked) === 0,
      );
      if (running.length === 0 || this.result !== null) return;
      if (performance.now() > deadline) {
        throw new Error(`vCPU ${running.map((t) => t.vcpu.id).join(",")} did not pause`);
      }
      for (const t of running) {
        if (Atomics.load(t.ctl, CTL.state) === STATE.PENDING) this.complete(t);
      }
      if (performance.now() - lastKick >= KICK_INTERVAL_MS) {
        for (const t of running) this.kick(t);
        lastKick = performance.now();
      }
      Atomics.wait(running[0]?.ctl as Int32Array, CTL.parked, 0, PAUSE_POLL_MS);
    }
  }

  counters(): VcpuCounters[] {
    return this.threads.map((t) => ({
      exits: t.counters[COUNTER.exits] as number,
      forwarded: t.counters[COUNTER.forwarded] as number,
      localPio: t.counters[COUNTER.localPio] as number,
      mmio: t.counters[COUNTER.mmio] as number,
      firstRunTime: t.counters[COUNTER.firstRunTime] as number,
      firstExitTime: t.counters[COUNTER.firstExitTime] as number,
    }));
  }

  private onReport(report: WorkerReport): void {
    if (report.type === "event") this.end({ reason: report.event });
    else this.end({ reason: "fatal", vcpu: report.vcpu, exit: report.exit, dump: report.message });
  }

  /** The first reason wins; every vCPU is told to stop. */
  private end(result: KvmRunResult): void {
    if (this.result !== null) return;
    this.result = result;
    Atomics.store(this.flags, SHARED.stop, 1);
    // Parked workers wait while the pause word is 1: changing it wakes them (and one about to wait).
    Atomics.store(this.flags, SHARED.pause, 0);
    Atomics.notify(this.flags, SHARED.pause);
    for (const t of this.threads) {
      Atomics.store(t.ctl, CTL.go, 1);
      Atomics.notify(t.ctl, CTL.go);
    }
    this.kickAll();
    this.finish?.();
  }

  /** Serves forwarded exits of one vCPU until it leaves its loop. */
  private async serve(t: VcpuThread): Promise<void> {
    for (;;) {
      const state = Atomics.load(t.ctl, CTL.state);
      if (state !== STATE.PENDING) {
        if (Atomics.load(t.ctl, CTL.loop) === LOOP.EXITED) return;
        // Wake up at least now and then to notice the loop ending without a last exit.
        const wait = waitAsync(t.ctl, CTL.state, state, this.result === null ? 1000 : 50);
        if (wait.async) await wait.value;
        continue;
      }
      this.complete(t);
    }
  }

  /** Answers the exit a vCPU has forwarded (STATE is PENDING) and lets it go on. */
  private complete(t: VcpuThread): void {
    const run = t.vcpu.run;
    try {
      if (this.result === null)
        this.dispatch(t.vcpu.id, new DataView(run.buffer, run.byteOffset, run.byteLength), run);
    } catch (e) {
      this.end({
        reason: "fatal",
        vcpu: t.vcpu.id,
        exit: "device error",
        dump: String((e as Error).stack),
      });
    }
    Atomics.store(t.ctl, CTL.state, STATE.DONE);
    Atomics.notify(t.ctl, CTL.state);
  }

  private dispatch(vcpu: number, view: DataView, run: Uint8Array): void {
    const reason = view.getUint32(RUN.exitReason, true);
    if (reason === 2 /* KVM_EXIT_IO */) {
      const write = view.getUint8(RUN.ioDirection) === 1;
      const size = view.getUint8(RUN.ioSize);
      const port = view.getUint16(RUN.ioPort, true);
      const count = view.getUint32(RUN.ioCount, true);
      const offset = Number(view.getBigUint64(RUN.ioDataOffset, true));
      for (let i = 0; i < count; i++) {
        this.handler.portIo(vcpu, port, write, run.subarray(offset + i * size, offset + (i + 1) * size));
      }
    } else {
      const address = Number(view.getBigUint64(RUN.mmioAddress, true));
      const length = view.getUint32(RUN.mmioLength, true);
      const write = view.getUint8(RUN.mmioIsWrite) !== 0;
      this.handler.mmio(vcpu, address, write, run.subarray(RUN.mmioData, RUN.mmioData + Math.min(length, 8)));
    }
  }

  private kickAll(): void {
    for (const t of this.threads) {
      if (Atomics.load(t.ctl, CTL.loop) === LOOP.RUNNING) this.kick(t);
    }
  }

  /** Out of KVM_RUN: immediate_exit covers a thread about to enter it, SIGUSR2 one inside it. */
  private kick(t: VcpuThread): void {
    t.vcpu.run[RUN.immediateExit] = 1;
    const thread = t.thread[0] as bigint;
    if (thread !== 0n) libc.signalThread(thread, libc.SIGUSR2);
  }

  /** Kicks until every run loop has ended, then lets the threads finish. */
  private async shutdownThreads(): Promise<void> {
    const deadline = performance.now() + STOP_TIMEOUT_MS;
    for (;;) {
      const running = this.threads.filter((t) => !t.gone && Atomics.load(t.ctl, CTL.loop) !== LOOP.EXITED);
      if (running.length === 0) break;
      if (performance.now() > deadline) {
        throw new Error(`vCPU ${running.map((t) => t.vcpu.id).join(",")} did not stop`);
      }
      for (const t of running) {
        // A thread waiting for its forwarded exit must not wait for a device any more.
        if (Atomics.load(t.ctl, CTL.state) === STATE.PENDING) {
          Atomics.store(t.ctl, CTL.state, STATE.DONE);
          Atomics.notify(t.ctl, CTL.state);
        }
      }
      this.kickAll();
      const wait = waitAsync(running[0]?.ctl as Int32Array, CTL.loop, LOOP.RUNNING, KICK_INTERVAL_MS);
      if (wait.async) await wait.value;
    }
    for (const t of this.threads) {
      Atomics.store(t.ctl, CTL.release, 1);
      Atomics.notify(t.ctl, CTL.release);
    }
    await Promise.all(this.threads.map((t) => t.exited));
    for (const t of this.threads) t.port.close();
  }
}
