/**
 * The web console's side of a listener (`vireo daemon --web`): the page and its bundle (built by
 * scripts/build-web-console.js into dist/web/console/), a login that turns the API token into an
 * HttpOnly cookie, and the default image's boot files for the create form. The page then uses the
 * API itself on the same origin, authenticated by that cookie.
 */
import { randomUUID } from "node:crypto";
import { createWriteStream, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
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
  /** Where files uploaded through the create form are kept (absolute). */
  uploads: string;
}

/**
 * The content type of an upload: its own, so that the API's parsers are left as they are and a form
 * on another site cannot send one without CORS (and the cookie is SameSite=Strict besides).
 */
export const UPLOAD_TYPE = "application/x-vireo-upload";
/** The largest upload: a disk image of a few GiB, not the daemon's whole disk. */
export const MAX_UPLOAD_BYTES = 8 * 2 ** 30;
const UPLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

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
  registerUploads(app, options.uploads);
}

/**
 * `POST /web/uploads?name=FILE`: a kernel, initrd or disk picked in the create form, streamed into the
 * uploads folder under a name of its own; answers the path a VmSpec then names (the API takes paths on
 * the daemon's host). Cut off past MAX_UPLOAD_BYTES (413), and nothing is left of a failed upload.
 */
function registerUploads(app: FastifyInstance, folder: string): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser(UPLOAD_TYPE, (_request, payload, done) => done(null, payload));
    scope.post("/web/uploads", async (request, reply) => {
      const name = (request.query as { name?: unknown }).name;
      if (typeof name !== "string" || !UPLOAD_NAME.test(name)) {
        return reply.code(400).send({
          error: "invalid",
          message: "?name= must be a file name: letters, digits, '.', '_' and '-', at most 100",
        });
      }
      if (request.headers["content-type"] !== UPLOAD_TYPE) {
        return reply.code(415).send({ error: "unsupported", message: `send the file as ${UPLOAD_TYPE}` });
      }
      mkdirSync(folder, { recursive: true });
      const path = join(folder, `${randomUUID()}-${name}`);
      let bytes = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _encoding, next) {
          bytes += chunk.length;
          if (bytes > MAX_UPLOAD_BYTES) next(new RangeError("too large"));
          else next(null, chunk);
        },
      });
      try {
        await pipeline(request.body as Readable, limit, createWriteStream(path));
      } catch (e) {
        rmSync(path, { force: true });
        if (e instanceof RangeError) {
          return reply.code(413).send({ error: "too-large", message: `an upload holds at most 8 GiB` });
        }
        return reply.code(400).send({ error: "invalid", message: `upload failed: ${(e as Error).message}` });
      }
      return reply.code(201).send({ path, bytes });
    });
  });
}
