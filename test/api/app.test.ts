/**
 * The API in process (Fastify's inject, no socket): the committed OpenAPI document against the one the
 * route table generates, and the routes that change a VM's balloon, drives and NICs, bad input each.
 * (fuzz.test.ts fuzzes every route.)
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildApp } from "../../src/api/app.js";
import { openApiDocument } from "../../src/api/openapi.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { VmManager } from "../../src/manager/manager.js";
import { describe, test } from "../support/test.js";
import { counterSpec, repoRoot, tempDir, tickerGuest, toolchainMissing } from "./support.js";

const missing = toolchainMissing();

describe("the daemon API in process", () => {
  test("docs/openapi.json is the document the routes generate (regenerate: vireo daemon --openapi)", () => {
    const committed = JSON.parse(readFileSync(join(repoRoot, "docs", "openapi.json"), "utf8"));
    assert.deepEqual(committed, JSON.parse(JSON.stringify(openApiDocument())));
    assert.equal(committed.openapi, "3.1.0");
    assert.ok(committed.paths["/vms/{id}/actions/{action}"].post);
    // POST /vms takes a VmSpec, or a snapshot to restore or clone.
    assert.equal(
      committed.paths["/vms"].post.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/VmCreate",
    );
    assert.deepEqual(committed.components.schemas.VmCreate.anyOf, [
      { $ref: "#/components/schemas/VmSpec" },
      { $ref: "#/components/schemas/VmFromSnapshot" },
    ]);
  });

  test("balloon, drives and NICs: 200/201, and 400 naming the field, 404, 409", {
    skip: missing,
    timeout: 60_000,
  }, async (t) => {
    const dir = tempDir();
    const kernel = tickerGuest(dir);
    const disk = join(dir, "disk.img");
    writeFileSync(disk, Buffer.alloc(4096));
    const manager = await VmManager.open({
      stateDir: join(dir, "state"),
      log: () => {},
      host: (console) => nodeVmHost({ console, warn: () => {} }),
    });
    const app = buildApp({ manager, log: (m) => assert.fail(`the API logged an internal error: ${m}`) });
    t.after(async () => {
      await app.close();
      await manager.shutdown(0);
    });
    const call = async (method: "GET" | "PUT" | "PATCH" | "DELETE" | "POST", url: string, body?: unknown) => {
      const r = await app.inject({ method, url, ...(body === undefined ? {} : { payload: body as object }) });
      return { status: r.statusCode, json: JSON.parse(r.body || "null") };
    };
    const memory = 16 * 2 ** 20;
    manager.create(counterSpec("bal", kernel, { balloon: {} }));
    manager.create(counterSpec("plain", kernel));

    // Before a start: no balloon to set; drives and NICs change, and the definition file with them.
    assert.equal((await call("PATCH", "/vms/bal/balloon", { targetBytes: 4096 })).status, 409);
    assert.equal((await call("GET", "/vms/bal/balloon")).status, 409);
    const added = await call("PUT", "/vms/plain/drives/d0", { path: disk, readOnly: true, id: "d0" });
    assert.equal(added.status, 201);
    assert.deepEqual(added.json.spec.drives, [{ path: disk, readOnly: true, id: "d0" }]);
    const replaced = await call("PUT", "/vms/plain/drives/d0", { path: disk, readOnly: false, id: "d0" });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.json.spec.drives[0].readOnly, false);
    const file = JSON.parse(readFileSync(join(dir, "state", "vms", "plain.json"), "utf8"));
    assert.deepEqual(file.spec.drives, [{ path: disk, readOnly: false, id: "d0" }]);
    const gone = await call("PUT", "/vms/plain/drives/d1", {
      path: join(dir, "nope.img"),
      readOnly: false,
      id: "d1",
    });
    assert.equal(gone.status, 400);
    assert.equal(gone.json.fields[0].path, "/path");
    assert.match(gone.json.message, /nope\.img' does not exist/);
    const otherId = await call("PUT", "/vms/plain/drives/d1", { path: disk, readOnly: false, id: "d2" });
    assert.deepEqual([otherId.status, otherId.json.fields[0].path], [400, "/id"]);
    const twice = await call("PUT", "/vms/plain/drives/d1", { path: disk, readOnly: false, id: "d1" });
    assert.deepEqual([twice.status, twice.json.fields[0].path], [400, "/path"], "the same file twice");
    const badBody = await call("PUT", "/vms/plain/drives/d1", { path: disk, id: "d1" });
    assert.deepEqual([badBody.status, badBody.json.fields[0].path], [400, "/readOnly"]);
    assert.equal(
      (await call("PUT", "/vms/nobody/drives/d0", { path: disk, readOnly: true, id: "d0" })).status,
      404,
    );
    assert.equal(
      (await call("PUT", "/vms/plain/drives/bad%20id", { path: disk, readOnly: true, id: "bad id" })).status,
      400,
    );

    const nic = await call("PUT", "/vms/plain/nets/0", { backend: "switch:lan" });
    assert.equal(nic.status, 201);
    assert.equal((await call("PUT", "/vms/plain/nets/0", { backend: "switch:lan2" })).status, 200);
    const skipped = await call("PUT", "/vms/plain/nets/2", { backend: "switch:lan" });
    assert.equal(skipped.status, 400);
    assert.match(skipped.json.message, /has 1 NICs: a new one is number 1/);
    const multicast = await call("PUT", "/vms/plain/nets/1", {
      backend: "switch:lan",
      mac: "01:00:00:00:00:01",
    });
    assert.deepEqual([multicast.status, multicast.json.fields[0].path], [400, "/mac"]);
    assert.equal((await call("PUT", "/vms/plain/nets/x", { backend: "switch:lan" })).status, 400);
    assert.equal((await call("DELETE", "/vms/plain/nets/3")).status, 404);
    assert.deepEqual((await call("DELETE", "/vms/plain/nets/0")).json.spec.nics, []);
    assert.equal((await call("DELETE", "/vms/plain/drives/d9")).status, 404);
    assert.deepEqual((await call("DELETE", "/vms/plain/drives/d0")).json.spec.drives, []);
    assert.deepEqual(
      JSON.parse(readFileSync(join(dir, "state", "vms", "plain.json"), "utf8")).spec.drives,
      [],
    );

    // Running: the balloon takes targets below the memory; the definition no longer changes.
    assert.equal((await call("POST", "/vms/bal/actions/start")).status, 200);
    assert.equal((await call("POST", "/vms/plain/actions/start")).status, 200);
    const figures = await call("GET", "/vms/bal/balloon");
    assert.equal(figures.status, 200);
    assert.equal(figures.json.targetBytes, 0);
    const set = await call("PATCH", "/vms/bal/balloon", { targetBytes: 4 * 2 ** 20 });
    assert.deepEqual([set.status, set.json.targetBytes], [200, 4 * 2 ** 20]);
    assert.equal((await call("GET", "/vms/bal/balloon")).json.targetBytes, 4 * 2 ** 20);
    for (const [targetBytes, why] of [
      [-4096, /greater or equal to 0/],
      [memory, /smaller than the VM's memory/],
      [2 ** 60, /smaller than the VM's memory/],
      [100, /multiple of 4096/],
      ["4M", /integer/],
    ] as const) {
      const r = await call("PATCH", "/vms/bal/balloon", { targetBytes });
      assert.equal(r.status, 400, `${targetBytes}`);
      assert.equal(r.json.fields[0].path, "/targetBytes");
      assert.match(r.json.message, why);
    }
    assert.equal((await call("PATCH", "/vms/bal/balloon", { target: 4096 })).status, 400);
    assert.equal((await call("PATCH", "/vms/plain/balloon", { targetBytes: 4096 })).status, 409);
    assert.equal((await call("PATCH", "/vms/nobody/balloon", { targetBytes: 4096 })).status, 404);
    assert.equal((await call("GET", "/vms/nobody/balloon")).status, 404);
    const late = await call("PUT", "/vms/plain/drives/d0", { path: disk, readOnly: true, id: "d0" });
    assert.equal(late.status, 409);
    assert.match(late.json.message, /it is running \(only before its first start\)/);
    assert.equal((await call("DELETE", "/vms/plain/nets/0")).status, 409);
    assert.equal((await call("PUT", "/vms/plain/nets/0", { backend: "switch:lan" })).status, 409);
  });
});
