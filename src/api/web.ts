/**
 * The web console's side of a listener (`vireo daemon --web`): the page and its bundle (built by
 * scripts/build-web-console.js into dist/web/console/), a login that turns the API token into an
 * HttpOnly cookie, and the default image's boot files for the create form. The page then uses the
 * API itself on the same origin, authenticated by that cookie.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { TOKEN_COOKIE, tokenMatches } from "./auth.js";

/** The bundle's files, each with its content type: nothing else under the folder is served. */
const ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/** What the create form starts from: the cached default guest, or null where it is not fetched. */
export interface WebDefaults {
  kernel: string;
  initrd: string;
  cmdline: string;
}

export interface WebOptions {
  /** The folder holding index.html, app.js and app.css. */
  assets: string;
  defaults(): Promise<WebDefaults | null>;
}

/** The bundle's files, read once (a missing one is a build that did not run: the daemon says so). */
export function loadWebAssets(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) files.set(name, readFileSync(join(dir, name)));
  return files;
}

/** Paths served without the token: the page, its bundle and the login itself. */
export function openWebPath(path: string): boolean {
  return path === "/" || path === "/login" || path === "/logout" || path.startsWith("/assets/");
}

const LoginBody = Type.Object({ token: Type.String({ maxLength: 256 }) }, { additionalProperties: false });

export function registerWeb(app: FastifyInstance, options: WebOptions, token: string): void {
  const files = loadWebAssets(options.assets);
  const send = (name: string) => ({ type: ASSETS[name] as string, body: files.get(name) as Buffer });
  // No caching: the bundle changes with every build and is small.
  const headers = { "cache-control": "no-store", "x-content-type-options": "nosniff" };
  app.get("/", async (_request, reply) => {
    const { type, body } = send("index.html");
    return reply
      .headers(headers)
      .header("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
      .header("x-frame-options", "DENY")
      .type(type)
      .send(body);
  });
  app.get("/assets/:file", async (request, reply) => {
    const { file } = request.params as { file: string };
    if (!Object.hasOwn(ASSETS, file) || file === "index.html") {
      return reply.code(404).send({ error: "not-found", message: `no asset ${file}` });
    }
    const { type, body } = send(file);
    return reply.headers(headers).type(type).send(body);
  });
  app.post("/login", { schema: { body: LoginBody } }, async (request, reply) => {
    const given = (request.body as { token: string }).token.trim();
    if (!tokenMatches(given, token)) {
      return reply.code(401).send({ error: "unauthorized", message: "wrong token" });
    }
    return reply
      .header("set-cookie", `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`)
      .code(204)
      .send();
  });
  app.post("/logout", async (_request, reply) =>
    reply
      .header("set-cookie", `${TOKEN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`)
      .code(204)
      .send(),
  );
  app.get("/web/defaults", async () => ({ image: await options.defaults() }));
}
