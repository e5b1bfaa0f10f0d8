/**
 * The daemon's hold on KVM VMs' vCPU threads: which CPUs they may use, and for shared VMs either a
 * cgroup of their own with the VM's weight and cap (where the daemon can make cgroups) or a nice level
 * from the weight. The VmScheduler decides; this applies its decisions to the threads and keeps what
 * is needed to apply them again (new shared CPUs, a PATCH of the weight or cap).
 */
import type { VcpuPlacement } from "../engines/kvm/engine.js";
import { CpuCgroups, type VmCpuGroup } from "../host/cgroup-cpu.js";
import type { CpuShare } from "../vm/spec.js";
import type { KvmPlacement, VmScheduler } from "./scheduler/vm-scheduler.js";
import { weightToNice } from "./scheduler/vm-scheduler.js";

/** What the x86 VM offers for its vCPU threads (src/vm/x86.ts). */
export interface KvmThreadsVm {
  placeVcpus(placement: VcpuPlacement): void;
  vcpuThreads(): { threads: number[]; errors: string[] };
}

export function isKvmThreadsVm(vm: unknown): vm is KvmThreadsVm {
  return typeof vm === "object" && vm !== null && "placeVcpus" in vm && "vcpuThreads" in vm;
}

export class KvmThreads {
  private cgroups: CpuCgroups | { unavailable: string } | null = null;
  private readonly nice = new Map<string, number | null>();
  private readonly groups = new Map<string, VmCpuGroup>();

  constructor(
    scheduler: VmScheduler,
    private readonly openCgroups: () => CpuCgroups | { unavailable: string },
  ) {
    scheduler.kvmCgroups = () => {
      const c = this.open();
      return c instanceof CpuCgroups ? { version: c.version, path: c.base } : c;
    };
  }

  /** The placement for a VM's engine, from the scheduler's decision. */
  placement(name: string, p: KvmPlacement): VcpuPlacement {
    this.nice.set(name, p.nice);
    const cgroups = this.open();
    if (p.cgroup !== null && cgroups instanceof CpuCgroups) {
      this.groups.set(name, cgroups.forVm(name, p.cgroup.weight, p.cgroup.cap));
    }
    return this.vcpuPlacement(name, p.cpus, p.mode === "dedicated");
  }

  /** The shared pool's CPUs changed: a shared VM's threads may use these now. */
  replace(name: string, cpus: number[], vm: KvmThreadsVm): void {
    vm.placeVcpus(this.vcpuPlacement(name, cpus, false));
  }

  /**
   * A running shared VM's new share: its cgroup's weight and cap, or its threads' nice level. The
   * scheduler has refused what the host cannot give.
   */
  reshare(name: string, share: CpuShare, cpus: number[], vm: KvmThreadsVm): void {
    const group = this.groups.get(name);
    if (group !== undefined) {
      group.set(share.weight ?? 100, share.cap);
      return;
    }
    this.nice.set(name, weightToNice(share.weight ?? 100));
    vm.placeVcpus(this.vcpuPlacement(name, cpus, false));
  }

  /** What the VM's stats show of its threads' scheduling. */
  stats(name: string): { nice?: number; cgroup?: { path: string; throttledPeriods: number } } {
    const nice = this.nice.get(name) ?? null;
    const group = this.groups.get(name);
    let cgroup: { path: string; throttledPeriods: number } | undefined;
    if (group !== undefined) {
      try {
        cgroup = { path: group.path, throttledPeriods: group.throttledPeriods() };
      } catch {
        cgroup = { path: group.path, throttledPeriods: 0 };
      }
    }
    return { ...(nice === null ? {} : { nice }), ...(cgroup === undefined ? {} : { cgroup }) };
  }

  /** The VM's run ended (its threads are gone): its cgroup goes. */
  release(name: string): void {
    this.nice.delete(name);
    if (this.groups.delete(name) && this.cgroups instanceof CpuCgroups) this.cgroups.release(name);
  }

  close(): void {
    if (this.cgroups instanceof CpuCgroups) this.cgroups.close();
  }

  private vcpuPlacement(name: string, cpus: number[], pinEach: boolean): VcpuPlacement {
    const group = this.groups.get(name);
    return {
      cpus,
      pinEach,
      nice: this.nice.get(name) ?? null,
      ...(group === undefined ? {} : { enter: (tid: number) => group.enter(tid) }),
    };
  }

  private open(): CpuCgroups | { unavailable: string } {
    this.cgroups ??= this.openCgroups();
    return this.cgroups;
  }
}
