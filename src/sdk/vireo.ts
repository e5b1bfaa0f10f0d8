/**
 * The typed client of a Vireo daemon: one method per route of the OpenAPI document, named after its
 * operationId, with the shorter names a script wants beside them (start, stats, acquire, ...).
 * Bodies and answers are typed from the schemas the document is generated from (types.ts).
 */
import type { OperationId } from "../api/routes.js";
import { defaultSocket } from "../cli/daemon-paths.js";
import { ConsoleSession } from "./console.js";
import { ExecSession, type ExecStreamOptions } from "./exec.js";
import { readText, type Sent, send, serverSentEvents, type Target } from "./transport.js";
import type {
  AcquireOptions,
  Balloon,
  CpuShare,
  DriveSpec,
  ExecRequest,
  ExecResult,
  HostInfo,
  MigrateInRequest,
  MigrateInResult,
  MigrateRequest,
  MigrationResult,
  NicSpec,
  Pool,
  PoolCreate,
  SnapshotRequest,
  SnapshotResult,
  VireoEvent,
  VmAction,
  VmFromSnapshot,
  VmInfo,
  VmSpec,
  VmStats,
} from "./types.js";

export interface VireoOptions {
  /** The daemon's Unix socket; default where `vireo daemon` puts it ($XDG_RUNTIME_DIR/vireo/vireo.sock). */
  socket?: string;
  /** The daemon's TCP listener instead (`vireo daemon --listen`), e.g. http://127.0.0.1:8710. */
  url?: string | URL;
  /** With `url`: the token in the daemon's state directory. */
  token?: string;
}

const seg = encodeURIComponent;

export class Vireo {
  private readonly target: Target;

  constructor(options: VireoOptions = {}) {
    if (options.url !== undefined) {
      const url = new URL(options.url);
      this.target = options.token === undefined ? { url } : { url, token: options.token };
    } else this.target = { socket: options.socket ?? defaultSocket() };
  }

  private async json<T>(req: Sent): Promise<T> {
    return JSON.parse(await readText(await send(this.target, req))) as T;
  }

  private async none(req: Sent): Promise<void> {
    await readText(await send(this.target, req));
  }

  private async text(req: Sent): Promise<string> {
    return readText(await send(this.target, req));
  }

  // VMs

  /**
   * Defines a VM (the same spec under the same name again returns that VM); or, given
   * `{ name, restore }` or `{ name, clone }` with a snapshot's absolute path, defines and starts it from
   * that snapshot.
   */
  createVm(spec: VmSpec | VmFromSnapshot): Promise<VmInfo> {
    return this.json({ method: "POST", path: "/vms", body: spec });
  }

  // The guest agent (riscv64 Linux guests of the default image: qemu-ga over vsock)

  /**
   * Runs a program in the guest: its exit code and output (see ExecResult: UTF-8 text, else base64);
   * a program that is not there is exit code 127, past `timeoutMs` a VireoApiError 504.
   */
  vmExec(id: string, request: ExecRequest): Promise<ExecResult> {
    return this.json({ method: "POST", path: `/vms/${seg(id)}/exec`, body: request });
  }

  /**
   * Runs a program in the guest with its output streamed (the WebSocket form of vmExec): `stdout` and
   * `stderr` are readable streams, stdin is `options.stdin` or written with write()/endStdin(), and
   * `exit` resolves with its exit code (a program that is not there: 127) or says it timed out.
   */
  vmExecStream(id: string, argv: string[], options: ExecStreamOptions = {}): Promise<ExecSession> {
    const start = {
      argv,
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    const { url, headers } = this.webSocketTarget(`/vms/${seg(id)}/exec`);
    return ExecSession.open(url, headers, start, options.stdin);
  }

  /** vmExecStream. */
  execStream(id: string, argv: string[], options: ExecStreamOptions = {}): Promise<ExecSession> {
    return this.vmExecStream(id, argv, options);
  }

  /** Writes `data` (bytes, or a stream of them: any size) to the file `path` in the guest. */
  putFile(
    id: string,
    path: string,
    data: Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<{ path: string; bytes: number }> {
    return this.json({ method: "PUT", path: `/vms/${seg(id)}/files?path=${seg(path)}`, raw: data });
  }

  /** The guest file `path`'s bytes. */
  async getFile(id: string, path: string): Promise<Uint8Array> {
    const res = await send(this.target, { method: "GET", path: `/vms/${seg(id)}/files?path=${seg(path)}` });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** Asks the guest, through its agent, to power off. */
  async guestShutdown(id: string): Promise<void> {
    await this.none({ method: "POST", path: `/vms/${seg(id)}/shutdown` });
  }

  /** Saves a running or paused VM (riscv64, or x86_64 on KVM) into the directory `path` (absolute; see SnapshotRequest). */
  snapshotVm(id: string, request: SnapshotRequest): Promise<SnapshotResult> {
    return this.json({ method: "POST", path: `/vms/${seg(id)}/snapshot`, body: request });
  }

  /** Has the daemon wait at `listen` for one VM migrating in, to be named `name` (see migrateVm). */
  migrateIn(request: MigrateInRequest): Promise<MigrateInResult> {
    return this.json({ method: "POST", path: "/vms/migrate-in", body: request });
  }

  /** Live-migrates a running riscv64 VM to a daemon waiting at `to`; resolves once it runs there. */
  migrateVm(id: string, request: MigrateRequest): Promise<MigrationResult> {
    return this.json({ method: "POST", path: `/vms/${seg(id)}/migrate`, body: request });
  }

  /** Every VM, or those carrying all of `labels`. */
  listVms(labels: Record<string, string> = {}): Promise<VmInfo[]> {
    const query = Object.entries(labels)
      .map(([k, v]) => `label=${seg(`${k}=${v}`)}`)
      .join("&");
    return this.json({ method: "GET", path: query === "" ? "/vms" : `/vms?${query}` });
  }

  getVm(id: string): Promise<VmInfo> {
    return this.json({ method: "GET", path: `/vms/${seg(id)}` });
  }

  /** Kills the VM if it runs and forgets it. */
  deleteVm(id: string): Promise<void> {
    return this.none({ method: "DELETE", path: `/vms/${seg(id)}` });
  }

  vmAction(id: string, action: VmAction, options: { graceMs?: number } = {}): Promise<VmInfo> {
    const query = options.graceMs === undefined ? "" : `?grace_ms=${options.graceMs}`;
    return this.json({ method: "POST", path: `/vms/${seg(id)}/actions/${action}${query}` });
  }

  start(id: string): Promise<VmInfo> {
    return this.vmAction(id, "start");
  }

  pause(id: string): Promise<VmInfo> {
    return this.vmAction(id, "pause");
  }

  resume(id: string): Promise<VmInfo> {
    return this.vmAction(id, "resume");
  }

  /** The guest gets `graceMs` to end on its own, then it is killed. */
  stop(id: string, options: { graceMs?: number } = {}): Promise<VmInfo> {
    return this.vmAction(id, "stop", options);
  }

  kill(id: string): Promise<VmInfo> {
    return this.vmAction(id, "kill");
  }

  reboot(id: string): Promise<VmInfo> {
    return this.vmAction(id, "reboot");
  }

  vmStats(id: string): Promise<VmStats> {
    return this.json({ method: "GET", path: `/vms/${seg(id)}/stats` });
  }

  stats(id: string): Promise<VmStats> {
    return this.vmStats(id);
  }

  /** The last 64 KiB of the VM's console output. */
  vmConsole(id: string): Promise<string> {
    return this.text({ method: "GET", path: `/vms/${seg(id)}/console` });
  }

  console(id: string): Promise<string> {
    return this.vmConsole(id);
  }

  /** What the console holds, then its new output as it comes, until `signal` aborts. */
  async *followConsole(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const res = await send(this.target, {
      method: "GET",
      path: `/vms/${seg(id)}/console?follow`,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    res.setEncoding("utf8");
    try {
      for await (const chunk of res as AsyncIterable<string>) yield chunk;
    } catch (e) {
      // An abort ends the stream, as the caller asked: not an error.
      if (options.signal?.aborted !== true) throw e;
    }
  }

  /** The interactive console (the WebSocket form of vmConsole): output, input, expect(). */
  openConsole(id: string): Promise<ConsoleSession> {
    const { url, headers } = this.webSocketTarget(`/vms/${seg(id)}/console`);
    return ConsoleSession.open(url, headers);
  }

  /** Where a WebSocket route of the daemon is reached, and the headers it needs. */
  private webSocketTarget(path: string): { url: string; headers: Record<string, string> } {
    if ("socket" in this.target) return { url: `ws+unix://${this.target.socket}:${path}`, headers: {} };
    const url = new URL(this.target.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.pathname = `${url.pathname.replace(/\/$/, "")}${path}`;
    const token = this.target.token;
    return { url: url.href, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } };
  }

  getBalloon(id: string): Promise<Balloon> {
    return this.json({ method: "GET", path: `/vms/${seg(id)}/balloon` });
  }

  setBalloon(id: string, targetBytes: number): Promise<Balloon> {
    return this.json({ method: "PATCH", path: `/vms/${seg(id)}/balloon`, body: { targetBytes } });
  }

  setCpu(id: string, share: CpuShare): Promise<VmInfo> {
    return this.json({ method: "PATCH", path: `/vms/${seg(id)}/cpu`, body: share });
  }

  /** Adds the drive (or replaces the one with its id) of a VM not started yet. */
  putDrive(id: string, drive: DriveSpec): Promise<VmInfo> {
    return this.json({ method: "PUT", path: `/vms/${seg(id)}/drives/${seg(drive.id)}`, body: drive });
  }

  deleteDrive(id: string, driveId: string): Promise<VmInfo> {
    return this.json({ method: "DELETE", path: `/vms/${seg(id)}/drives/${seg(driveId)}` });
  }

  /** Replaces the NIC at `index`, or adds one with index = the count. */
  putNic(id: string, index: number, nic: NicSpec): Promise<VmInfo> {
    return this.json({ method: "PUT", path: `/vms/${seg(id)}/nets/${index}`, body: nic });
  }

  deleteNic(id: string, index: number): Promise<VmInfo> {
    return this.json({ method: "DELETE", path: `/vms/${seg(id)}/nets/${index}` });
  }

  // The daemon

  /** The daemon's events from now on (VMs, the memory governor, pools), until `signal` aborts. */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<VireoEvent> {
    const res = await send(this.target, {
      method: "GET",
      path: "/events",
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    try {
      for await (const event of serverSentEvents(res)) yield event as VireoEvent;
    } catch (e) {
      if (options.signal?.aborted !== true) throw e;
    }
  }

  /** Prometheus text. */
  metrics(): Promise<string> {
    return this.text({ method: "GET", path: "/metrics" });
  }

  getHost(): Promise<HostInfo> {
    return this.json({ method: "GET", path: "/host" });
  }

  host(): Promise<HostInfo> {
    return this.getHost();
  }

  health(): Promise<{ ok: boolean }> {
    return this.json({ method: "GET", path: "/healthz" });
  }

  /** The daemon's OpenAPI 3.1 document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.json({ method: "GET", path: "/openapi.json" });
  }

  // Warm pools

  createPool(pool: PoolCreate): Promise<Pool> {
    return this.json({ method: "POST", path: "/pools", body: pool });
  }

  listPools(): Promise<Pool[]> {
    return this.json({ method: "GET", path: "/pools" });
  }

  getPool(pool: string): Promise<Pool> {
    return this.json({ method: "GET", path: `/pools/${seg(pool)}` });
  }

  /** Deletes the pool and its idle VMs; acquired ones stay until released. */
  deletePool(pool: string): Promise<void> {
    return this.none({ method: "DELETE", path: `/pools/${seg(pool)}` });
  }

  /**
   * A booted VM of the pool, now yours: at once when one is ready, else the first to get ready within
   * `timeoutMs` (default 30 s; past it a VireoApiError with status 504); `signal` gives up waiting.
   */
  acquireVm(pool: string, options: AcquireOptions & { signal?: AbortSignal } = {}): Promise<VmInfo> {
    const { signal, ...body } = options;
    // An abort while it waits withdraws the request: the daemon then hands that VM to no one.
    return this.json({
      method: "POST",
      path: `/pools/${seg(pool)}/acquire`,
      body,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  acquire(pool: string, options: AcquireOptions & { signal?: AbortSignal } = {}): Promise<VmInfo> {
    return this.acquireVm(pool, options);
  }

  /** Deletes a VM acquired from the pool. */
  releaseVm(pool: string, vm: string): Promise<void> {
    return this.none({ method: "POST", path: `/pools/${seg(pool)}/release`, body: { vm } });
  }

  release(pool: string, vm: string): Promise<void> {
    return this.releaseVm(pool, vm);
  }
}

/** Each operation of the API and the method that calls it: tsc refuses a route the SDK lacks. */
export const OPERATIONS = {
  createVm: "createVm",
  snapshotVm: "snapshotVm",
  vmExec: "vmExec",
  putFile: "putFile",
  getFile: "getFile",
  guestShutdown: "guestShutdown",
  listVms: "listVms",
  getVm: "getVm",
  deleteVm: "deleteVm",
  vmAction: "vmAction",
  vmStats: "vmStats",
  vmConsole: "vmConsole",
  getBalloon: "getBalloon",
  setBalloon: "setBalloon",
  setCpu: "setCpu",
  putDrive: "putDrive",
  deleteDrive: "deleteDrive",
  putNic: "putNic",
  deleteNic: "deleteNic",
  events: "events",
  metrics: "metrics",
  getHost: "getHost",
  health: "health",
  openapi: "openapi",
  createPool: "createPool",
  listPools: "listPools",
  getPool: "getPool",
  deletePool: "deletePool",
  acquireVm: "acquireVm",
  releaseVm: "releaseVm",
  migrateIn: "migrateIn",
  migrateVm: "migrateVm",
  vmExecStream: "vmExecStream",
} as const satisfies Record<OperationId, keyof Vireo>;
