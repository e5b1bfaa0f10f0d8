/**
 * The API's routes as data: the server registers them (app.ts) and the OpenAPI document is generated
 * from them (openapi.ts), so the two cannot drift apart. Shaped like Cloud Hypervisor's: resources
 * under /vms, and state changes as actions (`POST /vms/{id}/actions/start`), which read as verbs in
 * logs and leave room for actions that are not states (reboot).
 */
import type { TSchema } from "@sinclair/typebox";
import { CpuShareSchema, DriveSchema, NicSchema } from "../vm/spec.js";
import {
  AcquireSchema,
  ActionParams,
  ActionQuery,
  BalloonTargetSchema,
  ConsoleQuery,
  DriveParams,
  ExecBodySchema,
  FileQuery,
  ListQuery,
  MigrateInRequestSchema,
  MigrateRequestSchema,
  NicParams,
  PoolCreateSchema,
  PoolParams,
  ReleaseSchema,
  SnapshotRequestSchema,
  VmCreateSchema,
  VmIdParams,
} from "./schemas.js";

export type OperationId =
  | "createVm"
  | "listVms"
  | "getVm"
  | "deleteVm"
  | "vmAction"
  | "vmStats"
  | "vmConsole"
  | "getBalloon"
  | "setBalloon"
  | "setCpu"
  | "putDrive"
  | "deleteDrive"
  | "putNic"
  | "deleteNic"
  | "events"
  | "metrics"
  | "getHost"
  | "health"
  | "openapi"
  | "createPool"
  | "listPools"
  | "getPool"
  | "deletePool"
  | "acquireVm"
  | "releaseVm"
  | "snapshotVm"
  | "vmExec"
  | "putFile"
  | "getFile"
  | "guestShutdown"
  | "migrateIn"
  | "migrateVm"
  | "vmExecStream";

export interface RouteDef {
  operationId: OperationId;
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Fastify's form (":id"); the document writes "{id}". */
  url: string;
  summary: string;
  body?: TSchema;
  params?: TSchema;
  querystring?: TSchema;
  /** Status → description and, where JSON, the schema's $id ("VmInfo", "Error") or "object". */
  responses: Record<
    string,
    { description: string; json?: string; text?: true; eventStream?: true; websocket?: true; binary?: true }
  >;
  /** The body is raw bytes (application/octet-stream, streamed, any size) rather than JSON. */
  rawBody?: true;
}

const notFound = { "404": { description: "No VM of that name or id", json: "Error" } };

/** Drives and NICs change only in a VM's definition, so only before it first starts. */
const definitionEdits = {
  ...notFound,
  "409": { description: "The VM has started (or is being started or deleted)", json: "Error" },
};

/**
 * What a request can get wrong before its handler runs, by what the route takes: a malformed URL or
 * a parameter, query or body the schema refuses (400), a path parameter over 1 KiB (414), and where
 * Fastify reads a body (every method but GET), one over 1 MiB (413) or not JSON (415).
 */
function requestErrors(r: RouteDef): RouteDef["responses"] {
  const errors: RouteDef["responses"] = {};
  const body = r.method !== "GET";
  if (r.params !== undefined || r.querystring !== undefined || body) {
    errors["400"] = {
      description: "A malformed URL, or a parameter, query or body the schema refuses",
      json: "Error",
    };
  }
  if (r.params !== undefined) errors["414"] = { description: "A path parameter over 1 KiB", json: "Error" };
  if (body) {
    errors["413"] = { description: "A body over 1 MiB", json: "Error" };
    errors["415"] = { description: "A body that is not application/json", json: "Error" };
  }
  return errors;
}

/** The route's own responses first; the request errors it does not describe itself after them. */
function documented(r: RouteDef): RouteDef {
  const generic = Object.entries(requestErrors(r)).filter(([status]) => !(status in r.responses));
  return { ...r, responses: { ...r.responses, ...Object.fromEntries(generic) } };
}

const TABLE: RouteDef[] = [
  {
    operationId: "createVm",
    method: "POST",
    url: "/vms",
    summary:
      "Defines a VM (idempotent by name: the same spec again answers 200 with the VM); or, from a snapshot ({name, restore} or {name, clone}), defines and starts it where the snapshot left off",
    body: VmCreateSchema,
    responses: {
      "201": { description: "Defined", json: "VmInfo" },
      "200": { description: "A VM with this name and this spec exists", json: "VmInfo" },
      "400": {
        description: "Malformed JSON, a field the schema refuses, a file that is not there",
        json: "Error",
      },
      "409": { description: "A different VM has this name", json: "Error" },
      "413": { description: "Body over 1 MiB", json: "Error" },
    },
  },
  {
    operationId: "listVms",
    method: "GET",
    url: "/vms",
    summary: "Every VM, or those carrying the given labels",
    querystring: ListQuery,
    responses: { "200": { description: "The VMs", json: "VmInfo[]" } },
  },
  {
    operationId: "getVm",
    method: "GET",
    url: "/vms/:id",
    summary: "One VM",
    params: VmIdParams,
    responses: { "200": { description: "The VM", json: "VmInfo" }, ...notFound },
  },
  {
    operationId: "deleteVm",
    method: "DELETE",
    url: "/vms/:id",
    summary: "Kills the VM if it runs and forgets its definition",
    params: VmIdParams,
    responses: { "204": { description: "Deleted" }, ...notFound },
  },
  {
    operationId: "vmAction",
    method: "POST",
    url: "/vms/:id/actions/:action",
    summary: "start, pause, resume, stop (grace period, then kill) or kill; answers once it is done",
    params: ActionParams,
    querystring: ActionQuery,
    responses: {
      "200": { description: "Done; the VM as it is now", json: "VmInfo" },
      "400": {
        description:
          "start, reboot: the VM cannot be built (a file gone, a TAP that does not open); an unknown action",
        json: "Error",
      },
      ...notFound,
      "409": { description: "The action does not fit the VM's state", json: "Error" },
    },
  },
  {
    operationId: "vmStats",
    method: "GET",
    url: "/vms/:id/stats",
    summary: "Counters of the current or last run (instructions, traps, exits, devices)",
    params: VmIdParams,
    responses: { "200": { description: "The counters", json: "object" }, ...notFound },
  },
  {
    operationId: "vmConsole",
    method: "GET",
    url: "/vms/:id/console",
    summary:
      "The last 64 KiB of console output; with ?follow, then new output as it comes. With Upgrade: websocket, an interactive console: every connection gets the last 64 KiB and then new output as binary frames; the first to send input holds the input until it closes, others' input closes them with code 4009 (an unknown VM: 4404)",
    params: VmIdParams,
    querystring: ConsoleQuery,
    responses: {
      "200": { description: "Console bytes", text: true },
      "101": { description: "Switched to the WebSocket console", websocket: true },
      ...notFound,
    },
  },
  {
    operationId: "getBalloon",
    method: "GET",
    url: "/vms/:id/balloon",
    summary: "The balloon of a running or paused VM: its target, what the guest holds, peaks",
    params: VmIdParams,
    responses: {
      "200": { description: "The balloon's figures", json: "Balloon" },
      ...notFound,
      "409": { description: "The VM has no balloon, or is not running or paused", json: "Error" },
    },
  },
  {
    operationId: "setBalloon",
    method: "PATCH",
    url: "/vms/:id/balloon",
    summary:
      "Asks the guest of a running or paused VM to hold targetBytes in its balloon (0 gives it all back); the definition keeps the target a fresh start asks for",
    params: VmIdParams,
    body: BalloonTargetSchema,
    responses: {
      "200": {
        description: "Set; the balloon's figures (the guest follows in its own time)",
        json: "Balloon",
      },
      "400": {
        description: "A target that is negative, not a multiple of 4K, or not below the VM's memory",
        json: "Error",
      },
      ...notFound,
      "409": { description: "The VM has no balloon, or is not running or paused", json: "Error" },
    },
  },
  {
    operationId: "setCpu",
    method: "PATCH",
    url: "/vms/:id/cpu",
    summary:
      "How the VM gets host CPU (shared: weight, cap, reservation; or dedicated); saved in its definition, applied at once to a running shared VM, a change of mode at its next start",
    params: VmIdParams,
    body: CpuShareSchema,
    responses: {
      "200": { description: "Changed", json: "VmInfo" },
      "400": { description: "A share out of range, or fields a dedicated VM has not", json: "Error" },
      ...notFound,
      "409": {
        description: "A running VM asked to change mode, or reservations the pool cannot hold",
        json: "Error",
      },
    },
  },
  {
    operationId: "putDrive",
    method: "PUT",
    url: "/vms/:id/drives/:drive",
    summary:
      "Adds the drive, or replaces the drive with this id, of a VM not started yet (its definition is saved); the body is a VmSpec drive whose id is the URL's",
    params: DriveParams,
    body: DriveSchema,
    responses: {
      "201": { description: "Added; the VM", json: "VmInfo" },
      "200": { description: "Replaced; the VM", json: "VmInfo" },
      "400": {
        description:
          "A field the schema refuses, an id other than the URL's, a file that is not there, a spec it would make invalid",
        json: "Error",
      },
      ...definitionEdits,
    },
  },
  {
    operationId: "deleteDrive",
    method: "DELETE",
    url: "/vms/:id/drives/:drive",
    summary: "Removes a drive from a VM not started yet (its definition is saved)",
    params: DriveParams,
    responses: {
      "200": { description: "Removed; the VM", json: "VmInfo" },
      ...definitionEdits,
      "404": { description: "No VM of that name or id, or no such drive", json: "Error" },
    },
  },
  {
    operationId: "putNic",
    method: "PUT",
    url: "/vms/:id/nets/:nic",
    summary:
      "Replaces the NIC at this place in the spec's nics of a VM not started yet, or adds one at the place after the last (its definition is saved); the body is a VmSpec NIC",
    params: NicParams,
    body: NicSchema,
    responses: {
      "201": { description: "Added; the VM", json: "VmInfo" },
      "200": { description: "Replaced; the VM", json: "VmInfo" },
      "400": {
        description:
          "A field the schema refuses, a place past the next one, a MAC or TAP given twice, too many devices",
        json: "Error",
      },
      ...definitionEdits,
    },
  },
  {
    operationId: "deleteNic",
    method: "DELETE",
    url: "/vms/:id/nets/:nic",
    summary: "Removes the NIC at this place from a VM not started yet; those after it move down one",
    params: NicParams,
    responses: {
      "200": { description: "Removed; the VM", json: "VmInfo" },
      ...definitionEdits,
      "404": { description: "No VM of that name or id, or no NIC at that place", json: "Error" },
    },
  },
  {
    operationId: "events",
    method: "GET",
    url: "/events",
    summary:
      "Server-sent events from now on: VM created, deleted, or changed state, or the memory governor set its balloon's target; each `data:` line is JSON {type, vm} (type memory adds memory: {vm, from, target, reason, available, at}); a warm pool's changes are type pool: {type, change (created, deleted, ready, acquired, released, failed), pool, vm?}",
    responses: { "200": { description: "An event stream", eventStream: true } },
  },
  {
    operationId: "metrics",
    method: "GET",
    url: "/metrics",
    summary:
      "Prometheus metrics: per-VM state, vCPUs, memory, instructions, console bytes; the daemon process",
    responses: { "200": { description: "Prometheus text format 0.0.4", text: true } },
  },
  {
    operationId: "getHost",
    method: "GET",
    url: "/host",
    summary:
      "Host CPUs and memory, what the running VMs hold, the memory governor's watermarks and last round, damaged definition files",
    responses: { "200": { description: "The host", json: "object" } },
  },
  {
    operationId: "health",
    method: "GET",
    url: "/healthz",
    summary: "Answers while the daemon serves",
    responses: { "200": { description: "Healthy", json: "object" } },
  },
  {
    operationId: "openapi",
    method: "GET",
    url: "/openapi.json",
    summary: "This document",
    responses: { "200": { description: "OpenAPI 3.1", json: "object" } },
  },
  {
    operationId: "createPool",
    method: "POST",
    url: "/pools",
    summary:
      "Creates a warm pool: it keeps `size` VMs of the spec defined, booted (the ready marker seen on the console, or running) and idle; each VM gets a name of its own (the spec's is a placeholder) and the label vireo.pool=NAME besides the spec's",
    body: PoolCreateSchema,
    responses: {
      "201": { description: "Created; its VMs boot in the background", json: "Pool" },
      "400": {
        description: "A field the schema refuses, a size out of 0–64, a spec with a file that is not there",
        json: "Error",
      },
      "409": { description: "A pool with this name exists", json: "Error" },
    },
  },
  {
    operationId: "listPools",
    method: "GET",
    url: "/pools",
    summary: "Every warm pool",
    responses: { "200": { description: "The pools", json: "Pool[]" } },
  },
  {
    operationId: "getPool",
    method: "GET",
    url: "/pools/:pool",
    summary: "One pool: its size, its ready and booting VMs, the acquirers waiting",
    params: PoolParams,
    responses: {
      "200": { description: "The pool", json: "Pool" },
      "404": { description: "No pool of that name or id", json: "Error" },
    },
  },
  {
    operationId: "deletePool",
    method: "DELETE",
    url: "/pools/:pool",
    summary: "Deletes the pool and its idle VMs (acquired ones stay); waiting acquirers get 503",
    params: PoolParams,
    responses: {
      "204": { description: "Deleted" },
      "404": { description: "No pool of that name or id", json: "Error" },
    },
  },
  {
    operationId: "acquireVm",
    method: "POST",
    url: "/pools/:pool/acquire",
    summary:
      "Hands out a ready VM of the pool at once, or the first to get ready within timeoutMs; it leaves the pool (an ordinary VM, named and labelled after it) and the pool boots a replacement",
    params: PoolParams,
    body: AcquireSchema,
    responses: {
      "200": { description: "The VM, running and booted, now the caller's", json: "VmInfo" },
      "404": { description: "No pool of that name or id", json: "Error" },
      "503": { description: "The pool has size 0, or was deleted while the request waited", json: "Error" },
      "504": { description: "No VM got ready before the deadline", json: "Error" },
    },
  },
  {
    operationId: "releaseVm",
    method: "POST",
    url: "/pools/:pool/release",
    summary: "Deletes a VM acquired from the pool (DELETE /vms/{id} does the same); it is never reused",
    params: PoolParams,
    body: ReleaseSchema,
    responses: {
      "204": { description: "Deleted" },
      "404": { description: "No pool, or no VM, of that name or id", json: "Error" },
      "409": { description: "The VM is not from this pool, or is still idle in it", json: "Error" },
    },
  },
  {
    operationId: "snapshotVm",
    method: "POST",
    url: "/vms/:id/snapshot",
    summary:
      "Saves a running or paused VM (riscv64, or x86_64 on KVM) into a directory (state and memory files); it runs on unless resume is false",
    params: VmIdParams,
    body: SnapshotRequestSchema,
    responses: {
      "200": { description: "Saved", json: "SnapshotResult" },
      "400": { description: "A relative path, a directory that cannot be written", json: "Error" },
      ...notFound,
      "409": { description: "The VM is not running or paused, or its board cannot be saved", json: "Error" },
    },
  },
  {
    operationId: "migrateIn",
    method: "POST",
    url: "/vms/migrate-in",
    summary:
      "Waits for one live migration at a socket: the VM it brings is defined under this name and runs once it has arrived (answers as soon as the listener is open)",
    body: MigrateInRequestSchema,
    responses: {
      "201": { description: "Listening", json: "MigrateInResult" },
      "400": { description: "A relative path, or an address that cannot be listened on", json: "Error" },
      "409": { description: "A VM of that name exists or is on its way", json: "Error" },
    },
  },
  {
    operationId: "migrateVm",
    method: "POST",
    url: "/vms/:id/migrate",
    summary:
      "Live-migrates a running riscv64 VM to a daemon waiting for it (POST /vms/migrate-in there); answers once it runs there, and the VM is gone from here",
    params: VmIdParams,
    body: MigrateRequestSchema,
    responses: {
      "200": { description: "Migrated", json: "MigrationResult" },
      ...notFound,
      "409": {
        description: "The VM is not running or not riscv64, or the migration failed (the VM runs on here)",
        json: "Error",
      },
    },
  },
];

const noAgent = {
  "409": {
    description: "The VM is not running, has no guest agent, or its agent has not answered yet",
    json: "Error",
  },
  "502": { description: "The guest agent's stream broke or it answered garbage", json: "Error" },
};

TABLE.push(
  {
    operationId: "vmExec",
    method: "POST",
    url: "/vms/:id/exec",
    summary:
      "Runs a program in the guest through its agent and answers with its exit code and output (UTF-8 text, else base64)",
    params: VmIdParams,
    body: ExecBodySchema,
    responses: {
      "200": { description: "It ran (a program that is not there: exitCode 127)", json: "ExecResult" },
      ...notFound,
      ...noAgent,
      "504": {
        description: "Past timeoutMs: killed in the guest; what it printed so far",
        json: "ExecResult",
      },
    },
  },
  {
    operationId: "putFile",
    method: "PUT",
    url: "/vms/:id/files",
    summary:
      "Writes the body (application/octet-stream, any size, streamed) to a file in the guest, created or truncated",
    params: VmIdParams,
    querystring: FileQuery,
    rawBody: true,
    responses: {
      "200": { description: "Written: {path, bytes}", json: "object" },
      "400": { description: "A bad path, or one the guest cannot write (the agent's reason)", json: "Error" },
      ...notFound,
      ...noAgent,
      "415": { description: "A body that is not application/octet-stream", json: "Error" },
    },
  },
  {
    operationId: "getFile",
    method: "GET",
    url: "/vms/:id/files",
    summary: "Reads a file of the guest (streamed, any size)",
    params: VmIdParams,
    querystring: FileQuery,
    responses: {
      "200": { description: "The file's bytes", binary: true },
      "400": { description: "A bad path, or one the guest cannot read (the agent's reason)", json: "Error" },
      "404": { description: "No VM of that name or id, or no such file in the guest", json: "Error" },
      ...noAgent,
    },
  },
  {
    operationId: "guestShutdown",
    method: "POST",
    url: "/vms/:id/shutdown",
    summary: "Asks the guest, through its agent, to power off (the VM then stops on its own)",
    params: VmIdParams,
    responses: { "202": { description: "Asked", json: "object" }, ...notFound, ...noAgent },
  },
);

TABLE.push({
  operationId: "vmExecStream",
  method: "GET",
  url: "/vms/:id/exec",
  summary:
    "With Upgrade: websocket, runs a program in the guest through its agent with stdin, stdout and stderr streamed while it runs (any size; docs/EXEC.md). Client: first a text frame, JSON ExecStreamStart {argv, env?, timeoutMs? (default 3600000)}; then binary frames [0, ...stdin bytes] (at most 64 KiB each), and [0] alone to end stdin. Server: binary frames [1, ...stdout bytes] and [2, ...stderr bytes] as the program prints them, then one text frame, JSON ExecStreamEnd ({type: exit, exitCode, signal?}, {type: timeout, exitCode: null, signal}, or {type: error, error, message}), then it closes: 1000 after exit or timeout, else 4400 (a bad frame), 4404 (no such VM), 4409 (not running, no agent, agent not answering yet), 4502 (the agent failed). Past timeoutMs, or when the client goes away, the program's process group is killed in the guest",
  params: VmIdParams,
  responses: {
    "101": {
      description: "Switched to the WebSocket; first frame ExecStreamStart, last ExecStreamEnd",
      websocket: true,
    },
    ...notFound,
    "426": { description: "Not a WebSocket upgrade", json: "Error" },
  },
});

export const ROUTES: readonly RouteDef[] = TABLE.map(documented);
