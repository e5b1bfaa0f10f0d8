/**
 * Every route of the API, fuzzed in process through Fastify's inject: at least RUNS random and mutated
 * requests (bodies, path parameters, query strings, content types) reach each route the app
 * registers, so a new route is fuzzed without anyone listing it, and one the route table (and so the
 * OpenAPI document) lacks fails. Each answer must be a status the route documents, never 500, and an
 * error must be JSON {error, message}. Meanwhile a VM the fuzz cannot name runs on, and must still run
 * and make progress at the end.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { buildApp } from "../../src/api/app.js";
import { ROUTES } from "../../src/api/routes.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { VmManager } from "../../src/manager/manager.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test, testSeed } from "../support/test.js";
import { counterSpec, tempDir, tickerGuest, toolchainMissing } from "./support.js";

const RUNS = 10_000;
/** Requests with a malformed URL per route (they never reach the route, so they do not count). */
const BAD_URL_RUNS = 200;

const missing = toolchainMissing();
if (missing !== undefined) process.stdout.write(`# skipping the API fuzz: ${missing}\n`);

/** The names the fuzz uses for VMs; "bal" starts out running with a balloon. */
const NAMES = ["base", "fz-a", "fz-b", "bal"];

type Json = ReturnType<typeof JSON.parse>;

/** A body's fields replaced by random JSON, removed, or joined by a field nobody knows. */
/** fc.assert, but the failure names the assertion that failed, not only the counterexample. */
async function holds(property: fc.IAsyncProperty<unknown[]>, numRuns: number): Promise<void> {
  const out = await fc.check(property, { numRuns });
  if (out.failed) throw new Error(`${fc.defaultReportMessage(out)}\n${String(out.errorInstance)}`);
}

function mutations(valid: Record<string, Json>): fc.Arbitrary<Json> {
  const keys = [...Object.keys(valid), "extra"];
  const nested = (v: Json): fc.Arbitrary<Json> =>
    typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length > 0
      ? mutations(v)
      : fc.jsonValue();
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), fc.jsonValue()).map(([k, v]) => ({ ...valid, [k]: v })),
    fc.constantFrom(...keys).map((k) => {
      const { [k]: _gone, ...rest } = valid;
      return rest;
    }),
    fc.constantFrom(...Object.keys(valid)).chain((k) => nested(valid[k]).map((v) => ({ ...valid, [k]: v }))),
    fc
      .constantFrom(-1, 0, 4095, 4096, 2 ** 53, 1e300, -0.5, "128M", null)
      .chain((n) => fc.constantFrom(...keys).map((k) => ({ ...valid, [k]: n }))),
  );
}

describe("the API fuzzed, every route", { skip: missing !== undefined }, () => {
  test(`at least ${RUNS} random and mutated requests per route: documented statuses only, never 500; another VM runs on`, {
    timeout: 600_000,
  }, async (t) => {
    const dir = tempDir();
    const kernel = tickerGuest(dir);
    const disk = join(dir, "disk.img");
    writeFileSync(disk, Buffer.alloc(4096));
    // A VM the fuzz defines gets no host, so its start is refused as bad input; only the bystander and
    // "bal" (started before the fuzz) run.
    let realHosts = 1;
    const manager = await VmManager.open({
      stateDir: null,
      log: () => {},
      host: (console) => {
        if (realHosts-- <= 0) throw new UserError("no host for VMs the fuzz defines");
        return nodeVmHost({ console, warn: () => {} });
      },
    });
    const bystanderName = `bystander-${testSeed() >>> 0}`;
    const bystander = manager.create(counterSpec(bystanderName, kernel)).vm;
    await manager.act(bystanderName, "start");
    /**
     * Each route's fuzz starts from the same VMs, whatever the routes before did to them: "base",
     * "fz-a" and "fz-b" defined and not started (so that drives and NICs can change), "bal" running
     * with a balloon.
     */
    const fixture = async () => {
      for (const name of NAMES) {
        const state = manager.list().find((vm) => vm.name === name)?.state;
        const wanted = name === "bal" ? "running" : "created";
        if (state === wanted) continue;
        if (state !== undefined) await manager.delete(name);
        manager.create(counterSpec(name, kernel, name === "bal" ? { balloon: {} } : {}));
        if (name === "bal") {
          realHosts = 1;
          await manager.act(name, "start");
        }
      }
    };
    const forbidden = new Set([bystanderName, bystander.id]);

    const internal: string[] = [];
    const app = buildApp({ manager, log: (m) => internal.push(m) });
    // Whatever fails, the VMs end: their timers would keep this process alive.
    t.after(async () => {
      await app.close();
      await manager.shutdown(0);
    });
    const registered: { method: string; url: string }[] = [];
    app.addHook("onRoute", (r) => {
      for (const method of [r.method].flat()) registered.push({ method, url: r.url });
    });
    const routed = new Map<string, number>();
    app.addHook("onRequest", async (request) => {
      const key = `${request.method} ${request.routeOptions.url}`;
      routed.set(key, (routed.get(key) ?? 0) + 1);
    });
    await app.ready();

    // Every route the app serves is in the route table, with the statuses it documents.
    const routes = registered
      .filter((r) => r.method !== "HEAD")
      .map((r) => {
        const def = ROUTES.find((d) => d.method === r.method && d.url === r.url);
        assert.ok(
          def,
          `${r.method} ${r.url} is served but not in the route table (nor the OpenAPI document)`,
        );
        return def;
      });
    assert.equal(new Set(routes).size, ROUTES.length, "every route in the table is served");
    assert.ok(
      !registered.some((r) => r.method === "HEAD"),
      "HEAD routes are off: they would be routes nobody documents",
    );

    const segment = (id: fc.Arbitrary<string>) =>
      id
        .filter((s) => !forbidden.has(s))
        .map((s) => (/^\.+$/.test(s) ? s.replaceAll(".", "%2E") : encodeURIComponent(s)));
    const anyString = fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" }),
      fc.string({ minLength: 190, maxLength: 260 }),
    );
    const params: Record<string, fc.Arbitrary<string>> = {
      id: segment(fc.oneof(fc.constantFrom(...NAMES), anyString)),
      action: segment(
        fc.oneof(fc.constantFrom("start", "pause", "resume", "stop", "kill", "reboot"), anyString),
      ),
      drive: segment(fc.oneof(fc.constantFrom("d0", "d1", "root"), anyString)),
      nic: segment(fc.oneof(fc.constantFrom("0", "1", "2", "7", "01", "-1", "1e3"), anyString)),
    };
    const queryValue = fc.oneof(
      // stop waits up to grace_ms for a guest that never ends: at most 999 ms here.
      fc.stringMatching(/^[0-9]{1,3}$/),
      fc.string({ maxLength: 10 }).filter((s) => !/^[0-9]{4,}$/.test(s)),
      fc.constant(""),
    );
    const query = fc.oneof(
      fc.constant(""),
      fc
        .array(fc.tuple(fc.oneof(fc.constantFrom("grace_ms", "follow", "label"), fc.string()), queryValue), {
          maxLength: 3,
        })
        .map((pairs) =>
          pairs.length === 0
            ? ""
            : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`,
        ),
    );

    const validBodies: Partial<Record<(typeof ROUTES)[number]["operationId"], fc.Arbitrary<Json>>> = {
      createVm: fc
        .tuple(fc.constantFrom(...NAMES), fc.boolean())
        .map(([name, balloon]) => counterSpec(name, kernel, balloon ? { balloon: {} } : {})),
      setBalloon: fc.nat(4096).map((pages) => ({ targetBytes: pages * 4096 })),
      setCpu: fc.oneof(
        fc.constant({ mode: "dedicated" }),
        fc
          .tuple(
            fc.integer({ min: 0, max: 10_001 }),
            fc.option(fc.double({ min: 0, max: 1.2 })),
            fc.option(fc.double({ min: 0, max: 1 })),
          )
          .map(([weight, cap, reservation]) => ({
            mode: "shared",
            weight,
            ...(cap === null ? {} : { cap }),
            ...(reservation === null ? {} : { reservation }),
          })),
      ),
      putDrive: fc
        .tuple(fc.constantFrom("d0", "d1", "root"), fc.boolean(), fc.constantFrom(disk, kernel, "/no/such"))
        .map(([id, readOnly, path]) => ({ path, readOnly, id })),
      putNic: fc
        .tuple(
          fc.constantFrom("switch:fz", "tap:fz0", "tap:fz1"),
          fc.option(fc.constantFrom("52:54:00:00:00:01", "01:00:00:00:00:00", "52:54:00:76:00:00")),
        )
        .map(([backend, mac]) => (mac === null ? { backend } : { backend, mac })),
    };
    const bigBody = JSON.stringify({ blob: "x".repeat(1024 * 1024) });

    const bodyFor = (operationId: string): fc.Arbitrary<string | undefined> => {
      const valid = validBodies[operationId as keyof typeof validBodies];
      const shaped =
        valid === undefined ? [] : [valid, valid.chain((v) => mutations(v as Record<string, Json>))];
      return fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 1 },
        ...shaped.map((a) => ({ arbitrary: a.map((v) => JSON.stringify(v)), weight: 4 })),
        { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)), weight: 2 },
        { arbitrary: fc.string(), weight: 1 },
        {
          arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1")),
          weight: 1,
        },
        { arbitrary: fc.constant(bigBody), weight: 1 },
      );
    };
    const contentType = fc.oneof(
      { arbitrary: fc.constant("application/json"), weight: 6 },
      {
        arbitrary: fc.constantFrom(
          "text/plain",
          "application/octet-stream",
          "application/json; charset=latin1",
          "",
        ),
        weight: 1,
      },
      { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
    );

    /** Answers of the route under test by status, for the report. */
    const statuses = new Map<number, number>();
    const check = async (
      method: string,
      url: string,
      body: string | undefined,
      type: string,
      documented: Set<string>,
    ) => {
      // Fastify reads no body of a GET; and through inject a GET with a body and ?follow never gets
      // its headers (light-my-request waits on a body nobody reads), so GETs go without one.
      if (method === "GET") body = undefined;
      const headers: Record<string, string> = {};
      if (body !== undefined && type !== "") headers["content-type"] = type;
      let r: LightMyRequestResponse;
      try {
        r = await app.inject({
          method: method as "GET",
          url,
          headers,
          ...(body === undefined ? {} : { payload: body }),
          payloadAsStream: true,
        });
      } catch (e) {
        // light-my-request refuses some header values itself (a content type with a newline).
        if ((e as { code?: string }).code === "ERR_INVALID_CHAR") return;
        throw e;
      }
      const what = `${method} ${url} (${type}) ${String(body).slice(0, 200)}`;
      const contentTypeOf = String(r.headers["content-type"] ?? "");
      let text = "";
      if (contentTypeOf.startsWith("application/json")) {
        for await (const chunk of r.stream()) text += String(chunk);
      } else {
        // Text or a stream (events, a console with ?follow, which end when their client goes): only
        // the status is checked, and this client goes now.
        (r.raw.res as unknown as { req: NodeJS.EventEmitter }).req.emit("close");
        r.stream().destroy();
      }
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
      assert.ok(
        documented.has(String(r.statusCode)),
        `${r.statusCode} is not documented for ${what}: ${text}`,
      );
      if (r.statusCode >= 400) {
        assert.match(contentTypeOf, /^application\/json/, what);
        const error = JSON.parse(text) as { error: unknown; message: unknown };
        assert.equal(typeof error.error, "string", what);
        assert.equal(typeof error.message, "string", what);
        assert.ok(!text.includes("    at "), `a stack trace for ${what}`);
      } else if (contentTypeOf.startsWith("application/json")) JSON.parse(text);
    };

    /** The bystander's last "tick N" line in its console ring (which keeps the last 64 KiB), or -1. */
    const lastTick = () => {
      const text = new TextDecoder().decode(manager.console(bystanderName).contents());
      const last = [...text.matchAll(/tick ([0-9a-f]{16})\n/g)].at(-1);
      return last === undefined ? -1 : Number.parseInt(last[1] as string, 16);
    };
    const ticksBefore = lastTick();
    const before = manager.stats(bystanderName).instructions ?? 0;
    const started = performance.now();
    const report: string[] = [];
    for (const route of ROUTES) {
      await fixture();
      const t0 = performance.now();
      statuses.clear();
      const documented = new Set(Object.keys(route.responses));
      const names = [...route.url.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
      const url = fc
        .tuple(
          fc.tuple(...names.map((n) => params[n] ?? segment(anyString))),
          // ?follow of a VM with no output yet sends its headers only with the first byte, and inject
          // answers only once headers are out: the console's follow mode is left out here.
          route.operationId === "vmConsole" ? query.filter((q) => !/[?&]follow=/.test(q)) : query,
        )
        .map(([values, q]) => {
          let i = 0;
          return route.url.replace(/:[A-Za-z]+/g, () => values[i++] as string) + q;
        });
      const key = `${route.method} ${route.url}`;
      const property = fc.asyncProperty(url, bodyFor(route.operationId), contentType, (u, b, type) =>
        check(route.method, u, b, type, documented),
      );
      // A request light-my-request refuses itself never reaches the route: more runs make up for it.
      for (let left = RUNS; left > 0; ) {
        await holds(property, left);
        const now = RUNS - (routed.get(key) ?? 0);
        assert.ok(now < left, `${key}: no request of ${left} reached the route`);
        left = now;
      }
      // A URL whose percent-encoding is broken: refused before any route, as 400.
      const badUrl = fc
        .constantFrom("%", "%E0%A4%A", "%zz", "%C0%AF")
        .map((bad) => route.url.replace(/:[A-Za-z]+/g, bad));
      if (names.length > 0) {
        await holds(
          fc.asyncProperty(badUrl, bodyFor(route.operationId), (u, b) =>
            check(route.method, u, b, "application/json", new Set(["400"])),
          ),
          BAD_URL_RUNS,
        );
      }
      const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
      report.push(
        `${key}: ${routed.get(key)} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${byStatus.join(" ")})`,
      );
    }
    for (const line of report) t.diagnostic(line);
    t.diagnostic(`all routes: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(internal, [], "no internal errors");

    // The bystander ran all along and still does.
    assert.equal(manager.get(bystanderName).state, "running");
    const after = manager.stats(bystanderName).instructions ?? 0;
    assert.ok(after > before, `the bystander retired ${after - before} instructions during the fuzz`);
    assert.ok(lastTick() > ticksBefore, `the bystander printed no tick after ${ticksBefore} during the fuzz`);
  });
});
