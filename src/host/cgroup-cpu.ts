/**
 * CPU weight and cap for KVM vCPU threads through the host kernel's cgroups, the way libvirt does it:
 * the daemon makes a group of its own under the cgroup it runs in (`vireo-<pid>-<n>`) and one group per VM
 * under that, writes the VM's weight and cap there, and moves the VM's vCPU threads in by thread id.
 *
 * - cgroup v2: `cpu.weight` (1–10000, default 100: the VM spec's own scale) and `cpu.max`; thread
 *   granularity needs threaded groups, so both groups are made `threaded` and threads go to
 *   `cgroup.threads`.
 * - cgroup v1: `cpu.shares` (1024 is the default, so weight × 10.24) and `cpu.cfs_quota_us` over
 *   `cpu.cfs_period_us`; threads go to `tasks`.
 *
 * A cap is a share of one host CPU for the whole VM, as for emulated VMs. There is no reservation:
 * CFS has no minimum for a group (a dedicated VM is the way to a guaranteed CPU).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "./process-alive.js";

/** Groups opened by this process so far: each daemon (or test manager) in it has its own. */
let opened = 0;

export type CgroupVersion = "cgroup-v2" | "cgroup-v1";

/** The cap's accounting period; 100 ms is the kernel's default. */
const PERIOD_US = 100_000;
/** The smallest quota the kernel takes. */
const MIN_QUOTA_US = 1_000;

export interface CgroupSources {
  /** /proc/self/mountinfo's text. */
  mountinfo: string;
  /** /proc/self/cgroup's text. */
  selfCgroup: string;
  /** Prepended to every path read or written (tests point it at a directory of plain files). */
  root?: string;
  pid?: number;
  /** Whether a process is alive (stale groups of dead daemons are removed). */
  alive?: (pid: number) => boolean;
}

/** A VM's group: its weight and cap, and the threads in it. */
export interface VmCpuGroup {
  readonly path: string;
  set(weight: number, cap: number | undefined): void;
  /** Moves a thread (by kernel id) into the group; throws the kernel's error. */
  enter(tid: number): void;
  /** Periods the group ran out of quota in, as the kernel counts them. */
  throttledPeriods(): number;
}

export class CpuCgroups {
  private readonly groups = new Map<string, string>();

  private constructor(
    readonly version: CgroupVersion,
    /** The daemon's group: the VMs' groups are its children. */
    readonly base: string,
  ) {}

  /**
   * The daemon's group under the cgroup it runs in, made now; or why the host's cgroups cannot be used
   * (not mounted, no cpu controller there, or no permission to make a group).
   */
  static open(sources: CgroupSources = readSources()): CpuCgroups | { unavailable: string } {
    const root = sources.root ?? "";
    const pid = sources.pid ?? process.pid;
    const found = findCpuHierarchy(sources.mountinfo, sources.selfCgroup);
    if ("unavailable" in found) return found;
    const parent = join(root, found.mount, found.path);
    const base = join(parent, `vireo-${pid}-${++opened}`);
    try {
      removeStale(parent, sources.alive ?? processAlive);
      if (found.version === "cgroup-v2") {
        const controllers = readFileSync(join(parent, "cgroup.controllers"), "utf8").split(/\s+/);
        if (!controllers.includes("cpu")) {
          return { unavailable: `the cpu controller is not enabled for ${found.path} (cgroup v2)` };
        }
        mkdirSync(base, { recursive: true });
        writeFileSync(join(base, "cgroup.type"), "threaded");
        writeFileSync(join(parent, "cgroup.subtree_control"), "+cpu");
        writeFileSync(join(base, "cgroup.subtree_control"), "+cpu");
      } else {
        mkdirSync(base, { recursive: true });
      }
    } catch (e) {
      return { unavailable: `cannot make a cgroup at ${base}: ${(e as Error).message}` };
    }
    return new CpuCgroups(found.version, base);
  }

  /** The VM's group, made if new, with its weight and cap written. */
  forVm(name: string, weight: number, cap: number | undefined): VmCpuGroup {
    const path = join(this.base, `vm-${encodeURIComponent(name).replaceAll("%", "_")}`);
    if (!existsSync(path)) {
      mkdirSync(path);
      if (this.version === "cgroup-v2") writeFileSync(join(path, "cgroup.type"), "threaded");
    }
    this.groups.set(name, path);
    const group = this.group(path);
    group.set(weight, cap);
    return group;
  }

  /** Removes the VM's group once its threads are gone; false while threads remain (tried again at close). */
  release(name: string): boolean {
    const path = this.groups.get(name);
    if (path === undefined) return true;
    try {
      rmdirSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return false;
    }
    this.groups.delete(name);
    return true;
  }

  /** Removes every group this daemon made. */
  close(): void {
    for (const name of [...this.groups.keys()]) this.release(name);
    try {
      rmdirSync(this.base);
    } catch {
      // A thread that has not finished exiting keeps it: the next daemon removes it as stale.
    }
  }

  private group(path: string): VmCpuGroup {
    const v2 = this.version === "cgroup-v2";
    return {
      path,
      set(weight, cap) {
        const quota = cap === undefined ? null : Math.max(MIN_QUOTA_US, Math.round(cap * PERIOD_US));
        if (v2) {
          writeFileSync(join(path, "cpu.weight"), String(Math.max(1, Math.min(10_000, Math.round(weight)))));
          writeFileSync(join(path, "cpu.max"), `${quota ?? "max"} ${PERIOD_US}`);
        } else {
          const shares = Math.max(2, Math.min(262_144, Math.round((weight * 1024) / 100)));
          writeFileSync(join(path, "cpu.shares"), String(shares));
          writeFileSync(join(path, "cpu.cfs_period_us"), String(PERIOD_US));
          writeFileSync(join(path, "cpu.cfs_quota_us"), String(quota ?? -1));
        }
      },
      enter(tid) {
        writeFileSync(join(path, v2 ? "cgroup.threads" : "tasks"), String(tid));
      },
      throttledPeriods() {
        const stat = readFileSync(join(path, "cpu.stat"), "utf8");
        return Number(/^nr_throttled (\d+)$/m.exec(stat)?.[1] ?? 0);
      },
    };
  }
}

type Hierarchy = { version: CgroupVersion; mount: string; path: string } | { unavailable: string };

/**
 * Where the cpu controller is mounted and which of its groups this process is in: a v1 hierarchy
 * with the cpu controller if there is one (a host that mounts v1 cpu gives v2 no cpu), else v2.
 */
export function findCpuHierarchy(mountinfo: string, selfCgroup: string): Hierarchy {
  let v1: string | null = null;
  let v2: string | null = null;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const mountPoint = left.split(" ")[4];
    const [fstype, , superOptions = ""] = right.split(" ");
    if (mountPoint === undefined) continue;
    if (fstype === "cgroup2") v2 ??= mountPoint;
    if (fstype === "cgroup" && superOptions.split(",").includes("cpu")) v1 ??= mountPoint;
  }
  const lines = selfCgroup.split("\n").map((l) => l.split(":"));
  if (v1 !== null) {
    const own = lines.find(([, controllers]) => controllers?.split(",").includes("cpu"));
    if (own === undefined) return { unavailable: "this process is in no cgroup v1 cpu group" };
    return { version: "cgroup-v1", mount: v1, path: own.slice(2).join(":") };
  }
  if (v2 !== null) {
    const own = lines.find(([id, controllers]) => id === "0" && controllers === "");
    if (own === undefined) return { unavailable: "this process is in no cgroup v2 group" };
    return { version: "cgroup-v2", mount: v2, path: own.slice(2).join(":") };
  }
  return { unavailable: "no cgroup hierarchy with the cpu controller is mounted" };
}

function readSources(): CgroupSources {
  try {
    return {
      mountinfo: readFileSync("/proc/self/mountinfo", "utf8"),
      selfCgroup: readFileSync("/proc/self/cgroup", "utf8"),
    };
  } catch {
    return { mountinfo: "", selfCgroup: "" };
  }
}

/** Groups left by daemons that died without closing theirs (empty by now: their threads are gone). */
function removeStale(parent: string, alive: (pid: number) => boolean): void {
  for (const entry of readdirSync(parent, { withFileTypes: true })) {
    const pid = /^vireo-(\d+)-\d+$/.exec(entry.name)?.[1];
    if (!entry.isDirectory() || pid === undefined || alive(Number(pid))) continue;
    const dir = join(parent, entry.name);
    try {
      for (const vm of readdirSync(dir, { withFileTypes: true })) {
        if (vm.isDirectory() && vm.name.startsWith("vm-")) rmdirSync(join(dir, vm.name));
      }
      rmdirSync(dir);
    } catch {
      // Still in use (a pid reused, a thread exiting): left alone.
    }
  }
}
