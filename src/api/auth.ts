/**
 * The bearer token that guards the API on TCP (the Unix socket's 0600 mode guards it there). It is
 * made once, kept 0600 in the state directory, and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyReply, FastifyRequest } from "fastify";

export const TOKEN_FILE = "api-token";

/** The state directory's token, made on first use; `created` says whether this call made it. */
export function loadOrCreateToken(stateDir: string): { token: string; file: string; created: boolean } {
  const file = join(stateDir, TOKEN_FILE);
  try {
    const token = readFileSync(file, "utf8").trim();
    if (/^[0-9a-f]{64}$/.test(token)) {
      chmodSync(file, 0o600);
      return { token, file, created: false };
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const token = randomBytes(32).toString("hex");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, created: true };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** The web console's login cookie: it carries the token, HttpOnly so that page scripts cannot read it. */
export const TOKEN_COOKIE = "vireo_token";

export interface TokenOptions {
  /** Accept the login cookie as well as the header (the web console's listener). */
  cookie?: boolean;
  /** Paths served without the token (the login page and its script). */
  open?: (path: string) => boolean;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Whether `token` is the daemon's, in constant time. */
export function tokenMatches(token: string, expected: string): boolean {
  return timingSafeEqual(digest(token), digest(expected));
}

/**
 * An onRequest hook answering 401 to a request without `Authorization: Bearer <token>` (or, with
 * options.cookie, the login cookie). A cookie is sent by the browser whoever asked for the request, so
 * a request it authenticates must also come from a page of this origin where the browser says which
 * (Origin): SameSite=Strict does that in today's browsers, and this holds where it is not honoured.
 */
export function requireToken(token: string, options: TokenOptions = {}) {
  const expected = digest(token);
  const matches = (given: string) => timingSafeEqual(digest(given), expected);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (options.open?.(request.url.split("?")[0] as string) === true) return;
    const header = request.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m !== null && matches(m[1] as string)) return;
    const cookie = options.cookie === true ? cookieValue(request.headers.cookie, TOKEN_COOKIE) : undefined;
    if (cookie !== undefined && matches(decodeURIComponent(cookie))) {
      const origin = request.headers.origin;
      if (origin === undefined || sameOrigin(origin, request.headers.host)) return;
      return reply
        .code(403)
        .send({ error: "forbidden", message: `a request from ${origin} may not use this console's login` });
    }
    return reply
      .code(401)
      .header("www-authenticate", 'Bearer realm="vireo"')
      .send({
        error: "unauthorized",
        message:
          options.cookie === true
            ? "log in with the daemon's API token (or send Authorization: Bearer <token>)"
            : "this listener needs Authorization: Bearer <token>",
      });
  };
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    // Through URL on both sides, so that an explicit default port (Host: localhost:80) matches.
    const o = new URL(origin);
    return host !== undefined && o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false;
  }
}
