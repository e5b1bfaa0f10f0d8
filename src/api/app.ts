/**
 * The daemon's HTTP API on Fastify. Bodies and parameters are checked by the route's TypeBox schema
 * through Fastify's schema support; the VmSpec body by validateVmSpec itself, so the API accepts
 * exactly what every other front end accepts (one schema, one validator). Every error is answered as
 * JSON {error, message, fields?}; anything unexpected is logged here and answered 500 without
 * details, so no stack trace reaches a client.
 */
import { Socket } from "node:net";
import { availableParallelism, freemem, totalmem } from "node:os";
import { PassThrough } from "node:stream";
import fastifyWebsocket from "@fastify/websocket";
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Registry } from "prom-client";
import { ManagerError } from "../manager/errors.js";
import type { FromSnapshot, VmAction, VmManager } from "../manager/manager.js";
import type { PoolRequest } from "../manager/pools.js";
import { type DriveSpec, type NicSpec, VmSpecError, VmSpecSchema, validateVmSpec } from "../vm/spec.js";
import { requireToken } from "./auth.js";
import { ConsoleWriters, consoleSocket } from "./console-ws.js";
import { EventStreams } from "./events.js";
import { execSocket } from "./exec-ws.js";
import { ApiStatusError, guestHandlers } from "./guest-routes.js";
import { metricsRegistry } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { type OperationId, ROUTES } from "./routes.js";
import { VmFromSnapshotSchema } from "./schemas.js";
import { openWebPath, registerWeb, type WebOptions } from "./web.js";

/** Larger bodies get 413: a VmSpec is a few KiB. */
export const BODY_LIMIT = 1024 * 1024;

/** A console frame of input larger than this closes the connection (a paste is a few KiB). */
const WS_MAX_PAYLOAD = 64 * 1024;

/** What the daemon's listeners share, so that the writer role and metrics are one per daemon. */
export interface ApiShared {
  writers: ConsoleWriters;
  metrics: Registry;
}

export function apiShared(manager: VmManager): ApiShared {
  return { writers: new ConsoleWriters(), metrics: metricsRegistry(manager) };
}

export interface ApiOptions {
  manager: VmManager;
  log(message: string): void;
  /** Given: every request must carry it as a bearer token (the TCP listener). */
  token?: string;
  /** One per daemon when it serves several listeners; made here otherwise. */
  shared?: ApiShared;
  /** Also serve the web console (needs token): its page, and the login cookie as well as the header. */
  web?: WebOptions;
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

class FieldError extends Error {
  constructor(
    message: string,
    readonly fields: readonly { path: string; message: string }[],
  ) {
    super(message);
  }
}

/** A check for one schema, as Fastify's validatorCompiler wants it. */
function compileValidator(schema: TSchema): (data: unknown) => { value?: unknown; error?: Error } {
  if (schema.$id === "VmCreate") {
    // A body naming a snapshot is one; anything else is a VmSpec and gets VmSpec's own errors.
    const spec = compileValidator(VmSpecSchema);
    const fromSnapshot = compileValidator(VmFromSnapshotSchema);
    return (data) => {
      const o = data as Record<string, unknown> | null;
      const snapshot = typeof o === "object" && o !== null && ("restore" in o || "clone" in o);
      return snapshot ? fromSnapshot(data) : spec(data);
    };
  }
  if (schema.$id === "VmSpec") {
    return (data) => {
      try {
        return { value: validateVmSpec(data) };
      } catch (e) {
        if (e instanceof VmSpecError) return { error: new FieldError(e.message, e.problems) };
        throw e;
      }
    };
  }
  // A pool's body holds a VmSpec by reference.
  const checker = TypeCompiler.Compile(schema, [VmSpecSchema]);
  return (data) => {
    if (checker.Check(data)) return { value: data };
    const fields = [...checker.Errors(data)]
      .filter((e, i, all) => all.findIndex((f) => f.path === e.path) === i)
      .map((e) => ({ path: e.path, message: e.message.toLowerCase() }));
    return { error: new FieldError(fields.map((f) => `${f.path || "/"}: ${f.message}`).join("; "), fields) };
  };
}

const KIND_STATUS = {
  invalid: 400,
  "not-found": 404,
  conflict: 409,
  unavailable: 503,
  timeout: 504,
} as const;

function errorName(status: number): string {
  if (status === 413) return "too-large";
  if (status === 404) return "not-found";
  if (status === 409) return "conflict";
  if (status === 415) return "unsupported-media-type";
  if (status === 414) return "uri-too-long";
  if (status === 502) return "bad-gateway";
  if (status === 504) return "timeout";
  return "invalid";
}

export function buildApp(options: ApiOptions): FastifyInstance {
  const { manager, log } = options;
  const shared = options.shared ?? apiShared(manager);
  const events = new EventStreams();
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // A client that stalls mid-request holds only its own connection, and not for ever.
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    return503OnClosing: true,
    // Not in the route table, so no document would describe them, and a HEAD of /events never ends.
    exposeHeadRoutes: false,
    // Longer than any parameter's schema allows, so that the schema refuses one, naming it.
    routerOptions: { maxParamLength: 1024 },
    // A URL the router cannot take apart (bad percent-encoding, a huge parameter): our error form.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const status = error.statusCode === 414 ? 414 : 400;
      return reply.code(status).send({ error: errorName(status), message: error.message });
    },
  });
  if (options.token !== undefined) {
    const web = options.web === undefined ? {} : { cookie: true, open: openWebPath };
    app.addHook("onRequest", requireToken(options.token, web));
  }
  app.addHook("preClose", (done) => {
    events.closeAll();
    done();
  });
  // An upgrade answered with an HTTP status (401, 403, 404...) leaves the socket detached from the
  // HTTP server and unread, so it never notices the client leave: it stayed open for good, and the
  // daemon's close waited on it for ever. End it once the answer is out.
  app.addHook("onResponse", async (request, reply) => {
    const socket = request.raw.socket;
    // Not under inject, whose socket is a stand-in.
    if (request.headers.upgrade === undefined || reply.statusCode === 101 || !(socket instanceof Socket))
      return;
    socket.end();
    socket.resume();
    socket.setTimeout(5000, () => socket.destroy());
  });
  app.register(fastifyWebsocket, {
    options: { maxPayload: WS_MAX_PAYLOAD },
    // As the plugin's own, but with a code and reason that `vireo vm console` can show.
    preClose(done) {
      for (const client of this.websocketServer.clients) client.close(1001, "the daemon is stopping");
      this.websocketServer.close();
      done();
    },
  });
  app.setValidatorCompiler(({ schema }) => compileValidator(schema as TSchema));

  app.setErrorHandler(
    (error: Error & { statusCode?: number; validationContext?: string }, request, reply) => {
      if (error instanceof ApiStatusError) {
        return reply.code(error.statusCode).send({ error: error.error, message: error.message });
      }
      if (error instanceof ManagerError) {
        const status = KIND_STATUS[error.kind];
        return reply.code(status).send({
          error: error.kind,
          message: error.message,
          ...(error.fields.length > 0 ? { fields: error.fields } : {}),
        });
      }
      const status = error.statusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        const where = error.validationContext === undefined ? "" : `${error.validationContext}: `;
        return reply.code(status).send({
          error: errorName(status),
          message: `${where}${error.message}`,
          ...(error instanceof FieldError ? { fields: error.fields } : {}),
        });
      }
      log(`internal error on ${request.method} ${request.url}: ${error.stack ?? error.message}`);
      return reply.code(500).send({ error: "internal", message: "internal error (the daemon's log has it)" });
    },
  );
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: "not-found", message: `no route ${request.method} ${request.url}` }),
  );

  let document: Record<string, unknown> | undefined;
  const handlers: Record<OperationId, Handler> = {
    createVm: async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      if ("restore" in body || "clone" in body) {
        return reply.code(201).send(await manager.createFromSnapshot(body as unknown as FromSnapshot));
      }
      const { vm, created } = manager.create(request.body);
      return reply.code(created ? 201 : 200).send(vm);
    },
    listVms: async (request) => {
      const { label } = request.query as { label?: string | string[] };
      const labels: Record<string, string> = {};
      for (const l of label === undefined ? [] : Array.isArray(label) ? label : [label]) {
        const eq = l.indexOf("=");
        labels[l.slice(0, eq)] = l.slice(eq + 1);
      }
      return manager.list(labels);
    },
    getVm: async (request) => manager.get(idOf(request)),
    deleteVm: async (request, reply) => {
      await manager.delete(idOf(request));
      return reply.code(204).send();
    },
    vmAction: async (request) => {
      const { action } = request.params as { action: VmAction };
      const { grace_ms } = request.query as { grace_ms?: string };
      return manager.act(idOf(request), action, grace_ms === undefined ? {} : { graceMs: Number(grace_ms) });
    },
    vmStats: async (request) => manager.stats(idOf(request)),
    vmConsole: async (request, reply) => {
      const ring = manager.console(idOf(request));
      reply.type("text/plain; charset=utf-8");
      if ((request.query as { follow?: string }).follow === undefined) return Buffer.from(ring.contents());
      const stream = new PassThrough();
      stream.write(ring.contents());
      const stop = ring.follow((chunk) => stream.write(chunk));
      request.raw.on("close", () => {
        stop();
        stream.end();
      });
      return reply.send(stream);
    },
    setCpu: async (request) => manager.setCpu(idOf(request), request.body),
    getBalloon: async (request) => manager.balloon(idOf(request), null),
    setBalloon: async (request) =>
      manager.balloon(idOf(request), (request.body as { targetBytes: number }).targetBytes),
    putDrive: async (request, reply) => {
      const { drive } = request.params as { drive: string };
      const { vm, created } = manager.putDrive(idOf(request), drive, request.body as DriveSpec);
      return reply.code(created ? 201 : 200).send(vm);
    },
    deleteDrive: async (request) =>
      manager.deleteDrive(idOf(request), (request.params as { drive: string }).drive),
    putNic: async (request, reply) => {
      const { vm, created } = manager.putNic(idOf(request), nicOf(request), request.body as NicSpec);
      return reply.code(created ? 201 : 200).send(vm);
    },
    deleteNic: async (request) => manager.deleteNic(idOf(request), nicOf(request)),
    events: async (request, reply) => events.serve(manager, request, reply),
    metrics: async (_request, reply) => {
      const text = await shared.metrics.metrics();
      return reply.type(shared.metrics.contentType).send(text);
    },
    getHost: async () => ({
      cpus: availableParallelism(),
      memory: { total: totalmem(), free: freemem() },
      vms: manager.list().length,
      committed: manager.committed(),
      scheduler: manager.schedulerInfo(),
      memoryGovernor: manager.memoryInfo(),
      damaged: manager.damaged,
    }),
    health: async () => ({ ok: true }),
    createPool: async (request, reply) =>
      reply.code(201).send(manager.pools.create(request.body as PoolRequest)),
    listPools: async () => manager.pools.list(),
    getPool: async (request) => manager.pools.get(poolOf(request)),
    deletePool: async (request, reply) => {
      await manager.pools.delete(poolOf(request));
      return reply.code(204).send();
    },
    acquireVm: async (request, reply) => {
      const { timeoutMs = 30_000 } = request.body as { timeoutMs?: number };
      // The listener's idle timeout (connectionTimeout) would end a longer wait: this one outlasts it.
      request.raw.socket?.setTimeout?.(Math.max(60_000, timeoutMs + 10_000));
      // A client that goes away while it waits must not be handed a VM nobody will release.
      const gone = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableEnded) gone.abort();
      });
      return manager.pools.acquire(poolOf(request), timeoutMs, gone.signal);
    },
    releaseVm: async (request, reply) => {
      await manager.pools.release(poolOf(request), (request.body as { vm: string }).vm);
      return reply.code(204).send();
    },
    migrateIn: async (request, reply) =>
      reply.code(201).send(await manager.migrateIn(request.body as { name: string; listen: string })),
    migrateVm: async (request) =>
      manager.migrate(idOf(request), request.body as { to: string; downtimeMs?: number }),
    snapshotVm: async (request) =>
      manager.snapshot(
        idOf(request),
        request.body as { path: string; resume?: boolean; compression?: "none" | "zlib" },
      ),
    // The same for the daemon's whole life: made once, on the first request.
    openapi: async () => {
      document ??= openApiDocument();
      return document;
    },
    ...guestHandlers(manager),
  };
  // File uploads (PUT /vms/{id}/files) stream: the handler reads the request itself, any size.
  app.addContentTypeParser("application/octet-stream", (request, payload, done) => {
    if (request.routeOptions.url === "/vms/:id/files") {
      done(null, payload);
      return;
    }
    const error = new Error(`Unsupported Media Type: application/octet-stream`) as Error & {
      statusCode: number;
    };
    error.statusCode = 415;
    done(error, undefined);
  });

  if (options.web !== undefined) {
    if (options.token === undefined) throw new Error("the web console needs the API token");
    registerWeb(app, options.web, options.token);
  }

  // In a plugin of its own so that it is added after the WebSocket plugin's route hook exists.
  app.register(async (scope) => {
    for (const r of ROUTES) {
      const schema: Record<string, TSchema> = {};
      if (r.body !== undefined) schema.body = r.body;
      if (r.params !== undefined) schema.params = r.params;
      if (r.querystring !== undefined) schema.querystring = r.querystring;
      scope.route({
        method: r.method,
        url: r.url,
        schema,
        handler: handlers[r.operationId],
        ...(r.operationId === "vmConsole"
          ? {
              wsHandler: (socket, request) => consoleSocket(manager, shared.writers, socket, request),
            }
          : {}),
        ...(r.operationId === "vmExecStream"
          ? { wsHandler: (socket, request) => execSocket(manager, socket, request) }
          : {}),
      });
    }
  });
  return app;
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function poolOf(request: FastifyRequest): string {
  return (request.params as { pool: string }).pool;
}

function nicOf(request: FastifyRequest): number {
  return Number((request.params as { nic: string }).nic);
}
