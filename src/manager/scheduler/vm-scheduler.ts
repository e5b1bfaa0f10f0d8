/**
 * The daemon's CPU scheduler: where each emulated VM runs and when. A dedicated VM gets a host CPU of
 * its own (HostCpus), taken out of the shared pool, and its worker thread is pinned to it. The shared
 * VMs' threads are confined to the pool's CPUs and run only in the turns the CpuPool grants them, by
 * weight, cap and reservation; a VM whose harts all wait leaves the queue, and its thread sleeps.
 * KVM VMs' vCPU threads are the host kernel's to schedule: the scheduler says which CPUs they may use
 * and, for shared ones, their weight and cap (a cgroup of the daemon's where it can make one, else a
 * nice level from the weight and no cap).
 */

import type { CpuShare } from "../../vm/spec.js";
import { ManagerError } from "../errors.js";
import { CpuPool, hostClock, type PoolClock, type QueueSecond } from "./cpu-pool.js";
import { HostCpus } from "./host-cpus.js";
import { DEFAULT_SHARE, type ShareParams } from "./share-policy.js";

/** Where a VM's thread runs: the CPUs it is confined to, and whether it takes turns from the pool. */
export type Placement = { mode: "shared"; cpus: number[] } | { mode: "dedicated"; cpus: number[] };

/**
 * Where a KVM VM's vCPU threads run: the CPUs they are confined to, and (shared) either the weight and
 * cap their cgroup is given or, without cgroups, their nice level.
 */
export interface KvmPlacement {
  mode: "shared" | "dedicated";
  cpus: number[];
  nice: number | null;
  cgroup: { weight: number; cap: number | undefined } | null;
}

/** How the host kernel is told the shares of KVM vCPU threads. */
export type KvmCpuControl = "cgroup-v2" | "cgroup-v1" | "affinity+nice";

/**
 * A weight as a nice level: CFS gives each nice step ~1.25× the CPU of the next, so weight 100 (the
 * default) is nice 0, 125 is −1, 80 is +1; clamped to what nice allows.
 */
export function weightToNice(weight: number): number {
  return Math.max(-20, Math.min(19, Math.round(-Math.log(weight / 100) / Math.log(1.25))));
}

export interface CpuUsage {
  mode: "shared" | "dedicated";
  /** Host CPU time charged to the VM (shared VMs; a dedicated one is not metered). */
  cpuMs: number;
  /** Time it was runnable but waiting for its turn (ESXi's ready time). */
  readyMs: number;
  cpus: number[];
}

export interface SchedulerInfo {
  hostCpus: number;
  sharedCpus: number[];
  dedicated: { vm: string; cpus: number[] }[];
  /** Mean run-queue length of the shared pool over its decisions so far. */
  meanQueueLength: number;
  /** The run queue's length per second over the last minute (seconds with decisions only). */
  queueHistory: readonly QueueSecond[];
  /**
   * How KVM vCPU threads are scheduled: by the host kernel, dedicated ones pinned to their CPUs and
   * shared ones confined to the pool's, with weight and cap in a cgroup per VM, or where the daemon
   * cannot make cgroups, a nice level from their weight and no cap.
   */
  kvm: KvmCpuControl;
  /** The daemon's cgroup (cgroups in force), or why cgroups are not used. */
  kvmCgroup: { path: string } | { unavailable: string };
}

export function shareParams(share: CpuShare | undefined): ShareParams {
  return {
    weight: share?.weight ?? DEFAULT_SHARE.weight,
    cap: share?.cap ?? DEFAULT_SHARE.cap,
    reservation: share?.reservation ?? DEFAULT_SHARE.reservation,
  };
}

export class VmScheduler {
  readonly pool: CpuPool;
  private readonly cpus: HostCpus;
  private readonly placed = new Map<string, Placement>();
  /** KVM VMs: the host kernel schedules their vCPU threads; the pool does not meter them. */
  private readonly kvm = new Set<string>();
  /** Told when the shared pool's CPUs change (a dedicated VM came or went): re-pin the shared threads. */
  onSharedCpus: (cpus: number[]) => void = () => {};

  /**
   * Asked when a shared KVM VM is placed: the daemon's cgroup for KVM vCPU threads, or why there is
   * none (then weights become nice levels and caps are refused).
   */
  kvmCgroups: () => { version: "cgroup-v1" | "cgroup-v2"; path: string } | { unavailable: string } = () => ({
    unavailable: "not asked for",
  });

  constructor(options: { hostCpus: readonly number[]; sharedCpus?: number; clock?: PoolClock }) {
    this.cpus = new HostCpus(options.hostCpus, options.sharedCpus);
    this.pool = new CpuPool(options.clock ?? hostClock, { cpus: this.cpus.shared().length });
  }

  /** Admits a VM that is about to start; throws a conflict ManagerError saying why it cannot. */
  place(name: string, share: CpuShare | undefined): Placement {
    this.release(name);
    if (share?.mode === "dedicated") {
      const got = this.cpus.dedicate(name);
      if ("refusal" in got)
        throw new ManagerError("conflict", `cannot dedicate a CPU to VM '${name}': ${got.refusal}`);
      const placement: Placement = { mode: "dedicated", cpus: got.cpus };
      this.placed.set(name, placement);
      this.sharedChanged();
      return placement;
    }
    const refused = this.pool.policy.refusal(shareParams(share));
    if (refused !== null)
      throw new ManagerError("conflict", `cannot admit VM '${name}' to the shared pool: ${refused}`);
    this.pool.add(name, shareParams(share));
    const placement: Placement = { mode: "shared", cpus: this.cpus.shared() };
    this.placed.set(name, placement);
    return placement;
  }

  /**
   * Admits a KVM VM about to start: dedicated takes one host CPU per vCPU; shared confines its vCPU
   * threads to the pool's CPUs with its weight and cap (cgroups) or the nice level of its weight.
   * Throws a ManagerError saying why not.
   */
  placeKvm(name: string, share: CpuShare | undefined, vcpus: number): KvmPlacement {
    this.release(name);
    if (share?.mode === "dedicated") {
      const got = this.cpus.dedicate(name, vcpus);
      if ("refusal" in got) {
        throw new ManagerError("conflict", `cannot dedicate CPUs to VM '${name}': ${got.refusal}`);
      }
      this.placed.set(name, { mode: "dedicated", cpus: got.cpus });
      this.kvm.add(name);
      this.sharedChanged();
      return { mode: "dedicated", cpus: got.cpus, nice: null, cgroup: null };
    }
    const cgroup = this.kvmShareRefusal(name, share);
    const cpus = this.cpus.shared();
    this.placed.set(name, { mode: "shared", cpus });
    this.kvm.add(name);
    const weight = share?.weight ?? DEFAULT_SHARE.weight;
    return cgroup
      ? { mode: "shared", cpus, nice: null, cgroup: { weight, cap: share?.cap } }
      : { mode: "shared", cpus, nice: weightToNice(weight), cgroup: null };
  }

  /**
   * Throws when a KVM VM's share asks what the host cannot give; answers whether it goes to a cgroup.
   * No reservation: CFS keeps no minimum for a group of threads (a dedicated VM has its CPUs).
   */
  kvmShareRefusal(name: string, share: CpuShare | undefined): boolean {
    if ((share?.reservation ?? 0) > 0) {
      throw new ManagerError(
        "invalid",
        `VM '${name}': /cpu/reservation is not offered for KVM vCPU threads: the host kernel keeps no CPU minimum for them; make the VM dedicated for CPUs of its own`,
      );
    }
    const cgroups = this.kvmCgroups();
    if ("unavailable" in cgroups && share?.cap !== undefined) {
      throw new ManagerError(
        "invalid",
        `VM '${name}': /cpu/cap needs a cgroup for KVM vCPU threads, and this daemon has none: ${cgroups.unavailable}`,
      );
    }
    return !("unavailable" in cgroups);
  }

  /** The VM's run has ended: its CPU or its place in the pool is free again. */
  release(name: string): void {
    const placement = this.placed.get(name);
    if (placement === undefined) return;
    this.placed.delete(name);
    const kvm = this.kvm.delete(name);
    if (placement.mode === "dedicated") {
      this.cpus.release(name);
      this.sharedChanged();
    } else if (!kvm) this.pool.remove(name);
  }

  /** Whether `name` runs on KVM (its threads are the host kernel's to schedule). */
  isKvm(name: string): boolean {
    return this.kvm.has(name);
  }

  /** New weight/cap/reservation for a running shared VM; throws a conflict when they do not fit. */
  update(name: string, share: CpuShare): void {
    const placement = this.placed.get(name);
    if (placement === undefined) return;
    if (placement.mode !== share.mode) {
      throw new ManagerError(
        "conflict",
        `VM '${name}' runs ${placement.mode}: stop it to make it ${share.mode}`,
      );
    }
    if (share.mode === "shared" && !this.kvm.has(name)) {
      const params = shareParams(share);
      const refused = this.pool.policy.refusal(params, name);
      if (refused !== null) throw new ManagerError("conflict", refused);
      this.pool.update(name, params);
    }
  }

  usage(name: string): CpuUsage | null {
    const placement = this.placed.get(name);
    if (placement === undefined) return null;
    if (placement.mode === "dedicated" || this.kvm.has(name)) {
      // Not metered: a dedicated CPU is the VM's alone; KVM threads are the host kernel's to schedule.
      return { mode: placement.mode, cpuMs: 0, readyMs: 0, cpus: placement.cpus };
    }
    const u = this.pool.usage(name);
    return { mode: "shared", cpuMs: u.cpuMs, readyMs: u.readyMs, cpus: this.cpus.shared() };
  }

  info(): SchedulerInfo {
    return {
      hostCpus: this.cpus.count,
      sharedCpus: this.cpus.shared(),
      dedicated: this.cpus.dedicatedCpus().map(({ id, cpus }) => ({ vm: id, cpus })),
      meanQueueLength: this.pool.meanQueueLength(),
      queueHistory: this.pool.queueHistory(),
      ...kvmControl(this.kvmCgroups()),
    };
  }

  private sharedChanged(): void {
    const shared = this.cpus.shared();
    this.pool.setCpus(shared.length);
    for (const [name, p] of this.placed)
      if (p.mode === "shared") this.placed.set(name, { mode: "shared", cpus: shared });
    this.onSharedCpus(shared);
  }
}

function kvmControl(
  cgroups: { version: "cgroup-v1" | "cgroup-v2"; path: string } | { unavailable: string },
): Pick<SchedulerInfo, "kvm" | "kvmCgroup"> {
  if ("unavailable" in cgroups) return { kvm: "affinity+nice", kvmCgroup: cgroups };
  return { kvm: cgroups.version, kvmCgroup: { path: cgroups.path } };
}
