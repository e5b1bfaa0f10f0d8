/**
 * The memory governor's loop in the daemon: every round it reads the host's available memory, polls
 * the balloon of each running overcommitted VM (its target, what the guest holds, the guest's free
 * memory), lets `governMemory` decide, and sets the new balloon targets. Reserved VMs and VMs without
 * a balloon are never polled nor touched. Each decision goes to `onDecision` and is kept as the VM's
 * last one. The VMs and the host's figures come through functions, so tests drive it with fakes.
 */
import { readFileSync } from "node:fs";
import { freemem } from "node:os";
import type { BalloonPoll } from "../balloon.js";
import { DEFAULT_MEMORY_HIGH, DEFAULT_MEMORY_INTERVAL_MS, DEFAULT_MEMORY_LOW } from "../defaults.js";
import { type BalloonDecision, governMemory, type MemoryMode, type MemoryVm } from "./memory-governor.js";

export { DEFAULT_MEMORY_HIGH, DEFAULT_MEMORY_INTERVAL_MS, DEFAULT_MEMORY_LOW };
/**
 * Of a guest's free memory, this fraction of its RAM is never counted as reclaimable: a guest whose
 * balloon took every free page would start reclaiming its own caches or killing processes.
 */
export const GUEST_FREE_KEPT = 1 / 16;

/** Memory comes back only once available is this fraction of (high − low) above high. */
export const GIVE_BACK_MARGIN = 0.25;

/** One VM as the loop sees it. */
export interface GovernedVm {
  name: string;
  memory: number;
  mode: MemoryMode;
  weight: number;
  reservation: number;
  /**
   * Bytes the balloon holds whatever the governor decides (a target a client set): the governor
   * inflates above it and never gives back below it.
   */
  floor: number;
  /** The balloon's figures and the guest's statistics; null: no balloon, or the VM just ended. */
  poll(): Promise<BalloonPoll | null>;
  setTarget(bytes: number): Promise<void>;
}

export interface MemoryDecision {
  vm: string;
  /** The balloon's target before and after, bytes. */
  from: number;
  target: number;
  reason: string;
  /** The host's available memory the decision was made on (what it read, plus what is in flight). */
  available: number;
  at: string;
}

export interface MemoryLoopOptions {
  intervalMs: number;
  /** Bytes the host can still give (MemAvailable). */
  hostAvailable(): number | Promise<number>;
  low: number;
  high: number;
  /** The VMs that run now. */
  vms(): GovernedVm[];
  onDecision(decision: MemoryDecision): void;
  log(message: string): void;
}

/** What GET /host and tests see of the loop. */
export interface MemoryLoopState {
  intervalMs: number;
  low: number;
  high: number;
  rounds: number;
  /** From the last round: the host's available memory as read, and what it was taken to be. */
  available: number | null;
  effectiveAvailable: number | null;
  /** Per governed VM, after the last round: the balloon's target and what the guest holds. */
  balloons: Record<string, { targetBytes: number; actualBytes: number; freeBytes: number | null }>;
}

export class MemoryLoop {
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<void> | null = null;
  private readonly last = new Map<string, MemoryDecision>();
  private rounds = 0;
  private available: number | null = null;
  private effective: number | null = null;
  private balloons: MemoryLoopState["balloons"] = {};

  constructor(private readonly options: MemoryLoopOptions) {
    if (!(options.low <= options.high)) {
      throw new RangeError(`memory watermarks: low ${options.low} is above high ${options.high}`);
    }
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      // A round that outlasts the interval (a slow worker) is not stacked upon.
      if (this.running === null) void this.round();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One round now (tests call it directly); resolves when its targets are set. */
  round(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = this.govern()
      .catch((e) => this.options.log(`memory governor: ${(e as Error).message}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  lastDecision(vm: string): MemoryDecision | null {
    return this.last.get(vm) ?? null;
  }

  /** Forgets a VM's last decision (it stopped: its next run starts with its spec's balloon). */
  forget(vm: string): void {
    this.last.delete(vm);
  }

  state(): MemoryLoopState {
    return {
      intervalMs: this.options.intervalMs,
      low: this.options.low,
      high: this.options.high,
      rounds: this.rounds,
      available: this.available,
      effectiveAvailable: this.effective,
      balloons: { ...this.balloons },
    };
  }

  private async govern(): Promise<void> {
    const governed = this.options.vms().filter((v) => v.mode === "overcommit");
    const polled = await Promise.all(governed.map(async (v) => ({ v, poll: await v.poll() })));
    // Read after the polls, so that the host's figure already holds what the balloons hold.
    const available = await this.options.hostAvailable();
    const vms: MemoryVm[] = [];
    const byName = new Map<string, GovernedVm>();
    const balloons: MemoryLoopState["balloons"] = {};
    // What the guests were asked but have not done yet is on its way to (or from) the host: counting
    // it keeps a round from asking again for what the last one asked and the guest still inflates.
    let inFlight = 0;
    for (const { v, poll } of polled) {
      if (poll === null) continue;
      const { targetBytes, actualBytes } = poll.figures;
      const reported = poll.guest.updates > 0 ? poll.guest.freeMemory : undefined;
      const free = reported === undefined ? null : Math.max(0, reported - v.memory * GUEST_FREE_KEPT);
      inFlight += targetBytes - actualBytes;
      balloons[v.name] = { targetBytes, actualBytes, freeBytes: reported ?? null };
      byName.set(v.name, v);
      // The governor decides over the memory above the floor, and over its own part of the balloon.
      vms.push({
        id: v.name,
        memory: v.memory - v.floor,
        mode: v.mode,
        weight: v.weight,
        reservation: Math.min(v.reservation, v.memory - v.floor),
        ballooned: Math.max(0, targetBytes - v.floor),
        free,
      });
    }
    const effective = available + inFlight;
    this.rounds++;
    this.available = available;
    this.effective = effective;
    this.balloons = balloons;
    const { low, high } = this.options;
    // A reclaim aims at the high watermark exactly, and the balloon figures race the guest's driver
    // (and MemAvailable moves with everything on the host): giving back only past a margin above high
    // keeps the balloons from chattering around it.
    if (effective > high && effective - high < (high - low) * GIVE_BACK_MARGIN) return;
    const decisions = governMemory(vms, { available: effective, low, high });
    await Promise.all(
      decisions.map((d) => {
        const vm = byName.get(d.id);
        return vm === undefined
          ? undefined
          : this.apply({ ...d, target: vm.floor + d.target }, vm, effective);
      }),
    );
  }

  private async apply(d: BalloonDecision, vm: GovernedVm, available: number): Promise<void> {
    const from = this.balloons[d.id]?.targetBytes ?? 0;
    if (d.target === from) return;
    await vm.setTarget(d.target);
    const balloon = this.balloons[d.id];
    if (balloon !== undefined) balloon.targetBytes = d.target;
    const decision: MemoryDecision = {
      vm: d.id,
      from,
      target: d.target,
      reason: d.reason,
      available,
      at: new Date().toISOString(),
    };
    this.last.set(d.id, decision);
    this.options.onDecision(decision);
  }
}

/** The host's MemAvailable (bytes) from /proc/meminfo; where there is none, what Node calls free. */
export function hostMemAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "latin1"));
    if (m !== null) return Number(m[1]) * 1024;
  } catch {
    // No procfs: fall through.
  }
  return freemem();
}
