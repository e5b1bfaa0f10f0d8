/**
 * The API's routes as data: the server registers them (app.ts) and the OpenAPI document is generated
 * from them (openapi.ts), so the two cannot drift apart. Shaped like Cloud Hypervisor's: resources
 * under /vms, and state changes as actions (`POST /vms/{id}/actions/start`), which read as verbs in
 * logs and leave room for actions that are not states (reboot).
 */
import type { TSchema } from "@sinclair/typebox";
import { VmSpecSchema } from "../vm/spec.js";
import { ActionParams, ActionQuery, ConsoleQuery, ListQuery, VmIdParams } from "./schemas.js";

export type OperationId =
  | "createVm"
  | "listVms"
  | "getVm"
  | "deleteVm"
  | "vmAction"
  | "vmStats"
  | "vmConsole"
  | "events"
  | "metrics"
  | "getHost"
  | "health"
  | "openapi";

export interface RouteDef {
  operationId: OperationId;
  method: "GET" | "POST" | "DELETE";
  /** Fastify's form (":id"); the document writes "{id}". */
  url: string;
  summary: string;
  body?: TSchema;
  params?: TSchema;
  querystring?: TSchema;
  /** Status → description and, where JSON, the schema's $id ("VmInfo", "Error") or "object". */
  responses: Record<
    string,
    { description: string; json?: string; text?: true; eventStream?: true; websocket?: true }
  >;
}

const notFound = { "404": { description: "No VM of that name or id", json: "Error" } };

export const ROUTES: readonly RouteDef[] = [
  {
    operationId: "createVm",
    method: "POST",
    url: "/vms",
    summary: "Defines a VM (idempotent by name: the same spec again answers 200 with the VM)",
    body: VmSpecSchema,
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
    operationId: "events",
    method: "GET",
    url: "/events",
    summary:
      "Server-sent events from now on: VM created, deleted, or changed state; each `data:` line is JSON {type, vm}",
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
    summary: "Host CPUs and memory, what the running VMs hold, damaged definition files",
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
];
