/**
 * The API in process (Fastify's inject, no socket): a fuzz of the body-taking routes, and the committed
 * OpenAPI document against the one the route table generates.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { buildApp } from "../../src/api/app.js";
import { openApiDocument } from "../../src/api/openapi.js";
import { VmManager } from "../../src/manager/manager.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test } from "../support/test.js";
import { counterSpec, repoRoot } from "./support.js";

const RUNS = 10_000;

describe("the daemon API in process", () => {
  test(`${RUNS} random and mutated bodies: every answer is 2xx or 4xx JSON`, {
    timeout: 120_000,
  }, async () => {
    // A spec that passes, so that mutations of it reach past the schema (its kernel is a real file).
    const valid = counterSpec("base", join(repoRoot, "package.json"));
    const manager = await VmManager.open({
      stateDir: null,
      log: () => {},
      // A VM the fuzz defines and starts gets no host: the start is refused as bad input.
      host: () => {
        throw new UserError("no host in this test");
      },
    });
    const app = buildApp({ manager, log: (m) => assert.fail(`the API logged an internal error: ${m}`) });
    const mutated = fc
      .tuple(fc.constantFrom(...Object.keys(valid), "extra", "boot"), fc.jsonValue())
      .map(([key, value]) => ({ ...valid, [key]: value }));
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      mutated.map((v) => JSON.stringify(v)),
      fc.constant(JSON.stringify(valid)),
      fc.string(),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1")),
    );
    const url = fc.oneof(
      fc.constant("/vms"),
      fc
        .tuple(
          fc.oneof(fc.constant("base"), fc.string({ minLength: 1, maxLength: 8 })),
          fc.oneof(fc.constantFrom("start", "pause", "resume", "stop", "kill"), fc.string({ maxLength: 8 })),
        )
        .map(([id, action]) => `/vms/${encodeURIComponent(id)}/actions/${encodeURIComponent(action)}`),
    );
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(url, body, fc.constantFrom("application/json", "text/plain"), async (u, b, type) => {
        const r = await app.inject({ method: "POST", url: u, payload: b, headers: { "content-type": type } });
        answered++;
        assert.ok(r.statusCode < 500 && r.statusCode >= 200, `${r.statusCode} for POST ${u} ${b}: ${r.body}`);
        if (r.statusCode >= 400) {
          assert.match(String(r.headers["content-type"]), /^application\/json/);
          const error = JSON.parse(r.body) as { error: unknown; message: unknown };
          assert.equal(typeof error.error, "string");
          assert.equal(typeof error.message, "string");
          assert.ok(!r.body.includes("    at "), "no stack trace");
        }
      }),
      { numRuns: RUNS },
    );
    assert.equal(answered, RUNS);
    await app.close();
  });

  test("docs/openapi.json is the document the routes generate (regenerate: vireo daemon --openapi)", () => {
    const committed = JSON.parse(readFileSync(join(repoRoot, "docs", "openapi.json"), "utf8"));
    assert.deepEqual(committed, JSON.parse(JSON.stringify(openApiDocument())));
    assert.equal(committed.openapi, "3.1.0");
    assert.ok(committed.paths["/vms/{id}/actions/{action}"].post);
    assert.equal(
      committed.paths["/vms"].post.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/VmSpec",
    );
  });
});
