/** A small client for the daemon's API over its Unix socket (node's http client; no dependency). */
import { request } from "node:http";
import { UserError } from "../util/errors.js";

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/**
 * Sends one request and gives back the daemon's answer whatever its status (its body parsed when it is
 * JSON); a daemon that cannot be reached, or malformed JSON, is a UserError.
 */
export function requestDaemon(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: payload === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          let parsed: unknown = text;
          if ((res.headers["content-type"] ?? "").startsWith("application/json")) {
            try {
              parsed = JSON.parse(text);
            } catch {
              reject(new UserError(`the daemon answered ${status} with malformed JSON`));
              return;
            }
          }
          resolve({ status, body: parsed });
        });
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ECONNREFUSED") {
        reject(new UserError(`no daemon listens on ${socket} (start one with 'vireo daemon')`));
      } else reject(new UserError(`cannot reach the daemon on ${socket}: ${e.message}`));
    });
    req.end(payload);
  });
}

/** Sends one request; an error answer (4xx/5xx) becomes a UserError carrying the daemon's message. */
export async function callDaemon(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const answer = await requestDaemon(socket, method, path, body);
  if (answer.status >= 400) {
    const message = (answer.body as { message?: unknown } | null)?.message;
    throw new UserError(typeof message === "string" ? message : `the daemon answered ${answer.status}`);
  }
  return answer;
}
