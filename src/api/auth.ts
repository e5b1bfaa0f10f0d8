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

/** An onRequest hook answering 401 to a request without `Authorization: Bearer <token>`. */
export function requireToken(token: string) {
  const expected = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m !== null && timingSafeEqual(digest(m[1] as string), expected)) return;
    return reply
      .code(401)
      .header("www-authenticate", 'Bearer realm="vireo"')
      .send({ error: "unauthorized", message: "this listener needs Authorization: Bearer <token>" });
  };
}
