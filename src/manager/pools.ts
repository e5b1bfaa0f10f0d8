/**
 * Warm pools: each keeps `size` VMs of one spec defined, started and idle, so that a client that needs
 * a sandbox gets one that has already booted. A VM is "ready" once its console printed the pool's
 * readiness marker (VIREO-READY, which the default images' /init prints, for a spec with an initrd), or
 * as soon as it runs when the pool has no marker. Acquiring one takes it out of the pool (it stays an
 * ordinary VM of the manager, named and labelled after the pool) and starts a replacement (once its first
 * exec answered, or after a short grace, see REFILL_GRACE_MS); a released
 * VM is deleted, never handed out again, so every sandbox starts from a fresh boot.
 *
 * Pools persist in `<stateDir>/pools/` with the names of their idle VMs: a daemon that restarts deletes
 * those (their guests did not survive it) and boots fresh ones.
 *
 * A riscv64 pool with a state directory boots its spec once, saves that VM as a snapshot when it is
 * ready (the template, `<stateDir>/pools/<id>/template`), and fills itself with clones of it: every VM
 * is the same freshly booted guest (new MACs and vsock CID, copies of the disks, removed with the VM),
 * ready as soon as it runs. Where the template cannot be made the pool boots each VM instead. A VM that fails or stops while idle is
 * deleted and replaced; starts that keep failing are retried with a growing delay, the last error shown.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clonesDir, MEMORY_FILE, STATE_FILE } from "../snapshot/store.js";
import { type VmSpec, VmSpecError, validateVmSpec } from "../vm/spec.js";
import { ManagerError } from "./errors.js";
import { EXEC_POLL_FIRST_MS, EXEC_POLL_MAX_MS } from "./guest-agent.js";
import type { VmInfo, VmManager } from "./manager.js";
import type { QgaClient } from "./qga-client.js";

/** The label every pool VM carries: the pool's name. */
export const POOL_LABEL = "vireo.pool";
export const MAX_POOL_SIZE = 64;
/** What a spec with an initrd (a Linux guest of the default images) prints once it is up. */
export const DEFAULT_READY_MARKER = "VIREO-READY";
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/**
 * How long a VM whose spec has a guest agent is given, after its marker, for the agent to answer:
 * /init starts qemu-ga in the background just before VIREO-READY, so the marker alone does not mean
 * an exec would work. A guest whose agent never answers (a custom initrd) is ready after this anyway.
 */
const AGENT_WAIT_MS = 30_000;
/**
 * How long an acquired VM's replacement waits for that VM's first exec to answer: a restore or a boot
 * beside it takes the CPUs the guest runs the command on (on 2 shared cores it made the first exec
 * several times slower). Nobody waiting for a VM is ever kept waiting by it.
 */
const REFILL_GRACE_MS = 2_000;

export interface PoolRequest {
  name?: string;
  spec: unknown;
  size: number;
  /** A console line that says the guest is up; null: running is enough. Default: see the top. */
  readyMarker?: string | null;
}

export interface PoolInfo {
  id: string;
  name: string;
  size: number;
  ready: number;
  booting: number;
  /** Acquirers waiting for a ready VM. */
  waiting: number;
  readyMarker: string | null;
  /** The idle VMs' names, oldest first. */
  vms: string[];
  createdAt: string;
  /** Why the last start of one of its VMs failed, until one gets ready again. */
  lastError?: string;
  /** How its VMs come: clones of a snapshot of one booted VM, or each booted. */
  source: "snapshot" | "boot";
  /** Why the pool boots each VM although it could clone them (the template could not be made). */
  snapshotError?: string;
  spec: VmSpec;
}

export interface PoolEvent {
  type: "pool";
  change: "created" | "deleted" | "ready" | "acquired" | "released" | "failed";
  pool: PoolInfo;
  vm?: string;
}

interface Member {
  name: string;
  state: "booting" | "ready";
  unwatch: () => void;
}

interface Waiter {
  give(vm: VmInfo): void;
  fail(e: Error): void;
}

interface Pool {
  id: string;
  name: string;
  /** The template: each VM gets its own name and the pool's label. */
  spec: VmSpec;
  size: number;
  readyMarker: string | null;
  createdAt: string;
  members: Map<string, Member>;
  waiters: Waiter[];
  closed: boolean;
  /** The fill under way: a delete waits for it, so that a VM it was starting is gone when delete returns. */
  filling: Promise<void> | null;
  failures: number;
  retry: NodeJS.Timeout | null;
  lastError: string | null;
  /** The template snapshot its VMs are cloned from, once made. */
  template: string | null;
  /** Why no template could be made (the pool then boots each VM). */
  templateError: string | null;
  /** The template VM is booting (it counts as booting: the pool's first VMs come from it). */
  templating: boolean;
}

interface PoolRecord {
  format: 1;
  id: string;
  name: string;
  spec: VmSpec;
  size: number;
  readyMarker: string | null;
  createdAt: string;
  idle: string[];
}

export class PoolManager {
  private readonly pools = new Map<string, Pool>();
  private readonly listeners = new Set<(event: PoolEvent) => void>();
  private readonly dir: string | null;

  constructor(
    private readonly manager: VmManager,
    stateDir: string | null,
    private readonly log: (message: string) => void,
  ) {
    this.dir = stateDir === null ? null : join(stateDir, "pools");
    manager.onEvent((event) => {
      if (event.type === "deleted") this.removeCloneDisks(event.vm);
      if (event.type !== "deleted" && event.type !== "state") return;
      if (event.type === "state" && event.vm.state !== "failed" && event.vm.state !== "stopped") return;
      const pool = this.poolOf(event.vm.name);
      // A closed pool's VMs stop with the daemon: the next one deletes them (open()).
      if (pool === undefined || pool.closed) return;
      const why = event.type === "deleted" ? "was deleted" : (event.vm.reason ?? `is ${event.vm.state}`);
      void this.lose(pool, event.vm.name, `idle VM '${event.vm.name}' ${why}`);
    });
  }

  /** Reads the pools back: their idle VMs from before are deleted, fresh ones booted. */
  async open(): Promise<void> {
    if (this.dir === null) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const file of readdirSync(this.dir).sort()) {
      if (!file.endsWith(".json")) continue;
      let record: PoolRecord;
      try {
        record = JSON.parse(readFileSync(join(this.dir, file), "utf8")) as PoolRecord;
        if (record.format !== 1) throw new Error(`unknown format ${JSON.stringify(record.format)}`);
        validateVmSpec(record.spec);
      } catch (e) {
        this.log(`skipping damaged pool file ${file}: ${(e as Error).message}`);
        continue;
      }
      for (const name of record.idle) await this.manager.delete(name).catch(() => {});
      // A fresh template each run: the last one's guest booted under another daemon.
      removeSnapshotFiles(join(this.dir, record.id, "template"));
      const pool = this.newPool(record.id, record.name, record.spec, record.size, record.readyMarker);
      pool.createdAt = record.createdAt;
      this.pools.set(pool.id, pool);
      this.save(pool);
      void this.fill(pool);
    }
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  create(body: PoolRequest): PoolInfo {
    const name = body.name ?? `pool-${randomBytes(3).toString("hex")}`;
    if ([...this.pools.values()].some((p) => p.name === name)) {
      throw new ManagerError("conflict", `a pool named '${name}' exists`);
    }
    if (!Number.isInteger(body.size) || body.size < 0 || body.size > MAX_POOL_SIZE) {
      const message = `must be an integer from 0 to ${MAX_POOL_SIZE}`;
      throw new ManagerError("invalid", `/size: ${message}`, [{ path: "/size", message }]);
    }
    let spec: VmSpec;
    try {
      spec = validateVmSpec(body.spec);
      // The files it names, as a definition would check them: a pool of VMs that cannot start is bad input.
      this.manager.check({ ...spec, name: `${name}-check` });
    } catch (e) {
      const problems = e instanceof VmSpecError ? e.problems : e instanceof ManagerError ? e.fields : null;
      if (problems === null) throw e;
      const fields = problems.map((p) => ({ path: `/spec${p.path}`, message: p.message }));
      throw new ManagerError("invalid", fields.map((f) => `${f.path}: ${f.message}`).join("; "), fields);
    }
    const marker =
      body.readyMarker === undefined
        ? spec.boot.initrd === undefined
          ? null
          : DEFAULT_READY_MARKER
        : body.readyMarker;
    const pool = this.newPool(randomUUID(), name, spec, body.size, marker);
    this.pools.set(pool.id, pool);
    this.save(pool);
    this.log(`created pool '${name}' (${pool.id}) of ${pool.size}`);
    this.emit(pool, "created");
    void this.fill(pool);
    return this.info(pool);
  }

  list(): PoolInfo[] {
    return [...this.pools.values()].map((p) => this.info(p));
  }

  get(idOrName: string): PoolInfo {
    return this.info(this.find(idOrName));
  }

  /** Stops refilling, fails the waiting acquirers and deletes the idle VMs (acquired ones stay). */
  async delete(idOrName: string): Promise<void> {
    const pool = this.find(idOrName);
    this.end(pool, `pool '${pool.name}' was deleted`);
    this.pools.delete(pool.id);
    // A VM being started now is deleted by the fill itself once it is up (dropLate).
    await pool.filling?.catch(() => {});
    if (this.dir !== null) rmSync(join(this.dir, `${pool.id}.json`), { force: true });
    const idle = [...pool.members.values()];
    pool.members.clear();
    for (const m of idle) m.unwatch();
    await Promise.all(idle.map((m) => this.manager.delete(m.name).catch(() => {})));
    // The template goes; the disks of acquired clones (in its clones/) stay until those VMs are deleted.
    if (pool.template !== null) removeSnapshotFiles(pool.template);
    this.log(`deleted pool '${pool.name}'`);
    this.emit(pool, "deleted");
  }

  /**
   * A ready VM, at once when there is one; else the first to get ready within `timeoutMs` (first come,
   * first served). `signal` withdraws the request (the client went away).
   */
  acquire(idOrName: string, timeoutMs: number, signal?: AbortSignal): Promise<VmInfo> {
    const pool = this.find(idOrName);
    const ready = [...pool.members.values()].find((m) => m.state === "ready");
    if (ready !== undefined) return Promise.resolve(this.take(pool, ready));
    if (pool.size === 0) {
      throw new ManagerError("unavailable", `pool '${pool.name}' has size 0: it has no VM to hand out`);
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", withdraw);
        pool.waiters = pool.waiters.filter((w) => w !== waiter);
      };
      const waiter: Waiter = {
        give: (vm) => {
          done();
          resolve(vm);
        },
        fail: (e) => {
          done();
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const booting = this.booting(pool);
        const why = pool.lastError === null ? "" : `; last failure: ${pool.lastError}`;
        waiter.fail(
          new ManagerError(
            "timeout",
            `pool '${pool.name}' had no ready VM within ${timeoutMs} ms (${booting} booting${why})`,
          ),
        );
      }, timeoutMs);
      const withdraw = () => waiter.fail(new ManagerError("unavailable", "the client went away"));
      signal?.addEventListener("abort", withdraw);
      pool.waiters.push(waiter);
      // A replacement held back for an acquired VM's first exec starts now: someone needs it.
      void this.fill(pool);
    });
  }

  /** Deletes a VM acquired from the pool. */
  async release(idOrName: string, vm: string): Promise<void> {
    const pool = this.find(idOrName);
    const info = this.manager.get(vm);
    if (info.labels[POOL_LABEL] !== pool.name) {
      throw new ManagerError("conflict", `VM '${info.name}' is not from pool '${pool.name}'`);
    }
    if (pool.members.has(info.name)) {
      throw new ManagerError(
        "conflict",
        `VM '${info.name}' is idle in pool '${pool.name}': acquire it first`,
      );
    }
    await this.manager.delete(info.name);
    this.emit(pool, "released", info.name);
  }

  /** The daemon stops: no more starts, no more waiting (the idle VMs are replaced at its next start). */
  close(): void {
    for (const pool of this.pools.values()) this.end(pool, "the daemon is stopping");
  }

  private end(pool: Pool, why: string): void {
    pool.closed = true;
    if (pool.retry !== null) clearTimeout(pool.retry);
    for (const w of [...pool.waiters]) w.fail(new ManagerError("unavailable", why));
  }

  private newPool(id: string, name: string, spec: VmSpec, size: number, marker: string | null): Pool {
    return {
      id,
      name,
      spec,
      size,
      readyMarker: marker,
      createdAt: new Date().toISOString(),
      members: new Map(),
      waiters: [],
      closed: false,
      filling: null,
      failures: 0,
      retry: null,
      lastError: null,
      template: null,
      templateError: null,
      templating: false,
    };
  }

  /** Starts VMs until the pool holds `size`; one at a time, each start is quick next to a boot. */
  private async fill(pool: Pool): Promise<void> {
    if (pool.filling !== null || pool.retry !== null) return;
    pool.filling = (async () => {
      while (!pool.closed && pool.members.size < pool.size && pool.retry === null) await this.boot(pool);
    })().finally(() => {
      pool.filling = null;
    });
    await pool.filling;
  }

  private async boot(pool: Pool): Promise<void> {
    if (this.dir !== null && pool.spec.arch === "riscv64" && pool.templateError === null) {
      const template = pool.template ?? (await this.makeTemplate(pool));
      if (template !== null) return this.clone(pool, template);
    }
    const name = `${pool.name}-${randomBytes(4).toString("hex")}`;
    const labels = { ...pool.spec.labels, [POOL_LABEL]: pool.name };
    const member: Member = { name, state: "booting", unwatch: () => {} };
    try {
      this.manager.create({ ...pool.spec, name, labels, autostart: false });
      pool.members.set(name, member);
      this.save(pool);
      const marker = pool.readyMarker;
      if (marker !== null) {
        // Before the start, so that no output is missed; the marker may span two chunks.
        let tail = "";
        member.unwatch = this.manager.console(name).follow((chunk) => {
          const text = tail + Buffer.from(chunk).toString("latin1");
          if (text.includes(marker)) {
            member.unwatch();
            void this.agentUp(name).then(() => this.ready(pool, member));
          } else tail = text.slice(-marker.length);
        });
      }
      await this.manager.act(name, "start");
      // Deleted while it started: the pool's delete could not delete a VM being started.
      if (pool.members.get(name) !== member || pool.closed) await this.dropLate(pool, name);
      else if (marker === null) this.ready(pool, member);
    } catch (e) {
      await this.lose(pool, name, `VM '${name}' did not start: ${(e as Error).message}`);
    }
  }

  /**
   * Boots the pool's spec once, waits for it to be ready, and saves it as the template snapshot; null
   * (with the pool's templateError set, so that it boots its VMs instead) when that fails.
   */
  private async makeTemplate(pool: Pool): Promise<string | null> {
    const name = `${pool.name}-template-${randomBytes(4).toString("hex")}`;
    const path = join(this.dir as string, pool.id, "template");
    pool.templating = true;
    try {
      this.manager.create({ ...pool.spec, name, labels: { ...pool.spec.labels, [POOL_LABEL]: pool.name } });
      const marker = pool.readyMarker;
      let seen = marker === null;
      let tail = "";
      const unwatch =
        marker === null
          ? () => {}
          : this.manager.console(name).follow((chunk) => {
              const text = tail + Buffer.from(chunk).toString("latin1");
              if (text.includes(marker)) seen = true;
              else tail = text.slice(-marker.length);
            });
      try {
        await this.manager.act(name, "start");
        while (!seen) {
          if (pool.closed) throw new Error("the pool closed");
          const state = this.manager.get(name).state;
          if (state !== "running") throw new Error(`the template VM is ${state}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        unwatch();
      }
      // Clones continue this guest: its agent must be listening already, or each clone's first exec
      // would find nobody at the port.
      await this.agentUp(name);
      removeSnapshotFiles(path);
      await this.manager.snapshot(name, { path, resume: false });
      pool.template = path;
      this.log(`pool '${pool.name}': template snapshot of a booted VM in ${path}`);
      return path;
    } catch (e) {
      pool.templateError = (e as Error).message;
      this.log(`pool '${pool.name}': no template snapshot (${pool.templateError}); booting each VM`);
      return null;
    } finally {
      pool.templating = false;
      await this.manager.delete(name).catch(() => {});
    }
  }

  /**
   * Waits until the running VM's guest agent answers a ping (AGENT_WAIT_MS at most; at once for a VM
   * without one), then lets go of the link so that no connection is open when the VM is handed out or
   * saved.
   */
  private async agentUp(name: string): Promise<void> {
    const deadline = Date.now() + AGENT_WAIT_MS;
    for (;;) {
      let agent: ReturnType<VmManager["agent"]>;
      try {
        agent = this.manager.agent(name);
      } catch {
        return;
      }
      try {
        await agent.call("guest-ping", undefined, 5_000);
        await agent.release();
        return;
      } catch (e) {
        agent.close();
        if (Date.now() >= deadline) {
          this.log(
            `VM '${name}': its guest agent did not answer (${(e as Error).message}); ready without it`,
          );
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A VM cloned from the template: ready as soon as it runs (the guest it continues had booted). */
  private async clone(pool: Pool, template: string): Promise<void> {
    const name = `${pool.name}-${randomBytes(4).toString("hex")}`;
    const member: Member = { name, state: "booting", unwatch: () => {} };
    pool.members.set(name, member);
    this.save(pool);
    try {
      await this.manager.createFromSnapshot({ name, clone: template });
      if (pool.members.get(name) !== member || pool.closed) await this.dropLate(pool, name);
      else this.ready(pool, member);
    } catch (e) {
      await this.lose(
        pool,
        name,
        `VM '${name}' did not start from the pool's snapshot: ${(e as Error).message}`,
      );
    }
  }

  /**
   * A VM that came up after its pool was deleted or the daemon began to stop (which stops only the VMs
   * there were): deleted, or its worker would keep a stopped daemon's process alive.
   */
  private async dropLate(pool: Pool, name: string): Promise<void> {
    if (pool.members.delete(name)) this.save(pool);
    await this.manager.delete(name).catch(() => {});
  }

  /** A clone's disks were copied next to the template for it: they go with the VM. */
  private removeCloneDisks(vm: VmInfo): void {
    const pool = [...this.pools.values()].find((p) => p.name === vm.labels[POOL_LABEL]);
    if (pool?.template == null) return;
    rmSync(clonesDir(pool.template, vm.name), { recursive: true, force: true });
  }

  private booting(pool: Pool): number {
    let n = pool.templating ? 1 : 0;
    for (const m of pool.members.values()) if (m.state === "booting") n++;
    return n;
  }

  private ready(pool: Pool, member: Member): void {
    if (member.state === "ready" || pool.members.get(member.name) !== member) return;
    member.unwatch();
    member.state = "ready";
    pool.failures = 0;
    pool.lastError = null;
    this.emit(pool, "ready", member.name);
    const waiter = pool.waiters[0];
    if (waiter !== undefined) waiter.give(this.take(pool, member));
    else this.openAgentLink(member.name, true);
  }

  /**
   * Connects and syncs the idle VM's agent link (kept by the manager's GuestAgent), so that the first
   * exec after an acquire does not pay for the vsock CONNECT and guest-sync-delimited. Never for a
   * template: a snapshot must not hold a connection. A link that fails is made again by the next call.
   */
  private openAgentLink(name: string, warmUp = false): void {
    let agent: ReturnType<VmManager["agent"]>;
    try {
      agent = this.manager.agent(name);
    } catch {
      return; // No agent (or no longer running): nothing to open.
    }
    const linked = agent.link();
    if (warmUp) void linked.then((client) => warmUpExec(client)).catch(() => {});
    else linked.catch(() => {});
  }

  private take(pool: Pool, member: Member): VmInfo {
    pool.members.delete(member.name);
    this.save(pool);
    this.emit(pool, "acquired", member.name);
    // Handed out straight from booting (to a waiter), or its warm link broke: connect it now.
    this.openAgentLink(member.name);
    void this.refillAfterFirstExec(pool, member.name);
    return this.manager.get(member.name);
  }

  /** Refills once the acquired VM's first exec answered, REFILL_GRACE_MS passed, or someone waits. */
  private async refillAfterFirstExec(pool: Pool, name: string): Promise<void> {
    let agent: ReturnType<VmManager["agent"]> | null = null;
    try {
      agent = this.manager.agent(name);
    } catch {
      // No agent: no exec to wait for.
    }
    if (agent !== null && pool.waiters.length === 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => {
        timer = setTimeout(r, REFILL_GRACE_MS);
        timer.unref();
      });
      await Promise.race([agent.firstExec, grace]);
      clearTimeout(timer);
    }
    await this.fill(pool);
  }

  /** An idle VM that failed, stopped or went: deleted, replaced after a delay that grows with failures. */
  private async lose(pool: Pool, name: string, why: string): Promise<void> {
    const member = pool.members.get(name);
    if (member !== undefined) {
      member.unwatch();
      pool.members.delete(name);
      this.save(pool);
    }
    pool.failures++;
    pool.lastError = why;
    this.log(`pool '${pool.name}': ${why}`);
    this.emit(pool, "failed", name);
    await this.manager.delete(name).catch(() => {});
    if (pool.closed || pool.retry !== null) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (pool.failures - 1));
    pool.retry = setTimeout(() => {
      pool.retry = null;
      void this.fill(pool);
    }, delay);
    pool.retry.unref();
  }

  private poolOf(vm: string): Pool | undefined {
    for (const p of this.pools.values()) if (p.members.has(vm)) return p;
    return undefined;
  }

  private find(idOrName: string): Pool {
    const byId = this.pools.get(idOrName);
    if (byId !== undefined) return byId;
    for (const p of this.pools.values()) if (p.name === idOrName) return p;
    throw new ManagerError("not-found", `no pool '${idOrName}'`);
  }

  private info(pool: Pool): PoolInfo {
    const members = [...pool.members.values()];
    return {
      id: pool.id,
      name: pool.name,
      size: pool.size,
      ready: members.filter((m) => m.state === "ready").length,
      booting: this.booting(pool),
      waiting: pool.waiters.length,
      readyMarker: pool.readyMarker,
      vms: members.map((m) => m.name),
      createdAt: pool.createdAt,
      ...(pool.lastError === null ? {} : { lastError: pool.lastError }),
      source: pool.template !== null ? "snapshot" : "boot",
      ...(pool.templateError === null ? {} : { snapshotError: pool.templateError }),
      spec: pool.spec,
    };
  }

  private emit(pool: Pool, change: PoolEvent["change"], vm?: string): void {
    const event: PoolEvent = {
      type: "pool",
      change,
      pool: this.info(pool),
      ...(vm === undefined ? {} : { vm }),
    };
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (e) {
        this.log(`event listener failed: ${(e as Error).message}`);
      }
    }
  }

  /** Atomically, as VM definitions are: the old record or the new one, never half of one. */
  private save(pool: Pool): void {
    if (this.dir === null || !this.pools.has(pool.id)) return;
    const record: PoolRecord = {
      format: 1,
      id: pool.id,
      name: pool.name,
      spec: pool.spec,
      size: pool.size,
      readyMarker: pool.readyMarker,
      createdAt: pool.createdAt,
      idle: [...pool.members.keys()],
    };
    const file = join(this.dir, `${pool.id}.json`);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}

/**
 * Runs `true` through the agent of an idle VM, as a client's exec would (guest-exec, then
 * guest-exec-status until it exited), without counting as the VM's first exec: a restored or booted
 * VM's interpreter has decoded none of the guest's fork and exec paths yet, and the first exec paid
 * for that. The guest itself keeps nothing of it but a reaped process.
 */
async function warmUpExec(client: QgaClient): Promise<void> {
  const { pid } = await client.call<{ pid: number }>(
    "guest-exec",
    { path: "true", arg: [] },
    { timeoutMs: 10_000 },
  );
  for (let wait = EXEC_POLL_FIRST_MS; ; wait = Math.min(wait * 2, EXEC_POLL_MAX_MS)) {
    const status = await client.call<{ exited: boolean }>(
      "guest-exec-status",
      { pid },
      { timeoutMs: 10_000 },
    );
    if (status.exited) return;
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** A snapshot's own files (its clones/ folder, holding live VMs' disks, is left). */
function removeSnapshotFiles(path: string): void {
  for (const file of [STATE_FILE, MEMORY_FILE]) rmSync(join(path, file), { force: true });
}
