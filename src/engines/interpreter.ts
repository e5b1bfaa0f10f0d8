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
}

export type RunResult = { reason: "exit"; code: number } | { reason: "limit" } | { reason: "stopped" };

/** How long to run before giving the host event loop a turn (terminal input, signals). */
const TURN_MS = 10;
/** Longest sleep while every hart waits, so a stop request is noticed. */
const MAX_IDLE_MS = 50;

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
  private wakeSleeper: (() => void) | null = null;
  private stopRequested = false;
  private pauseRequested = false;

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
    const { cpu } = this.board;
    const limit = this.options.maxInstructions ?? Number.POSITIVE_INFINITY;
    for (;;) {
      if (this.stopRequested) return { reason: "stopped" };
      if (this.pauseRequested) {
        await this.sleepUntilWoken();
        continue;
      }
      const turnEnd = performance.now() + TURN_MS;
      let idle = false;
      while (!idle && !this.stopRequested && !this.pauseRequested && performance.now() < turnEnd) {
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
      if (idle) await this.sleepUntilTimer();
      else await yieldToHost();
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
    this.wake();
  }

  /**
   * Runs no more slices until resume(): the harts keep their state and retire nothing. The run is
   * never inside a slice when another task calls this (slices run synchronously), so it takes effect
   * at once.
   */
  pause(): void {
    this.pauseRequested = true;
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
