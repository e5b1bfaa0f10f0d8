/**
 * The web console's listener in process (Fastify's inject): the page and its bundle are served without
 * the token, everything else needs it; the login turns the token into an HttpOnly, SameSite=Strict
 * cookie, which the API then accepts beside the bearer header, though not from another origin.
 * And `vireo daemon --web` follows --listen's rule for addresses that are not loopback.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WebSocket } from "ws";
import { buildApp } from "../../src/api/app.js";
import { NO_SUCH_VM } from "../../src/api/console-ws.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { VmManager } from "../../src/manager/manager.js";
import { describe, test } from "../support/test.js";
import { cli, tempDir } from "./support.js";

const TOKEN = "ab".repeat(32);
const DEFAULTS = { kernel: "/images/Image", initrd: "/images/initramfs.cpio.gz", cmdline: "console=ttyS0" };

async function webApp() {
  const dir = tempDir();
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(dir, "app.js"), "export {};");
  writeFileSync(join(dir, "app.css"), "body{}");
  const manager = await VmManager.open({
    stateDir: null,
    log: () => {},
    host: (console) => nodeVmHost({ console, warn: () => {} }),
  });
  const app = buildApp({
    manager,
    log: (m) => assert.fail(`the API logged an internal error: ${m}`),
    token: TOKEN,
    web: { assets: dir, defaults: async () => DEFAULTS, uploads: join(dir, "uploads") },
  });
  return {
    app,
    uploads: join(dir, "uploads"),
    close: async () => {
      await app.close();
      await manager.shutdown(0);
    },
  };
}

describe("the web console's listener", () => {
  test("the page is open; the API needs the token; the login sets the cookie, which the API takes", {
    timeout: 30_000,
  }, async (t) => {
    const { app, close } = await webApp();
    t.after(close);
    const get = (url: string, headers: Record<string, string> = {}) =>
      app.inject({ method: "GET", url, headers });

    const page = await get("/");
    assert.equal(page.statusCode, 200);
    assert.match(page.headers["content-type"] as string, /^text\/html/);
    assert.match(page.headers["content-security-policy"] as string, /default-src 'self'/);
    assert.equal((await get("/assets/app.js")).statusCode, 200);
    assert.match((await get("/assets/app.css")).headers["content-type"] as string, /^text\/css/);
    assert.equal((await get("/assets/index.html")).statusCode, 404);
    for (const name of ["..%2fstate", "toString", "__proto__", "app.js.map"]) {
      assert.equal((await get(`/assets/${name}`)).statusCode, 404, name);
    }
    for (const url of ["/vms", "/host", "/web/defaults", "/healthz"]) {
      const r = await get(url);
      assert.equal(r.statusCode, 401, url);
      assert.equal(r.json().error, "unauthorized");
    }

    const login = (token: unknown) => app.inject({ method: "POST", url: "/login", payload: { token } });
    const wrong = await login("cd".repeat(32));
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().message, "wrong token");
    assert.equal(wrong.headers["set-cookie"], undefined);
    assert.equal((await login(42)).statusCode, 400);
    const right = await login(TOKEN);
    assert.equal(right.statusCode, 204);
    const cookie = String(right.headers["set-cookie"]);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\//);
    const pair = cookie.split(";")[0] as string;

    assert.equal((await get("/vms", { cookie: `other=1; ${pair}` })).statusCode, 200);
    assert.deepEqual((await get("/web/defaults", { cookie: pair })).json(), { image: DEFAULTS });
    assert.equal((await get("/vms", { authorization: `Bearer ${TOKEN}` })).statusCode, 200);
    assert.equal((await get("/vms", { cookie: `vireo_token=${"cd".repeat(32)}` })).statusCode, 401);
    // The browser sends the cookie whoever asked; a page of another origin may not use it.
    const foreign = await get("/vms", { cookie: pair, origin: "http://attacker.example" });
    assert.equal(foreign.statusCode, 403);
    assert.equal(
      (await get("/vms", { cookie: pair, origin: "http://localhost:80", host: "localhost:80" })).statusCode,
      200,
    );

    const logout = await app.inject({ method: "POST", url: "/logout" });
    assert.equal(logout.statusCode, 204);
    assert.match(String(logout.headers["set-cookie"]), /^vireo_token=; .*Max-Age=0/);
  });

  test("files picked in the create form upload into the daemon's folder; the answer is the path to name", {
    timeout: 30_000,
  }, async (t) => {
    const { app, close, uploads } = await webApp();
    t.after(close);
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    const upload = (url: string, headers: Record<string, string>, payload: Buffer = bytes) =>
      app.inject({ method: "POST", url, headers, payload });
    const ok = { cookie: `vireo_token=${TOKEN}`, "content-type": "application/x-vireo-upload" };
    const r = await upload("/web/uploads?name=Image", ok);
    assert.equal(r.statusCode, 201, r.body);
    const { path, bytes: count } = r.json() as { path: string; bytes: number };
    assert.equal(count, bytes.length);
    assert.ok(path.startsWith(`${uploads}/`) && path.endsWith("-Image"), path);
    assert.deepEqual(readFileSync(path), bytes);
    // A second upload of the same name is a file of its own.
    const again = (await upload("/web/uploads?name=Image", ok)).json() as { path: string };
    assert.notEqual(again.path, path);
    for (const name of ["", "../state", "a/b", ".hidden", "x".repeat(101)]) {
      const bad = await upload(`/web/uploads?name=${encodeURIComponent(name)}`, ok);
      assert.equal(bad.statusCode, 400, name);
    }
    assert.equal(
      (await upload("/web/uploads?name=Image", { "content-type": ok["content-type"] })).statusCode,
      401,
    );
    const json = await upload(
      "/web/uploads?name=Image",
      { ...ok, "content-type": "application/json" },
      Buffer.from("{}"),
    );
    assert.equal(json.statusCode, 415);
    assert.equal(readdirSync(uploads).length, 2, "nothing left of the refused ones");
  });

  test("the console WebSocket takes the cookie from this origin, and refuses it from another", {
    timeout: 30_000,
  }, async (t) => {
    const { app, close } = await webApp();
    // Closing waits for every connection: a refused upgrade's socket must not hold it.
    t.after(close);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as { port: number };
    const cookie = `vireo_token=${TOKEN}`;
    /** How the upgrade ended: the HTTP status that refused it, or the close code after it opened. */
    const upgrade = (headers: Record<string, string>) =>
      new Promise<string>((done) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/vms/none/console`, { headers });
        ws.on("unexpected-response", (_req, res) => {
          done(`refused ${res.statusCode}`);
          ws.terminate();
        });
        ws.on("close", (code) => done(`closed ${code}`));
        ws.on("error", () => {});
      });
    // Past the login (the VM does not exist, which the socket's close code says).
    assert.equal(await upgrade({ cookie, origin: `http://127.0.0.1:${port}` }), `closed ${NO_SUCH_VM}`);
    assert.equal(await upgrade({ cookie, origin: "http://attacker.example" }), "refused 403");
    assert.equal(await upgrade({ cookie: `vireo_token=${"cd".repeat(32)}` }), "refused 401");
    assert.equal(await upgrade({}), "refused 401");
  });

  test("--web takes a loopback address only, unless --listen-any; a malformed one is refused", {
    timeout: 20_000,
  }, () => {
    const dir = tempDir();
    const daemon = (...args: string[]) =>
      spawnSync(
        process.execPath,
        [cli, "daemon", "--socket", join(dir, "s.sock"), "--state-dir", dir, ...args],
        { encoding: "utf8" },
      );
    for (const web of ["192.0.2.7:8471", "0.0.0.0:8471", "[2001:db8::1]:8471"]) {
      const r = daemon("--web", web);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /--web .*not a loopback address; add --listen-any/);
    }
    const bad = daemon("--web", "nope");
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--web nope: expected HOST:PORT/);
  });
});
