/**
 * The daemon's REST API (src/api) in process through Fastify's inject: random methods on known and
 * random paths, with random, mutated-valid and garbage bodies of either content type. A crash is a 5xx
 * (the API's answer to a bug), an error answer that is not `{error, message}` JSON, a stack trace in an
 * answer, or an internal error the API logged. VMs it defines get no host, so a start is refused as bad
 * input and no guest ever runs.
 */

import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/api/app.js";
import { VmManager } from "../../src/manager/manager.js";
import { UserError } from "../../src/util/errors.js";
import { defineTarget, invariant } from "../target.js";

let app: Promise<{ app: FastifyInstance; logged: string[] }> | null = null;

/** One API for the whole run: what earlier cases defined stays, as in a daemon that has been up a while. */
function theApp() {
  app ??= (async () => {
    const logged: string[] = [];
    const manager = await VmManager.open({
      stateDir: null,
      log: () => {},
      host: () => {
        throw new UserError("no host in the fuzzer");
      },
    });
    return { app: buildApp({ manager, log: (m) => logged.push(m) }), logged };
  })();
  return app;
}

const valid = {
  name: "base",
  arch: "riscv64",
  engine: "auto",
  cpus: 1,
  memory: 16 * 2 ** 20,
  boot: { kernel: "/proc/self/exe", firmware: "none" },
  drives: [],
  nics: [],
  rng: false,
  console: false,
  virtioRing: "split",
};

const name = fc.oneof(fc.constantFrom("base", "x", "nobody"), fc.string({ minLength: 1, maxLength: 12 }));
const path = fc.oneof(
  fc.constantFrom("/vms", "/host", "/healthz", "/openapi.json", "/metrics"),
  name.map((n) => `/vms/${encodeURIComponent(n)}`),
  fc
    .tuple(name, fc.constantFrom("stats", "console", "console?follow"))
    .map(([n, p]) => `/vms/${encodeURIComponent(n)}/${p}`),
  fc
    .tuple(
      name,
      fc.oneof(
        fc.constantFrom("start", "pause", "resume", "stop", "kill", "reboot"),
        fc.string({ maxLength: 8 }),
      ),
    )
    .map(([n, a]) => `/vms/${encodeURIComponent(n)}/actions/${encodeURIComponent(a)}`),
  fc.string({ maxLength: 24 }).map((p) => `/${encodeURI(p)}`),
);
const mutated = fc
  .tuple(fc.constantFrom(...Object.keys(valid), "extra", "labels", "autostart"), fc.jsonValue())
  .map(([key, value]) => JSON.stringify({ ...valid, [key]: value }));
const body = fc.oneof(
  fc.constant(undefined),
  fc.constant(JSON.stringify(valid)),
  mutated,
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1")),
);

export const apiTarget = defineTarget({
  name: "api",
  about: "daemon REST API in process: random routes, methods and bodies; no 5xx, errors as {error, message}",
  input: fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE"),
    url: path,
    payload: body,
    type: fc.constantFrom("application/json", "text/plain", "application/octet-stream"),
  }),
  async run(c: { method: string; url: string; payload: string | undefined; type: string }) {
    const { app, logged } = await theApp();
    // A follow stream never ends by itself; the fuzzer asks for the text, not the stream.
    if (c.url.includes("follow")) c.url = c.url.replace(/\?follow.*/, "");
    const r = await app.inject({
      method: c.method as "GET",
      url: c.url,
      ...(c.payload === undefined ? {} : { payload: c.payload, headers: { "content-type": c.type } }),
    });
    invariant(logged.length === 0, `the API logged an internal error: ${logged.join("; ")}`);
    invariant(
      r.statusCode >= 200 && r.statusCode < 500,
      `${r.statusCode} for ${c.method} ${c.url}: ${r.body}`,
    );
    invariant(!r.body.includes("    at "), `a stack trace in the answer to ${c.method} ${c.url}`);
    if (r.statusCode >= 400) {
      invariant(/^application\/json/.test(String(r.headers["content-type"])), `a non-JSON ${r.statusCode}`);
      const e = JSON.parse(r.body) as { error?: unknown; message?: unknown };
      invariant(typeof e.error === "string" && typeof e.message === "string", `error body ${r.body}`);
    }
  },
});
