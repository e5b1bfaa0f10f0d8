/** The OpenAPI 3.1 document, generated from the route table and the TypeBox schemas. */
import type { TSchema } from "@sinclair/typebox";
import { VmSpecSchema } from "../vm/spec.js";
import { ROUTES } from "./routes.js";
import {
  AcquireSchema,
  BalloonSchema,
  BalloonTargetSchema,
  ErrorSchema,
  ExecBodySchema,
  ExecResultSchema,
  ExecStreamEndSchema,
  ExecStreamStartSchema,
  MigrateInRequestSchema,
  MigrateInResultSchema,
  MigrateRequestSchema,
  MigrationResultSchema,
  PoolCreateSchema,
  PoolSchema,
  ReleaseSchema,
  SnapshotRequestSchema,
  SnapshotResultSchema,
  VmCreateSchema,
  VmFromSnapshotSchema,
  VmInfoSchema,
} from "./schemas.js";

const VERSION = "0.1.0";

/** A schema as plain JSON: TypeBox's symbol keys dropped, `$ref: "X"` pointing into components. */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema), (key, value: unknown) => {
    if (key === "$ref" && typeof value === "string" && !value.startsWith("#")) {
      return `#/components/schemas/${value}`;
    }
    return value;
  });
}

function component(schema: TSchema): unknown {
  const { $id: _id, ...rest } = plain(schema) as Record<string, unknown>;
  return rest;
}

function ref(name: string): unknown {
  if (name === "object") return { type: "object" };
  if (name.endsWith("[]")) return { type: "array", items: ref(name.slice(0, -2)) };
  return { $ref: `#/components/schemas/${name}` };
}

/** Query/path parameters of an object schema, one OpenAPI parameter per property. */
function parameters(schema: TSchema | undefined, where: "path" | "query"): unknown[] {
  if (schema === undefined) return [];
  const props = (plain(schema) as { properties: Record<string, { description?: string }> }).properties;
  const required = new Set<string>((schema.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(description === undefined ? {} : { description }),
      schema: rest,
    };
  });
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const path = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = {
        description: res.description,
        ...(res.json !== undefined ? { content: { "application/json": { schema: ref(res.json) } } } : {}),
        ...(res.text === true ? { content: { "text/plain": { schema: { type: "string" } } } } : {}),
        ...(res.binary === true
          ? { content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } }
          : {}),
        ...(res.eventStream === true
          ? { content: { "text/event-stream": { schema: { type: "string" } } } }
          : {}),
      };
    }
    const params = [...parameters(r.params, "path"), ...parameters(r.querystring, "query")];
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(r.rawBody === true
        ? {
            requestBody: {
              required: true,
              content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
            },
          }
        : {}),
      ...(r.body !== undefined
        ? {
            requestBody: {
              required: true,
              // A body without an $id (a drive, a NIC) is part of VmSpec: written out where it is used.
              content: {
                "application/json": { schema: r.body.$id === undefined ? plain(r.body) : ref(r.body.$id) },
              },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Vireo daemon API",
      version: VERSION,
      description:
        "One daemon, many VMs. Served on a Unix socket (default $XDG_RUNTIME_DIR/vireo/vireo.sock, mode 0600) and, with --listen, on TCP, where every request needs Authorization: Bearer <token> (the token file in the state directory) or gets 401. Errors are JSON: {error, message, fields?}.",
    },
    paths,
    components: {
      schemas: {
        VmSpec: component(VmSpecSchema),
        VmInfo: component(VmInfoSchema),
        Error: component(ErrorSchema),
        BalloonTarget: component(BalloonTargetSchema),
        Balloon: component(BalloonSchema),
        PoolCreate: component(PoolCreateSchema),
        Pool: component(PoolSchema),
        Acquire: component(AcquireSchema),
        Release: component(ReleaseSchema),
        VmCreate: component(VmCreateSchema),
        VmFromSnapshot: component(VmFromSnapshotSchema),
        SnapshotRequest: component(SnapshotRequestSchema),
        SnapshotResult: component(SnapshotResultSchema),
        ExecRequest: component(ExecBodySchema),
        ExecResult: component(ExecResultSchema),
        ExecStreamStart: component(ExecStreamStartSchema),
        ExecStreamEnd: component(ExecStreamEndSchema),
        MigrateInRequest: component(MigrateInRequestSchema),
        MigrateInResult: component(MigrateInResultSchema),
        MigrateRequest: component(MigrateRequestSchema),
        MigrationResult: component(MigrationResultSchema),
      },
    },
  };
}
