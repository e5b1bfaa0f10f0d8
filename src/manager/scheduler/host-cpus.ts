/**
 * The host CPUs a daemon may use, split between dedicated VMs (one CPU each, taken from everyone else)
 * and the shared pool (the rest: the shared VMs, the daemon's own thread, the KVM vCPUs that share).
 * The shared pool always keeps at least one CPU, so the daemon itself can still run.
 */
export class HostCpus {
  /** VM id → its dedicated CPUs (one per vCPU). */
  private readonly dedicated = new Map<string, number[]>();
  private readonly all: readonly number[];

  /**
   * `all`: the CPUs this process may run on (its affinity). `sharedCpus`: how many of them the shared
   * pool may use at most (default: all that are not dedicated).
   */
  constructor(
    all: readonly number[],
    private readonly sharedCpus?: number,
  ) {
    if (all.length === 0) throw new Error("no host CPUs to run on");
    this.all = [...all].sort((a, b) => a - b);
  }

  /**
   * Takes `count` CPUs for `id` (the highest free ones: CPU 0 tends to get the host's interrupts), or
   * says why it cannot.
   */
  dedicate(id: string, count = 1): { cpus: number[] } | { refusal: string } {
    const held = this.dedicated.get(id);
    if (held !== undefined) return { cpus: held };
    const free = this.all.filter((c) => !this.isDedicated(c));
    if (free.length - count < 1) {
      const taken = [...this.dedicated.values()].reduce((n, c) => n + c.length, 0);
      return {
        refusal: `no host CPU left to dedicate: ${count} wanted, ${this.all.length} CPU(s), ${taken} dedicated, and the shared pool keeps one`,
      };
    }
    const cpus = free.slice(free.length - count);
    this.dedicated.set(id, cpus);
    return { cpus };
  }

  release(id: string): void {
    this.dedicated.delete(id);
  }

  /** The CPUs of the shared pool (those not dedicated, at most `sharedCpus` of them). */
  shared(): number[] {
    const rest = this.all.filter((c) => !this.isDedicated(c));
    return this.sharedCpus === undefined ? rest : rest.slice(0, Math.max(1, this.sharedCpus));
  }

  dedicatedCpus(): { id: string; cpus: number[] }[] {
    return [...this.dedicated].map(([id, cpus]) => ({ id, cpus }));
  }

  get count(): number {
    return this.all.length;
  }

  private isDedicated(cpu: number): boolean {
    for (const c of this.dedicated.values()) if (c.includes(cpu)) return true;
    return false;
  }
}
