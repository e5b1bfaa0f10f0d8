/**
 * Who runs next on a pool of host CPUs shared by many VMs: a proportional-share policy with caps and
 * reservations (Xen's credit scheduler's weight and cap, ESXi's shares, limit and reservation), kept
 * apart from threads and engines so that it can be tested on a fake clock and so that its unit (a VM
 * today) can become the vCPU.
 *
 * - Shares: each runnable VM has a virtual time that advances by the CPU time it used divided by its
 *   weight; the one furthest behind runs next (stride scheduling). A VM that wakes up starts at the
 *   smallest virtual time of those competing, so sleeping earns no credit to spend in a burst later.
 * - Caps and reservations are fractions of one host CPU, accounted per period: a VM that has used its
 *   cap this period is not picked again until the next; a VM below its reservation is picked before
 *   anyone who is not. A reserved VM's time counts against its virtual time too, so over time it gets
 *   the larger of its reservation and its weighted share.
 * - Ready time (ESXi's %RDY): how long a VM was runnable but waiting for a CPU.
 * Time is whatever the caller says it is (milliseconds, monotonic): the policy reads no clock itself.
 */

export interface ShareParams {
  /** Relative share, 1–10000 (cgroup v2 cpu.weight's range; 100 is the default). */
  weight: number;
  /** At most this fraction of one host CPU (0 < cap ≤ 1); null: no cap. */
  cap: number | null;
  /** At least this fraction of one host CPU when it wants it (0 ≤ reservation ≤ 1). */
  reservation: number;
}

export const DEFAULT_SHARE: ShareParams = { weight: 100, cap: null, reservation: 0 };

export interface ShareUsage {
  /** CPU time charged to the VM. */
  cpuMs: number;
  /** Time it was runnable but not running. */
  readyMs: number;
  runnable: boolean;
  running: boolean;
}

/** What a free CPU should do: run `id` for at most `sliceMs`, or wait (nothing may run until `until`). */
export type Pick = { id: string; sliceMs: number } | { idle: true; until: number | null };

interface Entry {
  params: ShareParams;
  /** Virtual time: CPU time / weight, scaled. */
  pass: number;
  runnable: boolean;
  running: boolean;
  /** CPU time used in the current period. */
  periodUsed: number;
  /** What a capped VM ran past its cap in earlier periods (a turn ends late): it pays it back first. */
  capDebt: number;
  cpuMs: number;
  readyMs: number;
  /** When it last became ready (runnable and not running); null when it is not ready. */
  readySince: number | null;
}

/** Virtual time per millisecond at weight 1 (large so that weight 10000 still moves it). */
const PASS_SCALE = 10_000;
/** A share this close to its cap or reservation counts as having reached it (float accounting). */
const EPSILON_MS = 1e-6;

export class ShareError extends Error {}

export function validateShare(params: ShareParams): string | null {
  const { weight, cap, reservation } = params;
  if (!Number.isInteger(weight) || weight < 1 || weight > 10_000) return "weight must be an integer 1–10000";
  if (cap !== null && !(cap > 0 && cap <= 1)) return "cap must be a fraction of one CPU in (0, 1]";
  if (!(reservation >= 0 && reservation <= 1)) return "reservation must be a fraction of one CPU in [0, 1]";
  if (cap !== null && reservation > cap) return "reservation must not exceed cap";
  return null;
}

export class SharePolicy {
  private readonly entries = new Map<string, Entry>();
  private period = 0;
  readonly periodMs: number;
  readonly sliceMs: number;
  /** Host CPUs in the pool: reservations must fit in them. */
  private cpuCount: number;

  constructor(options: { cpus?: number; periodMs?: number; sliceMs?: number } = {}) {
    this.cpuCount = options.cpus ?? 1;
    this.periodMs = options.periodMs ?? 100;
    this.sliceMs = options.sliceMs ?? 10;
    if (
      !(this.cpuCount >= 1) ||
      !(this.periodMs > 0) ||
      !(this.sliceMs > 0 && this.sliceMs <= this.periodMs)
    ) {
      throw new ShareError("a pool needs cpus ≥ 1 and 0 < sliceMs ≤ periodMs");
    }
  }

  get cpus(): number {
    return this.cpuCount;
  }

  /**
   * The pool grew or shrank (a CPU was dedicated or given back). Reservations admitted before stay:
   * a smaller pool may then hold more than it could admit now, which the next admission sees.
   */
  setCpus(cpus: number): void {
    if (!(cpus >= 1)) throw new ShareError("a pool needs cpus ≥ 1");
    this.cpuCount = cpus;
  }

  /** Why `params` cannot join (or change to) the pool, or null: its reservation must still fit. */
  refusal(params: ShareParams, replacing?: string): string | null {
    const invalid = validateShare(params);
    if (invalid !== null) return invalid;
    let reserved = params.reservation;
    for (const [id, e] of this.entries) if (id !== replacing) reserved += e.params.reservation;
    if (reserved > this.cpus + EPSILON_MS) {
      return `the pool's ${this.cpus} CPU(s) cannot hold reservations adding up to ${round(reserved)} CPU`;
    }
    return null;
  }

  add(id: string, params: ShareParams, now: number): void {
    if (this.entries.has(id)) throw new ShareError(`'${id}' is already in the pool`);
    const refused = this.refusal(params);
    if (refused !== null) throw new ShareError(refused);
    this.roll(now);
    this.entries.set(id, {
      params: { ...params },
      pass: this.minPass(),
      runnable: false,
      running: false,
      periodUsed: 0,
      capDebt: 0,
      cpuMs: 0,
      readyMs: 0,
      readySince: null,
    });
  }

  update(id: string, params: ShareParams): void {
    const e = this.entry(id);
    const refused = this.refusal(params, id);
    if (refused !== null) throw new ShareError(refused);
    e.params = { ...params };
  }

  remove(id: string, now: number): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.settleReady(e, now);
    this.entries.delete(id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The VM has work (a hart is not waiting in WFI), or has none: only runnable VMs are picked. */
  setRunnable(id: string, runnable: boolean, now: number): void {
    const e = this.entry(id);
    if (e.runnable === runnable) return;
    if (runnable) {
      // Waking up: no credit for the time asleep.
      e.pass = Math.max(e.pass, this.minPass(id));
      e.runnable = true;
      if (!e.running) e.readySince = now;
    } else {
      this.settleReady(e, now);
      e.runnable = false;
    }
  }

  /** Chooses what a free CPU runs now; the chosen VM is marked running until `charge`. */
  pick(now: number): Pick {
    this.roll(now);
    let best: Entry | null = null;
    let bestId = "";
    let bestReserved = false;
    let bestKey = Number.POSITIVE_INFINITY;
    let anyCapped = false;
    for (const [id, e] of this.entries) {
      if (!e.runnable || e.running) continue;
      if (this.capLeft(e) <= EPSILON_MS) {
        anyCapped = true;
        continue;
      }
      const reserveLeft = e.params.reservation * this.periodMs - e.periodUsed;
      const reserved = reserveLeft > EPSILON_MS;
      // Below its reservation comes first, the least served of those first; then the smallest pass.
      const key = reserved ? e.periodUsed / (e.params.reservation * this.periodMs) : e.pass;
      if ((reserved && !bestReserved) || (reserved === bestReserved && key < bestKey)) {
        best = e;
        bestId = id;
        bestReserved = reserved;
        bestKey = key;
      }
    }
    if (best === null) return { idle: true, until: anyCapped ? (this.period + 1) * this.periodMs : null };
    let slice = Math.min(this.sliceMs, this.capLeft(best), (this.period + 1) * this.periodMs - now);
    if (bestReserved) slice = Math.min(slice, best.params.reservation * this.periodMs - best.periodUsed);
    slice = Math.max(slice, EPSILON_MS);
    this.settleReady(best, now);
    best.running = true;
    return { id: bestId, sliceMs: slice };
  }

  /** The VM ran `usedMs` of CPU time and gave the CPU back at `now`. */
  charge(id: string, usedMs: number, now: number): void {
    const e = this.entry(id);
    if (!e.running) throw new ShareError(`'${id}' was not running`);
    const used = Math.max(0, usedMs);
    e.running = false;
    e.cpuMs += used;
    e.pass += (used * PASS_SCALE) / e.params.weight;
    // A slice that crossed into a new period counts in the new one (roll() has not cleared it yet).
    this.roll(now);
    e.periodUsed += used;
    if (e.runnable) e.readySince = now;
  }

  usage(id: string): ShareUsage {
    const e = this.entry(id);
    return { cpuMs: e.cpuMs, readyMs: e.readyMs, runnable: e.runnable, running: e.running };
  }

  /** VMs runnable and waiting for a CPU now (the run queue's length). */
  queueLength(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.runnable && !e.running) n++;
    return n;
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (e === undefined) throw new ShareError(`'${id}' is not in the pool`);
    return e;
  }

  private capLeft(e: Entry): number {
    if (e.params.cap === null) return Number.POSITIVE_INFINITY;
    return e.params.cap * this.periodMs - e.periodUsed - e.capDebt;
  }

  private settleReady(e: Entry, now: number): void {
    if (e.readySince !== null) e.readyMs += Math.max(0, now - e.readySince);
    e.readySince = null;
  }

  /** The smallest virtual time among the VMs competing (other than `except`); 0 when none. */
  private minPass(except?: string): number {
    let min = Number.POSITIVE_INFINITY;
    for (const [id, e] of this.entries) {
      if (id !== except && (e.runnable || e.running)) min = Math.min(min, e.pass);
    }
    return Number.isFinite(min) ? min : 0;
  }

  private roll(now: number): void {
    const period = Math.floor(now / this.periodMs);
    if (period <= this.period) return;
    const periods = period - this.period;
    this.period = period;
    for (const e of this.entries.values()) {
      if (e.params.cap !== null) {
        // Every period that passed forgives one period's allowance of the overrun.
        const allowance = e.params.cap * this.periodMs * periods;
        e.capDebt = Math.max(0, e.periodUsed + e.capDebt - allowance);
      } else e.capDebt = 0;
      e.periodUsed = 0;
    }
  }
}

function round(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}
