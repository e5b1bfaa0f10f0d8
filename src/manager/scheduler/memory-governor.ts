/**
 * Host memory among VMs: admission (reserved memory must fit the host's budget; overcommitted memory
 * may exceed what is left by a ratio) and the governor's decisions under pressure — how far to inflate
 * each overcommitted VM's balloon when the host runs low, and how far to let it go again when the
 * pressure has gone. Plain arithmetic over figures the caller gathers (host MemAvailable, each guest's
 * free memory from its balloon statistics), so it can be tested without guests; every decision says why.
 *
 * Who gives first: guests with free memory, each in proportion to its free memory divided by its weight
 * (ESXi's idea that shares entitle a VM to memory: a heavier VM gives less), never below its reservation
 * and never more than it has free. Who gets back first: in proportion to weight.
 */

export type MemoryMode = "reserved" | "overcommit";

export interface MemoryVm {
  id: string;
  /** Guest RAM, bytes. */
  memory: number;
  mode: MemoryMode;
  weight: number;
  /** Bytes the guest always keeps (the balloon never takes it below memory − reservation). */
  reservation: number;
  /** Bytes the balloon holds now (its current target). */
  ballooned: number;
  /** Bytes the guest reports free (balloon statistics), or null when it reports nothing. */
  free: number | null;
}

export interface HostMemory {
  /** What the host can still give (MemAvailable), bytes. */
  available: number;
  /** Below this the governor reclaims... */
  low: number;
  /** ...until available is back at this; above it, it gives back. */
  high: number;
}

export interface BalloonDecision {
  id: string;
  /** The balloon's new size, bytes (a multiple of 4 KiB). */
  target: number;
  reason: string;
}

const PAGE = 4096;
const pageDown = (n: number) => Math.floor(n / PAGE) * PAGE;

/** Why `candidate` cannot be admitted beside `existing` on a host with `budget` bytes, or null. */
export function memoryRefusal(
  existing: readonly Pick<MemoryVm, "memory" | "mode">[],
  candidate: Pick<MemoryVm, "memory" | "mode">,
  budget: number,
  overcommitRatio: number,
): string | null {
  const all = [...existing, candidate];
  const reserved = all.filter((v) => v.mode === "reserved").reduce((s, v) => s + v.memory, 0);
  const overcommitted = all.filter((v) => v.mode === "overcommit").reduce((s, v) => s + v.memory, 0);
  if (reserved > budget) {
    return `reserved memory would add up to ${mib(reserved)}, more than the host's ${mib(budget)}`;
  }
  const room = (budget - reserved) * overcommitRatio;
  if (overcommitted > room) {
    return `overcommitted memory would add up to ${mib(overcommitted)}, more than ${overcommitRatio} × the ${mib(budget - reserved)} not reserved`;
  }
  return null;
}

/** The balloon targets that change, given the VMs and the host's state now. */
export function governMemory(vms: readonly MemoryVm[], host: HostMemory): BalloonDecision[] {
  const candidates = vms.filter((v) => v.mode === "overcommit");
  if (host.available < host.low) return reclaim(candidates, host.high - host.available, host);
  if (host.available > host.high) return giveBack(candidates, host.available - host.high, host);
  return [];
}

/** What the balloon may still take from `v`: its free memory, above its reservation. */
function reclaimable(v: MemoryVm): number {
  const aboveReservation = v.memory - v.reservation - v.ballooned;
  const free = v.free ?? 0;
  return Math.max(0, Math.min(aboveReservation, free));
}

function reclaim(vms: readonly MemoryVm[], need: number, host: HostMemory): BalloonDecision[] {
  const take = waterFill(
    vms.map((v) => ({ id: v.id, limit: reclaimable(v), weight: (v.free ?? 0) / Math.max(1, v.weight) })),
    need,
  );
  const decisions: BalloonDecision[] = [];
  for (const v of vms) {
    const bytes = pageDown(take.get(v.id) ?? 0);
    if (bytes <= 0) continue;
    decisions.push({
      id: v.id,
      target: v.ballooned + bytes,
      reason: `host available ${mib(host.available)} < low watermark ${mib(host.low)}: take ${mib(bytes)} of the guest's ${mib(v.free ?? 0)} free`,
    });
  }
  return decisions;
}

function giveBack(vms: readonly MemoryVm[], spare: number, host: HostMemory): BalloonDecision[] {
  const back = waterFill(
    vms.map((v) => ({ id: v.id, limit: v.ballooned, weight: v.weight })),
    spare,
  );
  const decisions: BalloonDecision[] = [];
  for (const v of vms) {
    const bytes = Math.min(v.ballooned, Math.ceil((back.get(v.id) ?? 0) / PAGE) * PAGE);
    if (bytes <= 0) continue;
    decisions.push({
      id: v.id,
      target: v.ballooned - bytes,
      reason: `host available ${mib(host.available)} > high watermark ${mib(host.high)}: give back ${mib(bytes)}`,
    });
  }
  return decisions;
}

/**
 * Splits `amount` among claimants in proportion to their weights, none past its limit; what a full one
 * cannot take goes to the others. Claimants with weight 0 take nothing.
 */
export function waterFill(
  claimants: readonly { id: string; limit: number; weight: number }[],
  amount: number,
): Map<string, number> {
  const given = new Map(claimants.map((c) => [c.id, 0]));
  let left = amount;
  let open = claimants.filter((c) => c.limit > 0 && c.weight > 0);
  while (left > 1e-9 && open.length > 0) {
    const total = open.reduce((s, c) => s + c.weight, 0);
    let spent = 0;
    const still: typeof open = [];
    for (const c of open) {
      const has = given.get(c.id) ?? 0;
      const share = (left * c.weight) / total;
      const got = Math.min(share, c.limit - has);
      given.set(c.id, has + got);
      spent += got;
      if (has + got < c.limit - 1e-9) still.push(c);
    }
    left -= spent;
    if (still.length === open.length) break;
    open = still;
  }
  return given;
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
