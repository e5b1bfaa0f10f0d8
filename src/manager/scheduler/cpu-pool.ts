/**
 * A shared pool of host CPUs as the engines of one thread see it: each VM's engine asks for a turn,
 * runs its slice and hands the CPU back; the pool grants turns in the order the share policy picks and
 * keeps VMs with no work (every hart in WFI) out of the queue until they are woken. An engine's run
 * loop stays as it is, awaiting `turn()` before each slice; the pool only decides who goes next.
 */
import type { TurnGate } from "../../engines/interpreter.js";
import { type Pick, type ShareParams, SharePolicy, type ShareUsage } from "./share-policy.js";

const QUEUE_HISTORY_SECONDS = 60;

/** One second of the pool's run queue (seconds of the pool clock: performance.now() / 1000 by default). */
export interface QueueSecond {
  second: number;
  decisions: number;
  mean: number;
  max: number;
}

export interface PoolClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `callback` after about `ms`; returns a cancel function. */
  after(ms: number, callback: () => void): () => void;
}

/** The host's monotonic clock and timers (browser workers have both as well). */
export const hostClock: PoolClock = {
  now: () => performance.now(),
  after(ms, callback) {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
};

interface Waiter {
  grant: (sliceMs: number) => void;
}

export class CpuPool {
  readonly policy: SharePolicy;
  private readonly waiting = new Map<string, Waiter>();
  private running = 0;
  private cancelTimer: (() => void) | null = null;
  private queueSamples = 0;
  private queueSum = 0;
  /** Queue length per second of the pool clock, the last QUEUE_HISTORY_SECONDS with decisions in them. */
  private readonly history: QueueSecond[] = [];

  /** The pool thread's CPU clock (ms) that engines measure their turns with, where the host has one. */
  private readonly cpuMs: (() => number) | undefined;

  constructor(
    private readonly clock: PoolClock,
    options: { cpus?: number; periodMs?: number; sliceMs?: number; cpuMs?: (() => number) | null } = {},
  ) {
    this.policy = new SharePolicy(options);
    this.cpuMs = options.cpuMs ?? undefined;
  }

  add(id: string, params: ShareParams): void {
    this.policy.add(id, params, this.clock.now());
  }

  /** The pool now has `cpus` host CPUs (at most that many turns at once). */
  setCpus(cpus: number): void {
    this.policy.setCpus(cpus);
    this.dispatch();
  }

  update(id: string, params: ShareParams): void {
    this.policy.update(id, params);
    this.dispatch();
  }

  /** The VM leaves the pool (it ended); a turn it was waiting for is never granted. */
  remove(id: string): void {
    if (!this.policy.has(id)) return;
    if (this.policy.usage(id).running) this.running--;
    this.waiting.delete(id);
    this.policy.remove(id, this.clock.now());
    this.dispatch();
  }

  /**
   * Resolves with the slice (ms) `id` may run now; the VM counts as runnable until then. `usedMs`: it
   * has just run a turn of that long and goes on at once (charged and queued in one step, so it never
   * looks idle in between).
   */
  turn(id: string, usedMs?: number): Promise<number> {
    // A second request replaces the first (the first was abandoned without a cancel reaching here).
    this.waiting.delete(id);
    const now = this.clock.now();
    if (usedMs !== undefined) this.charge(id, usedMs, now);
    return new Promise<number>((grant) => {
      this.waiting.set(id, { grant });
      this.policy.setRunnable(id, true, now);
      this.dispatch();
    });
  }

  /** The VM's turn is over and it has no work (every hart waits) or stops: out of the queue. */
  end(id: string, usedMs: number): void {
    if (!this.policy.has(id)) return;
    this.waiting.delete(id);
    const now = this.clock.now();
    this.charge(id, usedMs, now);
    this.policy.setRunnable(id, false, now);
    this.dispatch();
  }

  /**
   * `id` no longer wants the turn it asked for: forgotten if it still waits, handed straight back if it
   * was granted meanwhile. Either way it leaves the queue until it asks again.
   */
  cancel(id: string): void {
    if (!this.policy.has(id)) return;
    const now = this.clock.now();
    if (!this.waiting.delete(id)) this.charge(id, 0, now);
    this.policy.setRunnable(id, false, now);
    this.dispatch();
  }

  /** Charges a turn `id` was granted; nothing when it holds none (a message that crossed a cancel). */
  private charge(id: string, usedMs: number, now: number): void {
    if (!this.policy.usage(id).running) return;
    this.policy.charge(id, usedMs, now);
    this.running--;
  }

  /** `id`'s side of the pool, as its engine takes it (RunOptions.turns). */
  gate(id: string): TurnGate {
    const gate: TurnGate = {
      turn: (usedMs) => this.turn(id, usedMs),
      end: (usedMs) => this.end(id, usedMs),
      cancel: () => this.cancel(id),
    };
    return this.cpuMs === undefined ? gate : { ...gate, cpuMs: this.cpuMs };
  }

  usage(id: string): ShareUsage {
    return this.policy.usage(id);
  }

  /** Mean run-queue length over the decisions made so far (VMs ready but waiting). */
  meanQueueLength(): number {
    return this.queueSamples === 0 ? 0 : this.queueSum / this.queueSamples;
  }

  /**
   * The run queue's length over the last minute: per second in which the pool decided anything, the
   * mean and the longest it was at its decisions (a second without decisions had nothing queued).
   */
  queueHistory(): readonly QueueSecond[] {
    return this.history.map((h) => ({ ...h }));
  }

  private recordQueue(now: number, queued: number): void {
    const second = Math.floor(now / 1000);
    const last = this.history.at(-1);
    if (last !== undefined && last.second === second) {
      last.mean += (queued - last.mean) / ++last.decisions;
      last.max = Math.max(last.max, queued);
      return;
    }
    this.history.push({ second, decisions: 1, mean: queued, max: queued });
    while (
      this.history.length > 0 &&
      (this.history[0] as QueueSecond).second <= second - QUEUE_HISTORY_SECONDS
    )
      this.history.shift();
  }

  private dispatch(): void {
    while (this.running < this.policy.cpus) {
      const now = this.clock.now();
      const pick: Pick = this.policy.pick(now);
      const queued = this.policy.queueLength();
      this.queueSamples++;
      this.queueSum += queued;
      this.recordQueue(now, queued);
      if ("idle" in pick) {
        this.armTimer(pick.until === null ? null : pick.until - now);
        return;
      }
      const waiter = this.waiting.get(pick.id);
      if (waiter === undefined) {
        // Runnable only while it waits for a turn, so this cannot happen; if it did, it must not spin.
        this.policy.charge(pick.id, 0, now);
        this.policy.setRunnable(pick.id, false, now);
        continue;
      }
      this.waiting.delete(pick.id);
      this.running++;
      waiter.grant(pick.sliceMs);
    }
  }

  private armTimer(ms: number | null): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
    if (ms === null) return;
    this.cancelTimer = this.clock.after(Math.max(0, ms), () => {
      this.cancelTimer = null;
      this.dispatch();
    });
  }
}
