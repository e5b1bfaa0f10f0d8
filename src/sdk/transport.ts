/**
 * How the SDK reaches a daemon: its Unix socket, or a URL with a bearer token (the TCP listener).
 * Node's http client, no dependency. Every answer of 400 or more becomes a VireoApiError carrying the
 * API's {error, message, fields}; a daemon that cannot be reached, a VireoConnectionError.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { ApiErrorBody } from "./types.js";

export class VireoApiError extends Error {
  override name = "VireoApiError";
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The API's error code: invalid, not-found, conflict, unavailable, timeout, ... */
    readonly code: string,
    message: string,
    /** For invalid input: the JSON pointer of each field at fault and what is wrong with it. */
    readonly fields: readonly { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export class VireoConnectionError extends Error {
  override name = "VireoConnectionError";
}

export type Target = { socket: string } | { url: URL; token?: string };

export interface Sent {
  method: string;
  path: string;
  body?: unknown;
  /** Bytes sent as they are (application/octet-stream), instead of `body` as JSON: a buffer or a stream. */
  raw?: Uint8Array | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
}

/** Sends one request and resolves with the response once its headers are in, an error status thrown. */
export function send(target: Target, req: Sent): Promise<IncomingMessage> {
  const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
  const headers: Record<string, string> =
    req.raw !== undefined
      ? { "content-type": "application/octet-stream" }
      : payload === undefined
        ? {}
        : { "content-type": "application/json" };
  let options: RequestOptions;
  let make = httpRequest;
  let where: string;
  if ("socket" in target) {
    options = { socketPath: target.socket, method: req.method, path: req.path, headers };
    where = target.socket;
  } else {
    if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
    const base = target.url.pathname.replace(/\/$/, "");
    options = {
      protocol: target.url.protocol,
      hostname: target.url.hostname,
      port: target.url.port,
      method: req.method,
      path: `${base}${req.path}`,
      headers,
    };
    if (target.url.protocol === "https:") make = httpsRequest;
    where = target.url.origin;
  }
  return new Promise((resolve, reject) => {
    const r = make({ ...options, ...(req.signal === undefined ? {} : { signal: req.signal }) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 400) {
        resolve(res);
        return;
      }
      readText(res).then((text) => reject(apiError(status, text)), reject);
    });
    r.on("error", (e: NodeJS.ErrnoException) => {
      if (e.name === "AbortError") reject(e);
      else if (e.code === "ENOENT" || e.code === "ECONNREFUSED") {
        reject(
          new VireoConnectionError(`no Vireo daemon listens on ${where} (start one with 'vireo daemon')`),
        );
      } else reject(new VireoConnectionError(`cannot reach the Vireo daemon on ${where}: ${e.message}`));
    });
    const raw = req.raw;
    if (raw === undefined) r.end(payload);
    else if (raw instanceof Uint8Array) r.end(raw);
    else {
      // Streamed, as fast as the daemon takes it.
      void (async () => {
        try {
          for await (const chunk of raw) if (!r.write(chunk)) await new Promise((ok) => r.once("drain", ok));
          r.end();
        } catch (e) {
          r.destroy(e as Error);
        }
      })();
    }
  });
}

export function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

function apiError(status: number, text: string): VireoApiError {
  try {
    const body = JSON.parse(text) as Partial<ApiErrorBody>;
    if (typeof body.error === "string" && typeof body.message === "string") {
      return new VireoApiError(status, body.error, body.message, body.fields ?? []);
    }
  } catch {
    // Not the API's error form (a proxy's page): the status and the text say what there is.
  }
  return new VireoApiError(status, "http", `the daemon answered ${status}: ${text.slice(0, 200)}`);
}

/** The `data:` of each server-sent event, parsed, until the stream ends. */
export async function* serverSentEvents(res: IncomingMessage): AsyncGenerator<unknown> {
  let buffer = "";
  res.setEncoding("utf8");
  for await (const chunk of res as AsyncIterable<string>) {
    buffer += chunk;
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart());
      if (data.length > 0) yield JSON.parse(data.join("\n"));
    }
  }
}
