/**
 * `vireo vm exec NAME -- CMD ARGS…` and `vireo vm cp`: through the daemon's agent routes. exec streams
 * this process's stdin to the program and its stdout and stderr onto ours as they come (the exec
 * WebSocket), and exits with its status; --json answers with the whole-output form instead. cp streams
 * a file to or from the guest.
 */
import { createReadStream, createWriteStream, existsSync, rmSync, statSync } from "node:fs";
import { request } from "node:http";
import { pipeline } from "node:stream/promises";
import { UserError } from "../util/errors.js";
import { requestDaemon } from "./api-client.js";
import { ExecClient, ExecUpgradeError, unixWsUrl } from "./exec-client.js";
import { parseCount } from "./flags.js";

/** What vireo exits with when the command ran past --timeout (as timeout(1) does). */
export const EXIT_TIMED_OUT = 124;
/** Most stdin passed with --json (the API takes a 1 MiB JSON body; base64 makes 3 bytes 4). */
const MAX_STDIN = 700 * 1024;

interface ExecAnswer {
  exitCode: number | null;
  signal?: number;
  stdout: string;
  stderr: string;
  stdoutEncoding: "utf8" | "base64";
  stderrEncoding: "utf8" | "base64";
  truncated: boolean;
  timedOut: boolean;
}

async function readStdin(): Promise<Buffer | undefined> {
  if (process.stdin.isTTY === true) return undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_STDIN)
      throw new UserError(`stdin over ${MAX_STDIN} bytes: copy it in with 'vireo vm cp' instead`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function errorMessage(status: number, body: unknown): string {
  const message = (body as { message?: unknown } | null)?.message;
  return typeof message === "string" ? message : `the daemon answered ${status}`;
}

export async function execVerb(
  socket: string,
  path: string,
  argv: string[],
  options: { env: string[]; timeoutMs?: string; json: boolean },
): Promise<number> {
  if (argv.length === 0) throw new UserError("'vm exec' needs a command: vireo vm exec NAME -- CMD ARGS…");
  for (const e of options.env) if (!/^[^=]+=/.test(e)) throw new UserError(`--env ${e}: expected KEY=VALUE`);
  const timeoutMs =
    options.timeoutMs === undefined ? undefined : parseCount(options.timeoutMs, "timeout-ms", 1, 86_400_000);
  if (options.json) return execJson(socket, path, argv, options.env, timeoutMs);
  const start = {
    argv,
    ...(options.env.length > 0 ? { env: options.env } : {}),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
  let client: ExecClient;
  const write = (stream: NodeJS.WriteStream) => (bytes: Buffer) => {
    // A slow reader of ours holds the output back (in the daemon, then in the guest).
    if (!stream.write(bytes)) {
      client.pause();
      stream.once("drain", () => client.resume());
    }
  };
  try {
    client = await ExecClient.open(unixWsUrl(socket, `${path}/exec`), {}, start, {
      stdout: write(process.stdout),
      stderr: write(process.stderr),
    });
  } catch (e) {
    if (e instanceof ExecUpgradeError) throw new UserError(e.message);
    throw unreachable(socket, e as NodeJS.ErrnoException);
  }
  const stdin = pumpStdin(client);
  const end = await client.result;
  stdin.stop();
  // Everything printed is out before vireo's status is.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  if (end.type === "error") throw new UserError(end.message ?? "exec failed");
  if (end.type === "timeout") {
    process.stderr.write("vireo: the command ran past its timeout and was killed in the guest\n");
    return EXIT_TIMED_OUT;
  }
  if (end.exitCode === null || end.exitCode === undefined) return 128 + (end.signal ?? 0);
  return end.exitCode;
}

/** Copies this process's stdin to the command as it comes (no cap), then ends it. */
function pumpStdin(client: ExecClient): { stop(): void } {
  let stopped = false;
  const input = process.stdin;
  const onData = (chunk: Buffer) => {
    input.pause();
    client.write(chunk).then(() => {
      if (!stopped) input.resume();
    });
  };
  const onEnd = () => client.endStdin();
  input.on("data", onData);
  input.once("end", onEnd);
  input.once("error", onEnd);
  return {
    stop() {
      stopped = true;
      input.off("data", onData);
      input.off("end", onEnd);
      // A terminal (or a pipe nobody closes) must not keep vireo waiting once the command has ended.
      input.destroy();
    },
  };
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write("", () => resolve());
  });
}

/** --json: the whole-output form (POST /vms/{id}/exec), stdin capped at MAX_STDIN. */
async function execJson(
  socket: string,
  path: string,
  argv: string[],
  env: string[],
  timeoutMs: number | undefined,
): Promise<number> {
  const body: Record<string, unknown> = { argv };
  if (env.length > 0) body.env = env;
  if (timeoutMs !== undefined) body.timeoutMs = timeoutMs;
  const stdin = await readStdin();
  if (stdin !== undefined && stdin.length > 0) body.stdinBase64 = stdin.toString("base64");
  const answer = await requestDaemon(socket, "POST", `${path}/exec`, body);
  if (answer.status !== 200 && answer.status !== 504)
    throw new UserError(errorMessage(answer.status, answer.body));
  const r = answer.body as ExecAnswer;
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  if (r.truncated) process.stderr.write("vireo: the output was cut at the daemon's cap\n");
  if (r.timedOut) return EXIT_TIMED_OUT;
  if (r.exitCode === null) return 128 + (r.signal ?? 0);
  return r.exitCode;
}

/** NAME:PATH (a guest file) or a local path. A local path with a colon can be written ./a:b. */
export function parseCpOperand(text: string): { vm: string; path: string } | { local: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62}):(.*)$/.exec(text);
  if (m === null) return { local: text };
  const path = m[2] as string;
  if (!path.startsWith("/")) throw new UserError(`${text}: the guest path must be absolute (NAME:/path)`);
  return { vm: m[1] as string, path };
}

function filesPath(vm: string, path: string): string {
  return `/vms/${encodeURIComponent(vm)}/files?path=${encodeURIComponent(path)}`;
}

/** Reads an error answer's body and rejects with its message. */
function failWith(res: import("node:http").IncomingMessage, reject: (e: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("end", () => {
    let body: unknown = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {}
    reject(new UserError(errorMessage(res.statusCode ?? 0, body)));
  });
}

function unreachable(socket: string, e: NodeJS.ErrnoException): UserError {
  return e.code === "ENOENT" || e.code === "ECONNREFUSED"
    ? new UserError(`no daemon listens on ${socket} (start one with 'vireo daemon')`)
    : new UserError(`cannot reach the daemon on ${socket}: ${e.message}`);
}

export async function cpVerb(socket: string, source: string, dest: string): Promise<string> {
  const from = parseCpOperand(source);
  const to = parseCpOperand(dest);
  if ("local" in from && "vm" in to) {
    if (!existsSync(from.local) || !statSync(from.local).isFile())
      throw new UserError(`${from.local}: no such file`);
    const bytes = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          socketPath: socket,
          method: "PUT",
          path: filesPath(to.vm, to.path),
          headers: { "content-type": "application/octet-stream" },
        },
        (res) => {
          if (res.statusCode !== 200) return failWith(res, reject);
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { bytes: number }).bytes),
          );
        },
      );
      req.on("error", (e) => reject(unreachable(socket, e)));
      createReadStream(from.local).on("error", reject).pipe(req);
    });
    return `${from.local} -> ${to.vm}:${to.path} (${bytes} bytes)`;
  }
  if ("vm" in from && "local" in to) {
    let opened = false;
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { socketPath: socket, method: "GET", path: filesPath(from.vm, from.path) },
        (res) => {
          if (res.statusCode !== 200) return failWith(res, reject);
          opened = true;
          pipeline(res, createWriteStream(to.local)).then(
            () =>
              res.complete
                ? resolve()
                : reject(new UserError(`${from.vm}:${from.path}: the copy was cut short`)),
            (e: Error) => reject(new UserError(`${to.local}: ${e.message}`)),
          );
        },
      );
      req.on("error", (e) => reject(unreachable(socket, e)));
      req.end();
    }).catch((e) => {
      // A file cut short is worse than none.
      if (opened) rmSync(to.local, { force: true });
      throw e;
    });
    return `${from.vm}:${from.path} -> ${to.local} (${statSync(to.local).size} bytes)`;
  }
  throw new UserError("'vm cp' copies FILE NAME:PATH or NAME:PATH FILE (one side in a guest)");
}
