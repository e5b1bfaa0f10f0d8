import { wakeUpPending } from "../cpu/riscv/csr/interrupts.js";
import type { Hart } from "../cpu/riscv/hart.js";
import { deliverInterrupt } from "../cpu/riscv/trap-entry.js";
import type { VirtBoard } from "../machine/riscv-virt/board.js";
import { TIMEBASE_HZ } from "../machine/riscv-virt/memory-map.js";

export interface RunOptions {
  /** Stop after this many instructions (all harts together). */
  maxInstructions?: number;
  /** Instructions per slice: the granularity of timer checks and hart switching. */
  sliceSize?: number;
  /** A shared CPU pool deciding when this VM runs and for how long (else: turns of TURN_MS, always). */
  turns?: TurnGate;
}

/**
 * The engine's side of a shared CPU pool (manager/scheduler/cpu-pool.ts): before each turn it asks for
 * one and is told how long it may run; it says how long it ran, and when it has no work left.
 */
export interface TurnGate {
  /** Resolves with the turn's length (ms); `usedMs`: the turn just ended, and it wants another. */
  turn(usedMs?: number): Promise<number>;
  /** The turn just ended and the VM goes idle (every hart waits), pauses or ends. */
  end(usedMs: number): void;
  /**
   * The turn last asked for is no longer wanted (the VM stops or pauses while it waits): forget the
   * request, or hand the turn straight back if it was granted meanwhile.
   */
  cancel(): void;
  /**
   * The CPU time of this thread (ms), where the host has such a clock: turns are then measured and
   * charged in CPU time, so a turn the host preempted is not charged for the time it lost.
   */
  readonly cpuMs?: () => number;
}

export type RunResult = { reason: "exit"; code: number } | { reason: "limit" } | { reason: "stopped" };

/** How long to run before giving the host event loop a turn (terminal input, signals). */
const TURN_MS = 10;
/** Longest sleep while every hart waits, so a stop request is noticed. */
const MAX_IDLE_MS = 50;

const wallMs = () => performance.now();

/** Node's setImmediate, looked up at run time: a browser worker has none (and tsconfig.core.json no Node types). */
const setImmediateIfAny = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate;
const yieldToHost: () => Promise<void> =
  setImmediateIfAny !== undefined
    ? () => new Promise((resolve) => setImmediateIfAny(() => resolve()))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * The interpreter engine: runs the board's harts round-robin in slices on this thread, updates timers
 * between slices, delivers interrupts, and sleeps (instead of spinning) while every hart waits in WFI.
 */
export class InterpreterEngine {
  private readonly sliceSize: number;
  /**
   * Auto-converge of a live migration: the share of wall time the guest is held back (0 to below 1):
   * after each busy turn the run sleeps turn × throttle / (1 − throttle), so the guest dirties less.
   */
  throttle = 0;
  private wakeSleeper: (() => void) | null = null;
  private stopRequested = false;
  private pauseRequested = false;
  /** Set while the run waits for a turn of its CPU pool: ends that wait (stop, pause). */
  private interruptTurnWait: (() => void) | null = null;

  constructor(
    readonly board: VirtBoard,
    private readonly options: RunOptions = {},
  ) {
    this.sliceSize = options.sliceSize ?? 200_000;
    board.onDeviceInterrupt = () => this.wake();
  }

  instructions(): number {
    let total = 0;
    for (const h of this.board.cpu.harts) total += h.instret();
    return total;
  }

  /** Instructions retired plus traps taken: what --max-insns bounds, so a trap loop ends too. */
  private steps(): number {
    let total = 0;
    for (const h of this.board.cpu.harts) total += h.instret() + h.traps;
    return total;
  }

  async run(): Promise<RunResult> {
    const gate = this.options.turns;
    if (gate === undefined) return this.runTurns(null);
    const held = { turn: false, usedMs: 0, startedAt: 0 };
    try {
      return await this.runTurns({ gate, held });
    } finally {
      // Ended inside a turn (exit, limit): charge what it ran.
      if (held.turn) gate.end(held.usedMs > 0 ? held.usedMs : (gate.cpuMs ?? wallMs)() - held.startedAt);
    }
  }

  /** The run loop; with a pool, `held` says whether this VM holds a turn and how long it has run. */
  private async runTurns(
    pool: { gate: TurnGate; held: { turn: boolean; usedMs: number; startedAt: number } } | null,
  ): Promise<RunResult> {
    const { cpu } = this.board;
    const limit = this.options.maxInstructions ?? Number.POSITIVE_INFINITY;
    // Hands the pool's turn back before this VM sleeps (idle or paused), so others may run meanwhile.
    const release = () => {
      if (pool?.held.turn !== true) return;
      pool.held.turn = false;
      pool.gate.end(pool.held.usedMs);
    };
    for (;;) {
      if (this.stopRequested) return { reason: "stopped" };
      if (this.pauseRequested) {
        release();
        await this.sleepUntilWoken();
        continue;
      }
      let turnMs = TURN_MS;
      if (pool !== null) {
        const { held } = pool;
        // Asking charges the turn just run: nothing is held while this VM waits for the next.
        const asked = pool.gate.turn(held.turn ? held.usedMs : undefined);
        held.turn = false;
        const granted = await new Promise<number | null>((resolve) => {
          this.interruptTurnWait = () => resolve(null);
          asked.then(resolve, () => resolve(null));
        });
        this.interruptTurnWait = null;
        if (granted === null) {
          pool.gate.cancel();
          continue;
        }
        turnMs = granted;
        held.turn = true;
        held.usedMs = 0;
        held.startedAt = (pool.gate.cpuMs ?? wallMs)();
        if (this.stopRequested || this.pauseRequested) continue;
      }
      const clock = pool?.gate.cpuMs ?? wallMs;
      const turnStart = clock();
      const turnEnd = turnStart + turnMs;
      let idle = false;
      while (!idle && !this.stopRequested && !this.pauseRequested && clock() < turnEnd) {
        idle = true;
        this.board.tick();
        for (const h of cpu.harts) {
          if (!this.runnable(h)) continue;
          idle = false;
          deliverInterrupt(h);
          const left = limit - this.steps();
          if (left <= 0) return { reason: "limit" };
          cpu.runSlice(h, Math.min(this.sliceSize, left));
          if (this.board.exitCode !== null) return { reason: "exit", code: this.board.exitCode };
        }
      }
      if (pool !== null) pool.held.usedMs = clock() - turnStart;
      if (idle) {
        release();
        await this.sleepUntilTimer();
      } else if (this.throttle > 0) {
        const ms = ((clock() - turnStart) * this.throttle) / (1 - this.throttle);
        await new Promise<void>((resolve) => setTimeout(resolve, ms));
      } else {
        // Host events (input, messages, timers) get their turn between slices, pool or not.
        await yieldToHost();
      }
    }
  }

  private runnable(h: Hart): boolean {
    if (h.stopped) return false;
    if (h.waiting && wakeUpPending(h.csr)) h.waiting = false;
    return !h.waiting;
  }

  /** Ends the run at the next slice boundary (the host user quit). */
  stop(): void {
    this.stopRequested = true;
    this.interruptTurnWait?.();
    this.wake();
  }

  /**
   * Runs no more slices until resume(): the harts keep their state and retire nothing. The run is
   * never inside a slice when another task calls this (slices run synchronously), so it takes effect
   * at once.
   */
  pause(): void {
    this.pauseRequested = true;
    // A VM waiting for the pool's turn (a capped one may wait long) stops waiting.
    this.interruptTurnWait?.();
  }

  resume(): void {
    this.pauseRequested = false;
    this.wake();
  }

  /** Ends an idle sleep early: a device has work for the guest (terminal input, a host event). */
  wake(): void {
    const wake = this.wakeSleeper;
    this.wakeSleeper = null;
    wake?.();
  }

  /** Paused: sleep until a wake() (resume, stop, or a device event that finds it still paused). */
  private sleepUntilWoken(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeSleeper = resolve;
    });
  }

  /** Every hart waits: sleep until the earliest timer deadline, a wake() or a bounded while. */
  private async sleepUntilTimer(): Promise<void> {
    let deadline = this.board.nextDeadline();
    for (const h of this.board.cpu.harts) deadline = Math.min(deadline, h.csr.stimecmpDeadline);
    const ticks = deadline - this.board.clock.ticks();
    const ms = Math.max(0, Math.min(MAX_IDLE_MS, (ticks * 1000) / TIMEBASE_HZ));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeSleeper = null;
        resolve();
      }, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
