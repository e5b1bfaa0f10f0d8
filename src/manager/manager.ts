/**
 * VmManager: the VMs one daemon owns, by name and id. It validates and keeps their definitions (on
 * disk when it has a state directory), builds a fresh Vm through createVm each time one starts (a Vm
 * runs once; the definition outlives its runs), checks that each action fits the VM's state, and keeps
 * each VM's console output in a ring buffer.
 *
 * Where VMs run: given `vmWorker`, each riscv64 VM runs in a worker thread of its own (WorkerVm), so
 * whatever its devices throw, even outside its run loop, ends that VM `failed` and nothing else (its
 * `switch:` NICs reach this thread's switches through bounded frame links); the thread comes from a
 * pool of `warmWorkers` started ahead of need (worker-pool.ts) when one waits. x86_64 VMs run in this
 * process (KVM already gives each vCPU a thread; the devices answer on this one), as does every VM when
 * `vmWorker` is absent. In this process, a VM whose engine or devices throw ends `failed`
 * with the reason (VmBase catches its run), and every call into one VM is guarded here.
 */
import { randomUUID } from "node:crypto";
import { type Stats, statSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { isAbsolute } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { ByteSink } from "../devices/byte-sink.js";
import { CpuCgroups } from "../host/cgroup-cpu.js";
import { confineOtherThreads } from "../host/other-threads.js";
import { threadCpuMs } from "../host/thread-cpu.js";
import { available as libcAvailable, threadAffinity } from "../hypervisor/libc.js";
import { encodeFrame, FrameType, textFrame } from "../snapshot/migration-wire.js";
import { clonesDir } from "../snapshot/store.js";
import { UserError } from "../util/errors.js";
import { type BackendOverrides, overrideBackends } from "../vm/backend-overrides.js";
import { createVm } from "../vm/create.js";
import type { VmHost } from "../vm/host.js";
import { openSnapshot } from "../vm/restore.js";
import type { IncomingMigration } from "../vm/riscv-migrate.js";
import {
  type CpuShare,
  CpuShareSchema,
  cpuShareProblems,
  type DriveSpec,
  type NicSpec,
  type SpecProblem,
  type VmSpec,
  VmSpecError,
  validateVmSpec,
} from "../vm/spec.js";
import type {
  MigrateOptions,
  MigrationChannel,
  MigrationResult,
  SnapshotResult,
  Vm,
  VmExit,
  VmState,
  VmStateName,
  VmStats,
} from "../vm/vm.js";
import { AgentSockets } from "./agent-wiring.js";
import { type BalloonFigures, balloonPoll, balloonRequest } from "./balloon.js";
import { ConsoleRing } from "./console-ring.js";
import { ManagerError } from "./errors.js";
import { GuestAgent } from "./guest-agent.js";
import { isKvmThreadsVm, KvmThreads } from "./kvm-threads.js";
import { connectMigration, listenForMigration, readStart } from "./migration-socket.js";
import { PoolManager } from "./pools.js";
import { memoryRefusal } from "./scheduler/memory-governor.js";
import {
  DEFAULT_MEMORY_HIGH,
  DEFAULT_MEMORY_INTERVAL_MS,
  DEFAULT_MEMORY_LOW,
  type GovernedVm,
  hostMemAvailable,
  type MemoryDecision,
  MemoryLoop,
  type MemoryLoopState,
} from "./scheduler/memory-loop.js";
import { type Placement, type SchedulerInfo, VmScheduler } from "./scheduler/vm-scheduler.js";
import { cloneMacs, copyDrives, freeVsockCid } from "./snapshot-clone.js";
import { type DamagedRecord, DefinitionStore, type VmRecord } from "./store.js";
import { SuspendedVms } from "./suspend.js";
import { DEFAULT_WARM_WORKERS, WorkerPool } from "./worker-pool.js";
import type { WorkerFault, WorkerRestore } from "./worker-protocol.js";
import { WorkerVm } from "./worker-vm.js";

/** Overcommitted memory may be this many times what is not reserved, unless the daemon says otherwise. */
export const DEFAULT_OVERCOMMIT = 1.5;

export type VmAction = "start" | "pause" | "resume" | "stop" | "kill" | "reboot";
export const VM_ACTIONS: readonly VmAction[] = ["start", "pause", "resume", "stop", "kill", "reboot"];

/**
 * What GET /events streams: a VM defined, deleted, or changing state (with the VM as it is then), or
 * the memory governor setting its balloon's target (`memory` says from what, to what, and why).
 */
export interface VmEvent {
  type: "created" | "deleted" | "state" | "memory";
  vm: VmInfo;
  memory?: MemoryDecision;
}

/** The memory governor's settings; a watermark at most 1 is a fraction of the memory budget. */
export interface MemoryGovernorOptions {
  /** Default DEFAULT_MEMORY_INTERVAL_MS. */
  intervalMs?: number;
  /** Bytes, or a fraction of the budget (default DEFAULT_MEMORY_LOW, DEFAULT_MEMORY_HIGH). */
  low?: number;
  high?: number;
  /** The host's available memory in bytes (default: MemAvailable from /proc/meminfo). */
  hostAvailable?: () => number | Promise<number>;
}

/**
 * The label that, with `testHooks` on, makes a VM fail after its first 64 console bytes (tests of
 * failure isolation): "console" (its console device throws), and in a worker only "uncaught" (an
 * exception outside the run loop) and "exit" (the worker thread exits).
 */
export const FAULT_LABEL = "vireo.test/fault";
const WORKER_FAULTS: readonly string[] = ["console", "uncaught", "exit"] satisfies WorkerFault[];

export interface VmManagerOptions {
  /** Where definitions persist; null keeps them in memory only. */
  stateDir: string | null;
  /** The host services for one VM whose console output goes to `console`. */
  host(console: ByteSink): VmHost;
  log(message: string): void;
  /** Honours FAULT_LABEL; only a test sets this. */
  testHooks?: boolean;
  /**
   * The entry module of VM worker threads (src/cli/vm-worker.ts); given, riscv64 VMs run in workers of
   * their own. Absent, every VM runs in this process (the host above serves them all).
   */
  vmWorker?: URL;
  /** Workers kept started ahead of need for riscv64 VMs (default DEFAULT_WARM_WORKERS; 0: none). */
  warmWorkers?: number;
  /** The host CPUs the scheduler may use (default: this process's affinity). */
  hostCpus?: readonly number[];
  /** How many of them the shared pool may use at most (default: every one not dedicated). */
  sharedCpus?: number;
  /** Bytes of host memory VMs may reserve (default: the host's total memory). */
  memoryBudget?: number;
  /** Overcommitted VMs' memory may add up to this × what is not reserved (default 1.5). */
  overcommit?: number;
  /** The memory governor's loop (see memory-loop.ts); absent or null: none (the daemon runs one). */
  memoryGovernor?: MemoryGovernorOptions | null;
  /**
   * At shutdown, save running riscv64 VMs as snapshots in the state directory (instead of stopping
   * them) and continue them at the next open (`vireo daemon --suspend-on-exit`).
   */
  suspendOnExit?: boolean;
  /** The cgroups for shared KVM VMs' vCPU threads (default: a group made under this process's own). */
  kvmCgroups?: () => CpuCgroups | { unavailable: string };
}

/** A VM as the API shows it. */
export interface VmInfo {
  id: string;
  name: string;
  state: VmStateName;
  /** Why it failed (state "failed"). */
  reason?: string;
  /** How its last run ended (state "stopped"). */
  exit?: VmExit;
  labels: Record<string, string>;
  autostart: boolean;
  createdAt: string;
  spec: VmSpec;
}

interface Entry {
  record: VmRecord;
  /** The current or last run; null before the first start. */
  vm: Vm | null;
  console: ConsoleRing;
  /** A start that failed before the Vm existed (createVm threw something other than bad input). */
  startFailure: string | null;
  /** An action is under way (a start building its Vm, a stop in its grace period, a delete). */
  busy: string | null;
  /**
   * What the balloon holds whatever the memory governor decides: the spec's target at start, then the
   * last one set through the API. The governor inflates above it and gives back down to it.
   */
  balloonFloor: number;
  /** The next start continues this snapshot's guest instead of booting (once: set by a restore/clone). */
  restore?: WorkerRestore | null;
  /** The next start receives this live migration instead of booting (once: set by migrateIn). */
  incoming?: IncomingMigration | null;
}

/** POST /vms from a snapshot: `restore` continues the saved VM under a new name, `clone` copies it. */
export interface FromSnapshot extends BackendOverrides {
  name: string;
  restore?: string;
  clone?: string;
  /** Other image files for drives, by drive id (a clone's default: copies under the snapshot's clones/). */
  drives?: Record<string, string>;
}

export class VmManager {
  private readonly entries = new Map<string, Entry>();
  /** Listeners waiting for an incoming migration, by the name the VM will have. */
  private readonly migrationListeners = new Map<string, { close(): void }>();
  private readonly store: DefinitionStore | null;
  private readonly listeners = new Set<(event: VmEvent) => void>();
  /** Definition files that could not be read back when the manager opened. */
  readonly damaged: readonly DamagedRecord[];
  private readonly pool: WorkerPool | null;
  readonly scheduler: VmScheduler;
  /** KVM VMs' vCPU threads: their CPUs, and their cgroup or nice level. */
  private readonly kvmThreads: KvmThreads;
  /** Null when the options turned it off. */
  readonly memoryLoop: MemoryLoop | null;
  /** Warm pools of VMs made from this manager's VMs (pools.ts). */
  readonly pools: PoolManager;
  /** The guest agents of the VMs' current runs, by name (see agent()). */
  private readonly agents = new Map<string, GuestAgent>();
  private readonly agentSockets = new AgentSockets();

  private constructor(
    private readonly options: VmManagerOptions,
    store: DefinitionStore | null,
    damaged: DamagedRecord[],
  ) {
    this.store = store;
    this.damaged = damaged;
    this.suspended = options.stateDir === null ? null : new SuspendedVms(options.stateDir);
    this.pool =
      options.vmWorker === undefined
        ? null
        : new WorkerPool(options.vmWorker, options.warmWorkers ?? DEFAULT_WARM_WORKERS);
    this.scheduler = new VmScheduler({
      hostCpus: options.hostCpus ?? hostCpus(),
      ...(options.sharedCpus === undefined ? {} : { sharedCpus: options.sharedCpus }),
    });
    this.kvmThreads = new KvmThreads(this.scheduler, options.kvmCgroups ?? (() => CpuCgroups.open()));
    this.memoryLoop = options.memoryGovernor == null ? null : this.newMemoryLoop(options.memoryGovernor);
    const processCpus = hostCpus();
    this.pools = new PoolManager(this, options.stateDir, options.log);
    this.scheduler.onSharedCpus = (cpus) => {
      for (const e of this.entries.values()) {
        const name = e.record.spec.name;
        if (this.scheduler.usage(name)?.mode !== "shared") continue;
        if (e.vm instanceof WorkerVm) e.vm.setAffinity(cpus);
        else if (isKvmThreadsVm(e.vm)) this.kvmThreads.replace(name, cpus, e.vm);
      }
      this.confineDaemonThreads(processCpus);
    };
  }

  /** Reads the definitions back and starts the autostart VMs (a start that fails is logged). */
  static async open(options: VmManagerOptions): Promise<VmManager> {
    const store = options.stateDir === null ? null : new DefinitionStore(options.stateDir);
    const loaded = store?.load() ?? { records: [], damaged: [] };
    const manager = new VmManager(options, store, loaded.damaged);
    for (const d of loaded.damaged) options.log(`skipping damaged definition ${d.file}: ${d.reason}`);
    for (const record of loaded.records) manager.entries.set(record.spec.name, manager.newEntry(record));
    manager.memoryLoop?.start();
    await manager.pools.open();
    for (const entry of manager.entries.values()) {
      const suspended = manager.suspended?.find(entry.record.id) ?? null;
      if (suspended !== null && (await manager.resumeSuspended(entry, suspended))) continue;
      if (entry.record.spec.autostart !== true) continue;
      try {
        await manager.start(entry);
      } catch (e) {
        options.log(`autostart of '${entry.record.spec.name}' failed: ${(e as Error).message}`);
      }
    }
    return manager;
  }

  /** Calls `listener` with each later event, in order; returns a function that removes it. */
  onEvent(listener: (event: VmEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(type: VmEvent["type"], vm: VmInfo, memory?: MemoryDecision): void {
    for (const l of [...this.listeners]) {
      // A listener is a client's stream; its failure is not the VM's nor the manager's.
      try {
        l(memory === undefined ? { type, vm } : { type, vm, memory });
      } catch (e) {
        this.options.log(`event listener failed: ${(e as Error).message}`);
      }
    }
  }

  /** Console input for a running or paused VM (a stopped one has nobody to read it). */
  input(idOrName: string, bytes: Uint8Array): void {
    const entry = this.find(idOrName);
    const state = this.state(entry).name;
    const vm = entry.vm;
    if ((state !== "running" && state !== "paused") || vm === null) {
      throw new ManagerError("conflict", `VM '${entry.record.spec.name}' is ${state}: no console input`);
    }
    this.guard(entry, () => vm.input(bytes));
  }

  private newEntry(record: VmRecord): Entry {
    return { record, vm: null, console: new ConsoleRing(), startFailure: null, busy: null, balloonFloor: 0 };
  }

  /**
   * Defines a VM. The same spec under a name already taken returns that VM (`created` false), so a
   * client can retry; a different one is a conflict.
   */
  create(body: unknown): { vm: VmInfo; created: boolean } {
    let spec: VmSpec;
    try {
      spec = validateVmSpec(body);
    } catch (e) {
      if (e instanceof VmSpecError) throw new ManagerError("invalid", e.message, e.problems);
      throw e;
    }
    const existing = this.entries.get(spec.name);
    if (existing !== undefined) {
      if (canonicalJson(existing.record.spec) === canonicalJson(spec)) {
        return { vm: this.info(existing), created: false };
      }
      throw new ManagerError("conflict", `a different VM named '${spec.name}' exists`);
    }
    const problems = pathProblems(spec);
    if (problems.length > 0) {
      throw new ManagerError("invalid", problems.map((p) => `${p.path}: ${p.message}`).join("; "), problems);
    }
    const record: VmRecord = { id: randomUUID(), spec, createdAt: new Date().toISOString() };
    this.store?.save(record);
    const entry = this.newEntry(record);
    this.entries.set(spec.name, entry);
    this.options.log(`defined VM '${spec.name}' (${record.id})`);
    this.emit("created", this.info(entry));
    return { vm: this.info(entry), created: true };
  }

  /** Checks a spec as create does (schema, cross-checks, files), without defining anything. */
  check(body: unknown): VmSpec {
    let spec: VmSpec;
    try {
      spec = validateVmSpec(body);
    } catch (e) {
      if (e instanceof VmSpecError) throw new ManagerError("invalid", e.message, e.problems);
      throw e;
    }
    const problems = pathProblems(spec);
    if (problems.length > 0) {
      throw new ManagerError("invalid", problems.map((p) => `${p.path}: ${p.message}`).join("; "), problems);
    }
    return spec;
  }

  /**
   * Defines a VM from a snapshot and starts it: the guest goes on where it was saved. A clone gets new
   * MACs, a free vsock CID and copies of the disks (see snapshot-clone.ts). Nothing stays defined when
   * the snapshot cannot be read or the VM cannot be built.
   */
  async createFromSnapshot(body: FromSnapshot): Promise<VmInfo> {
    const path = body.clone ?? body.restore;
    const clone = body.clone !== undefined;
    if (path === undefined || (body.clone !== undefined && body.restore !== undefined)) {
      throw new ManagerError("invalid", "give either restore or clone, with the snapshot's directory");
    }
    if (!isAbsolute(path)) {
      const message = "must be an absolute path (the daemon's working directory is not yours)";
      const field = clone ? "/clone" : "/restore";
      throw new ManagerError("invalid", `${field}: ${message}`, [{ path: field, message }]);
    }
    relativeSocketOverride(body);
    if (this.entries.has(body.name)) throw new ManagerError("conflict", `a VM named '${body.name}' exists`);
    const host = this.options.host(new ConsoleRing());
    let spec: VmSpec;
    try {
      const drives = { ...body.drives };
      let cloneOf: { macs: string[]; vsockCid: number | null } | undefined;
      if (clone) {
        const saved = (await openSnapshot(path, host)).spec;
        const own = saved.drives.filter((d) => drives[d.id] === undefined);
        Object.assign(drives, copyDrives(own, clonesDir(path, body.name)));
        cloneOf = {
          macs: cloneMacs(saved.nics.length),
          vsockCid:
            saved.vsock === undefined
              ? null
              : freeVsockCid([...this.entries.values()].map((e) => e.record.spec)),
        };
      }
      spec = (
        await openSnapshot(path, host, {
          name: body.name,
          drives,
          ...backendOverrides(body),
          ...(cloneOf === undefined ? {} : { clone: cloneOf }),
        })
      ).spec;
    } catch (e) {
      if (e instanceof VmSpecError) throw new ManagerError("invalid", e.message, e.problems);
      if (e instanceof UserError) throw new ManagerError("invalid", e.message);
      throw new ManagerError("invalid", `${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const record: VmRecord = { id: randomUUID(), spec, createdAt: new Date().toISOString() };
    const entry = this.newEntry(record);
    entry.restore = { path, clone };
    this.entries.set(spec.name, entry);
    // Listeners hear of the VM before its state changes; a restore that fails takes it away again.
    this.emit("created", this.info(entry));
    const forget = (error: unknown): never => {
      this.entries.delete(spec.name);
      this.emit("deleted", this.info(entry));
      throw error;
    };
    try {
      await this.start(entry);
    } catch (e) {
      forget(e);
    }
    if (entry.vm === null) {
      const why = entry.startFailure ?? "the VM did not build";
      forget(new ManagerError("invalid", `cannot restore ${path}: ${why}`));
    }
    // Saved as a definition like any other: a later start (or the daemon's next run) boots it afresh.
    this.store?.save(record);
    this.options.log(`${clone ? "cloned" : "restored"} VM '${spec.name}' (${record.id}) from ${path}`);
    return this.info(entry);
  }

  /**
   * Saves a running or paused VM (riscv64, or x86_64 on KVM) into the directory `path` (absolute); a running one goes on
   * unless `resume` is false.
   */
  async snapshot(
    idOrName: string,
    body: { path: string; resume?: boolean; compression?: "none" | "zlib" },
  ): Promise<SnapshotResult & { path: string }> {
    const entry = this.find(idOrName);
    const name = entry.record.spec.name;
    if (!isAbsolute(body.path)) {
      const message = "must be an absolute path (the daemon's working directory is not yours)";
      throw new ManagerError("invalid", `/path: ${message}`, [{ path: "/path", message }]);
    }
    const state = this.state(entry).name;
    const vm = entry.vm;
    if (entry.busy !== null) throw new ManagerError("conflict", `VM '${name}' is ${entry.busy}`);
    if ((state !== "running" && state !== "paused") || vm === null) {
      throw new ManagerError("conflict", `cannot snapshot VM '${name}': it is ${state}`);
    }
    if (vm.saveSnapshot === undefined) {
      throw new ManagerError(
        "conflict",
        `VM '${name}': snapshots are not supported for ${entry.record.spec.arch}`,
      );
    }
    this.claim(entry, "taking a snapshot");
    try {
      // The guest's qemu-ga must not be holding our link when saved: a restore resets the guest's vsock
      // connections, and qemu-ga exits when its connection breaks (it survives a clean close).
      if (state === "running") await this.agents.get(name)?.release();
      const result = await vm.saveSnapshot(body.path, {
        ...(body.resume === undefined ? {} : { resume: body.resume }),
        ...(body.compression === undefined ? {} : { compression: body.compression }),
      });
      this.options.log(`VM '${name}': snapshot saved to ${body.path}`);
      return { ...result, path: body.path };
    } catch (e) {
      if (e instanceof UserError) throw new ManagerError("invalid", e.message);
      throw e;
    } finally {
      entry.busy = null;
    }
  }

  /**
   * Waits for one incoming live migration at `listen` (an absolute Unix socket path, or host:port on
   * loopback); the VM it brings is defined here as `name` and runs once it has arrived. Resolves as soon
   * as the listener is open; the source's migrate call reports how the migration went.
   */
  async migrateIn(
    body: { name: string; listen: string } & BackendOverrides,
  ): Promise<{ name: string; listen: string }> {
    const { name, listen } = body;
    relativeSocketOverride(body);
    if (this.entries.has(name) || this.migrationListeners.has(name)) {
      throw new ManagerError("conflict", `a VM named '${name}' exists or is on its way`);
    }
    if (!listen.includes(":") && !isAbsolute(listen)) {
      const message = "must be an absolute socket path or host:port";
      throw new ManagerError("invalid", `/listen: ${message}`, [{ path: "/listen", message }]);
    }
    try {
      const listener = await listenForMigration(listen, (channel) => {
        this.migrationListeners.delete(name);
        void this.receiveMigration(name, channel, backendOverrides(body));
      });
      this.migrationListeners.set(name, listener);
    } catch (e) {
      throw new ManagerError("invalid", e instanceof Error ? e.message : String(e));
    }
    this.options.log(`waiting for VM '${name}' to migrate in at ${listen}`);
    return { name, listen };
  }

  /** The target's side of one migration: START, the VM built from the passes in its worker, RUNNING. */
  private async receiveMigration(
    name: string,
    channel: MigrationChannel,
    overrides: BackendOverrides,
  ): Promise<void> {
    const refuse = async (why: string) => {
      this.options.log(`incoming migration of VM '${name}' refused: ${why}`);
      await channel.send(textFrame(FrameType.REFUSE, why)).catch(() => {});
      channel.close();
    };
    let start: Awaited<ReturnType<typeof readStart>>;
    try {
      start = await readStart(channel);
    } catch (e) {
      // readStart answered the source already.
      this.options.log(`incoming migration of VM '${name}' refused: ${(e as Error).message}`);
      return;
    }
    let spec: VmSpec;
    try {
      const arriving = start.spec as Record<string, unknown>;
      spec = validateVmSpec({ ...arriving, name, ...overrideBackends(arriving, overrides, "migration") });
      if (this.entries.has(name)) return await refuse(`a VM named '${name}' exists here`);
      const record: VmRecord = { id: randomUUID(), spec, createdAt: new Date().toISOString() };
      const entry = this.newEntry(record);
      entry.incoming = { start, next: () => channel.next() };
      this.entries.set(name, entry);
      this.emit("created", this.info(entry));
      await channel.send(encodeFrame(FrameType.ACCEPT));
      let why: string | null = null;
      try {
        await this.start(entry);
      } catch (e) {
        why = e instanceof Error ? e.message : String(e);
      }
      if (entry.vm === null) {
        this.entries.delete(name);
        this.emit("deleted", this.info(entry));
        return await refuse(why ?? entry.startFailure ?? "the VM did not build");
      }
      this.store?.save(record);
      await channel.send(encodeFrame(FrameType.RUNNING)).catch(() => {});
      channel.close();
      this.options.log(`VM '${name}' (${record.id}) migrated in`);
    } catch (e) {
      await refuse(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * Live-migrates a running riscv64 VM to the daemon listening at `to` (see migrateIn): once the guest
   * runs there, the VM is gone from here. On failure it runs on here and the error says why.
   */
  async migrate(
    idOrName: string,
    body: { to: string; downtimeMs?: number },
  ): Promise<MigrationResult & { to: string }> {
    const entry = this.find(idOrName);
    const name = entry.record.spec.name;
    const state = this.state(entry).name;
    const vm = entry.vm;
    if (entry.busy !== null) throw new ManagerError("conflict", `VM '${name}' is ${entry.busy}`);
    if (state !== "running" || vm === null) {
      throw new ManagerError("conflict", `cannot migrate VM '${name}': it is ${state}`);
    }
    if (!(vm instanceof WorkerVm) && vm.migrate === undefined) {
      throw new ManagerError(
        "conflict",
        `VM '${name}': live migration is not supported for ${entry.record.spec.arch}`,
      );
    }
    const options: MigrateOptions = body.downtimeMs === undefined ? {} : { downtimeMs: body.downtimeMs };
    this.claim(entry, "migrating");
    let result: MigrationResult;
    try {
      result =
        vm instanceof WorkerVm
          ? await vm.migrateTo(body.to, options)
          : await (vm.migrate as NonNullable<Vm["migrate"]>)(await connectMigration(body.to), options);
    } catch (e) {
      entry.busy = null;
      const message = `migration of VM '${name}' to ${body.to} failed (it runs on here): ${e instanceof Error ? e.message : String(e)}`;
      this.options.log(message);
      throw new ManagerError("conflict", message);
    }
    // The guest runs on the target: this VM ended (the worker killed it) and goes away.
    await vm.wait().catch(() => {});
    this.store?.remove(name);
    this.suspended?.forget(entry.record.id);
    this.entries.delete(name);
    entry.busy = null;
    this.options.log(
      `VM '${name}' migrated to ${body.to}: ${result.passes} passes, ${result.bytes} bytes, ${result.totalMs.toFixed(0)} ms, downtime ${result.downtimeMs.toFixed(0)} ms`,
    );
    this.emit("deleted", this.info(entry));
    return { ...result, to: body.to };
  }

  /** Every VM, or those carrying all of `labels`. */
  list(labels: Record<string, string> = {}): VmInfo[] {
    const wanted = Object.entries(labels);
    return [...this.entries.values()]
      .filter((e) => wanted.every(([k, v]) => e.record.spec.labels?.[k] === v))
      .map((e) => this.info(e));
  }

  get(idOrName: string): VmInfo {
    return this.info(this.find(idOrName));
  }

  /** Kills the VM if it runs, then forgets it (and its definition file). */
  async delete(idOrName: string): Promise<void> {
    const entry = this.find(idOrName);
    this.claim(entry, "being deleted");
    try {
      await this.halt(entry);
      this.store?.remove(entry.record.spec.name);
      this.suspended?.forget(entry.record.id);
      this.entries.delete(entry.record.spec.name);
      this.agents.get(entry.record.spec.name)?.close();
      this.agents.delete(entry.record.spec.name);
      this.options.log(`deleted VM '${entry.record.spec.name}'`);
      this.emit("deleted", this.info(entry));
    } finally {
      entry.busy = null;
    }
  }

  async act(idOrName: string, action: VmAction, options: { graceMs?: number } = {}): Promise<VmInfo> {
    const entry = this.find(idOrName);
    const state = this.state(entry).name;
    const refuse = (): never => {
      throw new ManagerError("conflict", `cannot ${action} VM '${entry.record.spec.name}': it is ${state}`);
    };
    if (entry.busy !== null) {
      throw new ManagerError("conflict", `VM '${entry.record.spec.name}' is ${entry.busy}`);
    }
    const vm = entry.vm;
    switch (action) {
      case "start":
        if (state === "running" || state === "paused") refuse();
        await this.start(entry);
        break;
      case "pause":
        if (state !== "running" || vm === null) return refuse();
        this.guard(entry, () => vm.pause());
        // A worker takes the pause at its next slice: the answer waits for it, so that stats read
        // after the answer hold the paused count.
        if (vm instanceof WorkerVm) await vm.refreshStats();
        break;
      case "resume":
        if (state !== "paused" || vm === null) return refuse();
        this.guard(entry, () => vm.resume());
        break;
      case "stop":
        if ((state !== "running" && state !== "paused") || vm === null) return refuse();
        this.claim(entry, "stopping");
        try {
          await vm.stop(options.graceMs === undefined ? {} : { graceMs: options.graceMs }).catch(() => {});
        } finally {
          entry.busy = null;
        }
        break;
      case "kill":
        if (state !== "running" && state !== "paused") refuse();
        await this.halt(entry);
        break;
      case "reboot":
        // No guest reset yet: the same spec, a fresh Vm (the console ring carries on).
        if (state !== "running" && state !== "paused") refuse();
        await this.halt(entry);
        await this.start(entry);
        break;
    }
    return this.info(entry);
  }

  /**
   * A running or paused VM's balloon: sets its target when `targetBytes` is given (what the guest is
   * asked to give back; the definition keeps the target a fresh start asks for) and answers its figures.
   */
  async balloon(
    idOrName: string,
    targetBytes: number | null,
    by: "client" | "governor" = "client",
  ): Promise<BalloonFigures> {
    const entry = this.find(idOrName);
    const name = entry.record.spec.name;
    const state = this.state(entry).name;
    const vm = entry.vm;
    if ((state !== "running" && state !== "paused") || vm === null) {
      throw new ManagerError("conflict", `VM '${name}' is ${state}: its balloon is there only while it runs`);
    }
    const noBalloon = () =>
      new ManagerError("conflict", `VM '${name}' has no balloon (its spec has no /balloon)`);
    if (entry.record.spec.balloon === undefined) throw noBalloon();
    const memory = entry.record.spec.memory;
    if (targetBytes !== null && targetBytes >= memory) {
      const message = `must be smaller than the VM's memory (${memory} bytes)`;
      throw new ManagerError("invalid", `/targetBytes: ${message}`, [{ path: "/targetBytes", message }]);
    }
    // The floor first: a governor round polling while this target is on its way must not undo it.
    if (by === "client" && targetBytes !== null) entry.balloonFloor = targetBytes;
    const figures =
      vm instanceof WorkerVm
        ? await vm.balloon(targetBytes)
        : this.guard(entry, () => balloonRequest(vm.devices(), targetBytes));
    if (figures === null) throw noBalloon();
    return figures;
  }

  /**
   * Adds the drive `driveId` to a VM not started yet, or replaces it; the definition on disk changes
   * with it. `body` is a DriveSpec whose id must be `driveId`.
   */
  putDrive(idOrName: string, driveId: string, body: DriveSpec): { vm: VmInfo; created: boolean } {
    const entry = this.find(idOrName);
    this.editable(entry, "drives");
    if (body.id !== driveId) {
      const message = `must be the drive's id in the URL ('${driveId}')`;
      throw new ManagerError("invalid", `/id: ${message}`, [{ path: "/id", message }]);
    }
    const drives = [...entry.record.spec.drives];
    let at = drives.findIndex((d) => d.id === driveId);
    const created = at < 0;
    if (created) at = drives.push(body) - 1;
    else drives[at] = body;
    const vm = this.redefine(entry, "drives", { ...entry.record.spec, drives }, `/drives/${at}`);
    return { vm, created };
  }

  deleteDrive(idOrName: string, driveId: string): VmInfo {
    const entry = this.find(idOrName);
    this.editable(entry, "drives");
    const { spec } = entry.record;
    if (!spec.drives.some((d) => d.id === driveId)) {
      throw new ManagerError("not-found", `VM '${spec.name}' has no drive '${driveId}'`);
    }
    const drives = spec.drives.filter((d) => d.id !== driveId);
    return this.redefine(entry, "drives", { ...spec, drives }, null);
  }

  /**
   * Adds (at index = the count) or replaces the NIC at `index` of a VM not started yet. NICs have no
   * name in a VmSpec, so their place in /nics names them (it also gives a NIC without a MAC its own).
   */
  putNic(idOrName: string, index: number, body: NicSpec): { vm: VmInfo; created: boolean } {
    const entry = this.find(idOrName);
    this.editable(entry, "NICs");
    const nics = [...entry.record.spec.nics];
    if (index > nics.length) {
      throw new ManagerError(
        "invalid",
        `VM '${entry.record.spec.name}' has ${nics.length} NICs: a new one is number ${nics.length}`,
      );
    }
    const created = index === nics.length;
    nics[index] = body;
    const vm = this.redefine(entry, "NICs", { ...entry.record.spec, nics }, `/nics/${index}`);
    return { vm, created };
  }

  /** Removes the NIC at `index`; those after it move down one place. */
  deleteNic(idOrName: string, index: number): VmInfo {
    const entry = this.find(idOrName);
    this.editable(entry, "NICs");
    const { spec } = entry.record;
    if (index >= spec.nics.length) {
      throw new ManagerError(
        "not-found",
        `VM '${spec.name}' has no NIC ${index} (it has ${spec.nics.length})`,
      );
    }
    const nics = spec.nics.filter((_n, i) => i !== index);
    return this.redefine(entry, "NICs", { ...spec, nics }, null);
  }

  /** Drives and NICs change in the definition only, so only before the VM first starts. */
  private editable(entry: Entry, what: string): void {
    const name = entry.record.spec.name;
    const state = this.state(entry).name;
    if (entry.busy !== null) throw new ManagerError("conflict", `VM '${name}' is ${entry.busy}`);
    if (state !== "created" || entry.vm !== null) {
      throw new ManagerError(
        "conflict",
        `cannot change the ${what} of VM '${name}': it is ${state} (only before its first start)`,
      );
    }
  }

  /**
   * Replaces the definition of a VM that has not started yet with `spec`, checked as a new one is, and
   * saved before it takes effect. Problems under `item` (the changed drive or NIC) are reported as
   * pointers into the request's body; others name the field of the whole spec.
   */
  private redefine(entry: Entry, what: string, spec: VmSpec, item: string | null): VmInfo {
    const name = entry.record.spec.name;
    this.editable(entry, what);
    let problems: readonly SpecProblem[];
    try {
      problems = pathProblems(validateVmSpec(spec));
    } catch (e) {
      if (!(e instanceof VmSpecError)) throw e;
      problems = e.problems;
    }
    if (problems.length > 0) {
      const fields = problems.map((p) =>
        item !== null && (p.path === item || p.path.startsWith(`${item}/`))
          ? { path: p.path.slice(item.length), message: p.message }
          : { path: "", message: `${p.path || "/"}: ${p.message} (in the VM's spec)` },
      );
      throw new ManagerError(
        "invalid",
        fields.map((f) => `${f.path || "/"}: ${f.message}`).join("; "),
        fields,
      );
    }
    const record: VmRecord = { ...entry.record, spec };
    this.store?.save(record);
    entry.record = record;
    this.options.log(`changed the ${what} of VM '${name}'`);
    return this.info(entry);
  }

  stats(idOrName: string): VmStats {
    const entry = this.find(idOrName);
    if (entry.vm === null) return { arch: entry.record.spec.arch, seconds: 0, nics: [] };
    const vm = entry.vm;
    const stats = { ...this.guard(entry, () => vm.stats()), memory: this.memoryStats(entry) };
    const usage = this.scheduler.usage(entry.record.spec.name);
    if (usage === null) return stats;
    if (isKvmThreadsVm(vm)) {
      const kvm = vm.vcpuThreads();
      // The host kernel schedules them: their CPU time is what it charged the vCPU threads.
      const cpuMs = kvm.threads.reduce((sum, tid) => sum + (threadCpuMs(tid) ?? 0), 0);
      return {
        ...stats,
        scheduling: {
          ...usage,
          cpuMs,
          vcpuThreads: kvm.threads,
          ...this.kvmThreads.stats(entry.record.spec.name),
          ...(kvm.errors.length === 0 ? {} : { errors: kvm.errors }),
        },
      };
    }
    const thread = vm instanceof WorkerVm ? vm.thread : null;
    return { ...stats, scheduling: thread === null ? usage : { ...usage, thread } };
  }

  /**
   * Changes how a VM gets host CPU: saved in its definition, and applied at once to a running shared
   * VM (weight, cap, reservation); a change of mode waits for its next start.
   */
  setCpu(idOrName: string, body: unknown): VmInfo {
    const entry = this.find(idOrName);
    const share = validateCpuShare(body);
    const name = entry.record.spec.name;
    const running = this.scheduler.usage(name);
    if (running !== null && running.mode !== share.mode) {
      throw new ManagerError(
        "conflict",
        `VM '${name}' runs ${running.mode}: stop it to make it ${share.mode}`,
      );
    }
    if (running !== null && this.scheduler.isKvm(name)) this.reshareKvm(entry, share, running.cpus);
    else if (running !== null) this.scheduler.update(name, share);
    entry.record = { ...entry.record, spec: { ...entry.record.spec, cpu: share } };
    this.store?.save(entry.record);
    this.options.log(`VM '${name}': cpu ${JSON.stringify(share)}`);
    return this.info(entry);
  }

  /** A running shared KVM VM's new weight and cap: its cgroup's, or its vCPU threads' nice level. */
  private reshareKvm(entry: Entry, share: CpuShare, cpus: number[]): void {
    const name = entry.record.spec.name;
    this.scheduler.kvmShareRefusal(name, share);
    if (isKvmThreadsVm(entry.vm)) this.kvmThreads.reshare(name, share, cpus, entry.vm);
  }

  /** The memory governor's settings and last round (null: no governor). */
  memoryInfo(): MemoryLoopState | null {
    return this.memoryLoop?.state() ?? null;
  }

  /** The scheduler's view of the host's CPUs (GET /host). */
  schedulerInfo(): SchedulerInfo & { daemonThreads: { cpus: number[]; errors?: string[] } } {
    return { ...this.scheduler.info(), daemonThreads: this.daemonThreads };
  }

  /** Where this process's own threads (not VM threads) may run: off the dedicated CPUs. */
  private daemonThreads: { cpus: number[]; errors?: string[] } = { cpus: [] };

  /**
   * Moves the daemon's own threads (main, libuv's, V8's) off the CPUs dedicated VMs hold, and back
   * when those are released; VM threads are placed by the scheduler and left alone.
   */
  private confineDaemonThreads(processCpus: readonly number[]): void {
    if (!libcAvailable()) return;
    const dedicated = new Set(this.scheduler.info().dedicated.flatMap((d) => d.cpus));
    const others = processCpus.filter((c) => !dedicated.has(c));
    const keep = new Set<number>();
    for (const e of this.entries.values()) {
      if (e.vm instanceof WorkerVm && e.vm.thread !== null) keep.add(e.vm.thread);
      else if (isKvmThreadsVm(e.vm)) for (const t of e.vm.vcpuThreads().threads) keep.add(t);
    }
    const { errors } = confineOtherThreads(others, dedicated, keep);
    this.daemonThreads = { cpus: others, ...(errors.length === 0 ? {} : { errors }) };
  }

  console(idOrName: string): ConsoleRing {
    return this.find(idOrName).console;
  }

  /** What the running and paused VMs hold of the host. */
  committed(): { vms: number; cpus: number; memory: number } {
    let vms = 0;
    let cpus = 0;
    let memory = 0;
    for (const e of this.entries.values()) {
      const s = this.state(e).name;
      if (s !== "running" && s !== "paused") continue;
      vms++;
      cpus += e.record.spec.cpus;
      memory += e.record.spec.memory;
    }
    return { vms, cpus, memory };
  }

  /**
   * The guest agent of a running VM, to call through (exec, files, shutdown); a conflict when the VM
   * has none or does not run. Whether the agent answers yet is the caller's to find out.
   */
  agent(idOrName: string): GuestAgent {
    const entry = this.find(idOrName);
    const name = entry.record.spec.name;
    const agent = this.agents.get(name);
    if (agent === undefined || entry.vm === null) {
      throw new ManagerError("conflict", `VM '${name}' has no guest agent (agent: false, or not started)`);
    }
    const state = this.state(entry).name;
    if (state !== "running") throw new ManagerError("conflict", `VM '${name}' is ${state}, not running`);
    return agent;
  }

  /** Stops every VM (grace period, then kill) and waits until each has released what it holds. */
  async shutdown(graceMs: number): Promise<void> {
    for (const l of this.migrationListeners.values()) l.close();
    this.migrationListeners.clear();
    this.pools.close();
    await this.memoryLoop?.stop();
    await this.pool?.close();
    if (this.options.suspendOnExit === true) await this.suspendAll();
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        const s = this.state(e).name;
        if ((s === "running" || s === "paused") && e.vm !== null)
          await e.vm.stop({ graceMs }).catch(() => {});
      }),
    );
    this.kvmThreads.close();
    for (const agent of this.agents.values()) agent.close();
    this.agents.clear();
    this.agentSockets.close();
  }

  /** Snapshots of VMs a daemon with --suspend-on-exit saved at its exit (null: no state directory). */
  private readonly suspended: SuspendedVms | null;

  /** Saves every running or paused VM for the next daemon, and kills it (its guest is kept). */
  private async suspendAll(): Promise<void> {
    const suspended = this.suspended;
    if (suspended === null) return;
    for (const e of this.entries.values()) {
      const s = this.state(e).name;
      const vm = e.vm;
      if ((s !== "running" && s !== "paused") || vm === null || vm.saveSnapshot === undefined) continue;
      const name = e.record.spec.name;
      try {
        suspended.forget(e.record.id);
        await this.snapshot(name, { path: suspended.dir(e.record.id), resume: false });
        suspended.complete(e.record.id);
        await vm.kill();
        this.options.log(`VM '${name}' suspended to ${suspended.dir(e.record.id)}`);
      } catch (err) {
        suspended.forget(e.record.id);
        this.options.log(`VM '${name}' could not be suspended (${(err as Error).message}): stopping it`);
      }
    }
  }

  /** Continues a VM the last daemon suspended; false (the snapshot dropped) when it cannot. */
  private async resumeSuspended(entry: Entry, path: string): Promise<boolean> {
    const name = entry.record.spec.name;
    entry.restore = { path, clone: false };
    try {
      await this.start(entry);
    } catch (e) {
      entry.startFailure = (e as Error).message;
    }
    this.suspended?.forget(entry.record.id);
    if (entry.vm === null) {
      this.options.log(`VM '${name}' could not be resumed from ${path}: ${entry.startFailure ?? "unknown"}`);
      entry.restore = null;
      return false;
    }
    this.options.log(`VM '${name}' resumed where the last daemon suspended it`);
    return true;
  }

  private find(idOrName: string): Entry {
    const byName = this.entries.get(idOrName);
    if (byName !== undefined) return byName;
    for (const e of this.entries.values()) if (e.record.id === idOrName) return e;
    throw new ManagerError("not-found", `no VM '${idOrName}'`);
  }

  private claim(entry: Entry, what: string): void {
    if (entry.busy !== null)
      throw new ManagerError("conflict", `VM '${entry.record.spec.name}' is ${entry.busy}`);
    entry.busy = what;
  }

  private state(entry: Entry): VmState {
    if (entry.startFailure !== null) return { name: "failed", reason: entry.startFailure };
    return entry.vm?.state ?? { name: "created" };
  }

  private info(entry: Entry): VmInfo {
    const { record } = entry;
    const state = this.state(entry);
    const info: VmInfo = {
      id: record.id,
      name: record.spec.name,
      state: state.name,
      labels: record.spec.labels ?? {},
      autostart: record.spec.autostart === true,
      createdAt: record.createdAt,
      spec: record.spec,
    };
    if (state.name === "failed") info.reason = state.reason;
    if (state.name === "stopped") info.exit = state.exit;
    return info;
  }

  /** Builds a fresh Vm for the definition and starts it. */
  private async start(entry: Entry): Promise<void> {
    const name = entry.record.spec.name;
    this.admitMemory(entry);
    this.memoryLoop?.forget(name);
    entry.balloonFloor = entry.record.spec.balloon?.targetBytes ?? 0;
    this.claim(entry, "starting");
    try {
      let vm: Vm;
      try {
        vm = await this.build(entry);
      } catch (e) {
        this.scheduler.release(name);
        this.kvmThreads.release(name);
        if (e instanceof ManagerError) throw e;
        if (e instanceof UserError)
          throw new ManagerError("invalid", `cannot start VM '${name}': ${e.message}`);
        entry.startFailure = e instanceof Error ? e.message : String(e);
        this.options.log(`VM '${name}' failed to build: ${entry.startFailure}`);
        this.emit("state", this.info(entry));
        return;
      }
      entry.vm = vm;
      entry.startFailure = null;
      vm.on("state", (s) => {
        if (s.name === "stopped" || s.name === "failed") {
          this.scheduler.release(name);
          this.kvmThreads.release(name);
        }
        this.emit("state", { ...this.info(entry), state: s.name });
        if (s.name === "failed") this.options.log(`VM '${name}' failed: ${s.reason}`);
        else if (s.name === "stopped") this.options.log(`VM '${name}' stopped (${s.exit.reason})`);
      });
      this.guard(entry, () => vm.start());
      this.options.log(`started VM '${name}'`);
    } finally {
      entry.busy = null;
    }
  }

  /** Refuses (conflict) a start whose memory does not fit beside the running VMs' (see memory-governor.ts). */
  private admitMemory(entry: Entry): void {
    const running = [...this.entries.values()]
      .filter((e) => e !== entry && ["running", "paused"].includes(this.state(e).name))
      .map((e) => ({ memory: e.record.spec.memory, mode: e.record.spec.memoryMode ?? "overcommit" }));
    const { spec } = entry.record;
    const refusal = memoryRefusal(
      running,
      { memory: spec.memory, mode: spec.memoryMode ?? "overcommit" },
      this.options.memoryBudget ?? totalmem(),
      this.options.overcommit ?? DEFAULT_OVERCOMMIT,
    );
    if (refusal !== null) throw new ManagerError("conflict", `cannot start VM '${spec.name}': ${refusal}`);
  }

  /** Kills a running or paused VM and waits until it has released its host resources. */
  private async halt(entry: Entry): Promise<void> {
    const vm = entry.vm;
    const s = this.state(entry).name;
    if (vm === null || (s !== "running" && s !== "paused")) return;
    this.guard(entry, () => vm.kill());
    await vm.wait().catch(() => {});
  }

  /**
   * Runs a call into one VM; whatever it throws beyond a refused state is that VM's failure and is
   * reported as such, never the manager's.
   */
  private guard<T>(entry: Entry, call: () => T): T {
    try {
      return call();
    } catch (e) {
      if (e instanceof UserError) throw new ManagerError("conflict", e.message);
      const reason = e instanceof Error ? e.message : String(e);
      this.options.log(`VM '${entry.record.spec.name}': ${reason}`);
      entry.startFailure = reason;
      entry.vm?.kill();
      throw new ManagerError("conflict", `VM '${entry.record.spec.name}' failed: ${reason}`);
    }
  }

  private newMemoryLoop(o: MemoryGovernorOptions): MemoryLoop {
    const budget = this.options.memoryBudget ?? totalmem();
    const low = watermark(o.low ?? DEFAULT_MEMORY_LOW, budget);
    const high = watermark(o.high ?? DEFAULT_MEMORY_HIGH, budget);
    if (low > high) {
      throw new UserError(
        `the memory governor's low watermark (${low} bytes) is above its high one (${high})`,
      );
    }
    return new MemoryLoop({
      intervalMs: o.intervalMs ?? DEFAULT_MEMORY_INTERVAL_MS,
      hostAvailable: o.hostAvailable ?? hostMemAvailable,
      low,
      high,
      vms: () => this.governedVms(),
      onDecision: (d) => {
        const entry = this.entries.get(d.vm);
        if (entry === undefined) return;
        this.options.log(`VM '${d.vm}': balloon ${d.from} -> ${d.target} bytes (${d.reason})`);
        this.emit("memory", this.info(entry), d);
      },
      log: this.options.log,
    });
  }

  /**
   * The running overcommitted VMs with a balloon. A paused guest cannot answer nor inflate; its
   * reservation floor is 0 (the spec has no memory reservation yet): the loop keeps part of its free
   * memory out of reach instead (GUEST_FREE_KEPT).
   */
  private governedVms(): GovernedVm[] {
    const vms: GovernedVm[] = [];
    for (const entry of this.entries.values()) {
      const { spec } = entry.record;
      const vm = entry.vm;
      if (vm === null || this.state(entry).name !== "running" || entry.busy !== null) continue;
      if (spec.balloon === undefined || (spec.memoryMode ?? "overcommit") !== "overcommit") continue;
      const name = spec.name;
      vms.push({
        name,
        memory: spec.memory,
        mode: "overcommit",
        weight: spec.cpu?.mode === "shared" ? (spec.cpu.weight ?? 100) : 100,
        reservation: 0,
        // Read when the round decides, not when it began: a client's target set meanwhile is the floor.
        get floor() {
          return entry.balloonFloor;
        },
        poll: async () => {
          try {
            return vm instanceof WorkerVm ? await vm.balloonPoll() : balloonPoll(vm.devices());
          } catch (e) {
            this.options.log(`VM '${name}': balloon poll: ${(e as Error).message}`);
            return null;
          }
        },
        setTarget: async (bytes) => {
          // The VM may have ended since the poll: its balloon went with it.
          await this.balloon(name, bytes, "governor").catch((e: Error) =>
            this.options.log(`VM '${name}': ${e.message}`),
          );
        },
      });
    }
    return vms;
  }

  private memoryStats(entry: Entry): NonNullable<VmStats["memory"]> {
    const { spec } = entry.record;
    const stats: NonNullable<VmStats["memory"]> = { mode: spec.memoryMode ?? "overcommit" };
    const balloon = this.memoryLoop?.state().balloons[spec.name];
    if (balloon !== undefined) {
      stats.balloonTargetBytes = balloon.targetBytes;
      stats.balloonActualBytes = balloon.actualBytes;
      stats.guestFreeBytes = balloon.freeBytes;
    }
    const last = this.memoryLoop?.lastDecision(spec.name);
    if (last != null) {
      stats.lastDecision = { from: last.from, target: last.target, reason: last.reason, at: last.at };
    }
    return stats;
  }

  /** A fresh Vm for the definition: in a worker of its own where it can be (see the top of this file). */
  private build(entry: Entry): Promise<Vm> {
    const restore = entry.restore ?? undefined;
    entry.restore = null;
    // The run's spec may have a vsock device the definition does not: the agent's.
    const run = this.agentSockets.runSpec(entry.record.spec);
    const spec = run.spec;
    this.agents.get(spec.name)?.close();
    if (run.socket === null) this.agents.delete(spec.name);
    else this.agents.set(spec.name, new GuestAgent(run.socket));
    const incoming = entry.incoming ?? undefined;
    entry.incoming = null;
    const worker = this.options.vmWorker;
    if (spec.arch !== "riscv64") {
      // KVM: the host kernel schedules the vCPU threads; the scheduler says where, and how nice.
      const p = this.scheduler.placeKvm(spec.name, spec.cpu, spec.cpus);
      const kvmPlacement = this.kvmThreads.placement(spec.name, p);
      const host = { ...this.options.host(this.sinkFor(entry)), kvmPlacement };
      if (incoming !== undefined) return createVm(spec, host, { incoming });
      if (restore === undefined) return createVm(spec, host);
      return openSnapshot(restore.path, host).then(({ source }) =>
        createVm(spec, host, { restore: { ...source, clone: restore.clone } }),
      );
    }
    if (worker === undefined && spec.cpu?.mode === "dedicated") {
      throw new ManagerError(
        "invalid",
        `VM '${spec.name}': a dedicated CPU needs the daemon's VM worker threads`,
      );
    }
    const placement: Placement = this.scheduler.place(spec.name, spec.cpu);
    if (worker === undefined) {
      // In this thread: its engine takes turns from the same pool as everyone's.
      const host = {
        ...this.options.host(this.sinkFor(entry)),
        cpuTurns: this.scheduler.pool.gate(spec.name),
      };
      if (incoming !== undefined) return createVm(spec, host, { incoming });
      if (restore === undefined) return createVm(spec, host);
      return openSnapshot(restore.path, host).then(({ source }) =>
        createVm(spec, host, { restore: { ...source, clone: restore.clone } }),
      );
    }
    const ring = entry.console;
    const label = spec.labels?.[FAULT_LABEL];
    const fault =
      this.options.testHooks === true && label !== undefined && WORKER_FAULTS.includes(label)
        ? (label as WorkerFault)
        : null;
    return WorkerVm.create(spec, {
      entry: worker,
      placement,
      ...(placement.mode === "shared" ? { turns: this.scheduler.pool.gate(spec.name) } : {}),
      ...(this.pool === null ? {} : { pool: this.pool }),
      console(bytes) {
        for (const b of bytes) ring.write(b);
      },
      log: (message) => this.options.log(`VM '${spec.name}': ${message}`),
      fault,
      // The switches stay in this thread; the worker's NICs reach them through frame links.
      netBackend: (backend) => this.options.host(ring).netBackend(backend),
      ...(restore === undefined ? {} : { restore }),
      ...(incoming === undefined ? {} : { incoming }),
    });
  }

  private sinkFor(entry: Entry): ByteSink {
    const ring = entry.console;
    if (this.options.testHooks !== true || entry.record.spec.labels?.[FAULT_LABEL] !== "console") return ring;
    let written = 0;
    return {
      write(byte: number): void {
        ring.write(byte);
        if (++written === 64) throw new Error("test hook: the console device threw after 64 bytes");
      },
    };
  }
}

/** A watermark option: bytes, or (at most 1) a fraction of the budget. */
function watermark(value: number, budget: number): number {
  return value <= 1 ? Math.round(value * budget) : value;
}

/** The host CPUs this process may run on: its affinity where libc can say, else 0..n−1. */
function hostCpus(): number[] {
  try {
    if (libcAvailable()) return threadAffinity();
  } catch {
    // Fall through: count them instead.
  }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

const cpuShareChecker = TypeCompiler.Compile(CpuShareSchema);

/** A CPU share from an API body or a CLI: the VmSpec's schema for it, and its cross-checks. */
export function validateCpuShare(body: unknown): CpuShare {
  const problems: SpecProblem[] = [];
  for (const e of cpuShareChecker.Errors(body)) problems.push({ path: `/cpu${e.path}`, message: e.message });
  if (problems.length === 0) {
    for (const p of cpuShareProblems(body as CpuShare))
      problems.push({ path: `/cpu${p.path}`, message: p.message });
  }
  if (problems.length > 0) {
    throw new ManagerError("invalid", problems.map((p) => `${p.path}: ${p.message}`).join("; "), problems);
  }
  return body as CpuShare;
}

/** JSON with object keys in order, so that two specs compare equal whatever order a client wrote. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Only the backend overrides of a request body (its other fields are not the spec's). */
function backendOverrides(body: BackendOverrides): BackendOverrides {
  return {
    ...(body.vsockUds === undefined ? {} : { vsockUds: body.vsockUds }),
    ...(body.nics === undefined ? {} : { nics: body.nics }),
  };
}

/** A vsock socket override is bound by the daemon, whose working directory is not its client's. */
function relativeSocketOverride(body: BackendOverrides): void {
  if (body.vsockUds !== undefined && !isAbsolute(body.vsockUds)) {
    const message = `'${body.vsockUds}' is not an absolute path`;
    throw new ManagerError("invalid", `/vsockUds: ${message}`, [{ path: "/vsockUds", message }]);
  }
}

/**
 * The files a spec names, checked when it is defined rather than when it first starts: absolute
 * (the daemon's working directory is not its client's) and regular files.
 */
function pathProblems(spec: VmSpec): SpecProblem[] {
  const paths: [string, string][] = [["/boot/kernel", spec.boot.kernel]];
  if (spec.boot.initrd !== undefined) paths.push(["/boot/initrd", spec.boot.initrd]);
  const firmware = spec.boot.firmware;
  if (firmware !== undefined && firmware !== "builtin" && firmware !== "none") {
    paths.push(["/boot/firmware", firmware]);
  }
  spec.drives.forEach((d, i) => {
    paths.push([`/drives/${i}/path`, d.path]);
  });
  const problems: SpecProblem[] = [];
  for (const [path, file] of paths) {
    if (!isAbsolute(file)) {
      problems.push({ path, message: `'${file}' is not an absolute path` });
      continue;
    }
    let stats: Stats;
    try {
      stats = statSync(file);
    } catch {
      problems.push({ path, message: `'${file}' does not exist or cannot be read` });
      continue;
    }
    if (!stats.isFile()) problems.push({ path, message: `'${file}' is not a regular file` });
  }
  return problems;
}
