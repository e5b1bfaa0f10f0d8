/**
 * The handlers of the routes that go through a VM's guest agent (exec, files, shutdown): the manager
 * says whether the VM has one; whether it answers is found out by connecting. Agent failures become
 * the API's errors: not answering yet 409, a broken stream or garbage 502, an agent's refusal of a
 * path 400 (404 for a file that is not there). Uploads are spooled to a host temp file, then copied in.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ManagerError } from "../manager/errors.js";
import type { ExecResult, GuestAgent } from "../manager/guest-agent.js";
import type { VmManager } from "../manager/manager.js";
import { QgaError, QgaLinkError } from "../manager/qga-client.js";

/** An error answer with a status the manager's kinds do not have (502, 504, 415). */
export class ApiStatusError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

/** The agent, connected: a conflict naming why when it does not answer. */
export async function linked(manager: VmManager, id: string): Promise<GuestAgent> {
  const agent = manager.agent(id);
  try {
    await agent.link();
  } catch (e) {
    throw new ManagerError("conflict", `the guest agent has not answered yet (${(e as Error).message})`);
  }
  return agent;
}

/** Maps what a call through the agent threw to the API's errors. */
function agentFailure(e: unknown, path?: string, reading = false): Error {
  if (e instanceof QgaLinkError) return new ApiStatusError(502, "bad-gateway", e.message);
  if (e instanceof QgaError && path !== undefined) {
    if (reading && /No such file or directory/i.test(e.desc)) {
      return new ManagerError("not-found", `no file ${path} in the guest (${e.desc})`);
    }
    return new ManagerError("invalid", `${path} in the guest: ${e.desc}`);
  }
  if (e instanceof QgaError) return new ApiStatusError(502, "bad-gateway", e.message);
  return e as Error;
}

/** UTF-8 text where the bytes are valid UTF-8, else base64. */
function encoded(bytes: Buffer): { text: string; encoding: "utf8" | "base64" } {
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes)
    ? { text, encoding: "utf8" }
    : { text: bytes.toString("base64"), encoding: "base64" };
}

function execAnswer(r: ExecResult): Record<string, unknown> {
  const out = encoded(r.stdout);
  const err = encoded(r.stderr);
  return {
    exitCode: r.exitCode,
    ...(r.signal === undefined ? {} : { signal: r.signal }),
    stdout: out.text,
    stderr: err.text,
    stdoutEncoding: out.encoding,
    stderrEncoding: err.encoding,
    truncated: r.truncated,
    timedOut: r.timedOut,
  };
}

interface ExecBody {
  argv: string[];
  env?: string[];
  stdin?: string;
  stdinBase64?: string;
  timeoutMs?: number;
  outputCap?: number;
}

/**
 * A copy goes at the guest's pace, which may leave the connection without a byte for longer than the
 * server's idle timeout (meant for stalled clients): this one waits on us, not on the client.
 */
function keepOpen(request: FastifyRequest): void {
  // (light-my-request, which tests inject through, gives a socket without setTimeout.)
  request.raw.socket?.setTimeout?.(0);
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function pathOf(request: FastifyRequest): string {
  return (request.query as { path: string }).path;
}

export function guestHandlers(manager: VmManager) {
  return {
    vmExec: async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as ExecBody;
      if (body.stdin !== undefined && body.stdinBase64 !== undefined) {
        throw new ManagerError("invalid", "give stdin or stdinBase64, not both");
      }
      const agent = await linked(manager, idOf(request));
      const stdin =
        body.stdinBase64 !== undefined
          ? Buffer.from(body.stdinBase64, "base64")
          : body.stdin !== undefined
            ? Buffer.from(body.stdin, "utf8")
            : undefined;
      let r: ExecResult;
      try {
        r = await agent.exec({
          argv: body.argv,
          timeoutMs: body.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
          ...(body.env === undefined ? {} : { env: body.env }),
          ...(stdin === undefined ? {} : { stdin }),
          ...(body.outputCap === undefined ? {} : { outputCap: body.outputCap }),
        });
      } catch (e) {
        throw agentFailure(e);
      }
      return reply.code(r.timedOut ? 504 : 200).send(execAnswer(r));
    },
    putFile: async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as Readable | undefined;
      if (body === undefined || body === null || typeof (body as Readable).pipe !== "function") {
        throw new ApiStatusError(415, "unsupported-media-type", "the body must be application/octet-stream");
      }
      const path = pathOf(request);
      const agent = await linked(manager, idOf(request));
      keepOpen(request);
      // The body is taken in at the client's pace into a host file first: the guest writes far slower
      // than a socket delivers, and the server ends requests not received within its requestTimeout.
      const spool = join(tmpdir(), `vireo-upload-${randomUUID()}`);
      let bytes: number;
      try {
        await pipeline(body, createWriteStream(spool, { mode: 0o600 }));
        try {
          bytes = await agent.copyIn(path, createReadStream(spool, { highWaterMark: 1024 * 1024 }));
        } catch (e) {
          throw agentFailure(e, path);
        }
      } finally {
        rmSync(spool, { force: true });
      }
      return reply.code(200).send({ path, bytes });
    },
    getFile: async (request: FastifyRequest, reply: FastifyReply) => {
      const path = pathOf(request);
      const agent = await linked(manager, idOf(request));
      let chunks: AsyncGenerator<Buffer>;
      try {
        chunks = await agent.copyOut(path);
      } catch (e) {
        throw agentFailure(e, path, true);
      }
      keepOpen(request);
      reply.type("application/octet-stream");
      // A failure mid-way can only cut the stream short: the status is already sent.
      return reply.send(Readable.from(chunks));
    },
    // Without Upgrade: websocket (the WebSocket itself is exec-ws.ts).
    vmExecStream: async (request: FastifyRequest) => {
      manager.get(idOf(request));
      throw new ApiStatusError(
        426,
        "upgrade-required",
        "GET /vms/{id}/exec is a WebSocket (Upgrade: websocket); POST /vms/{id}/exec runs a command without one",
      );
    },
    guestShutdown: async (request: FastifyRequest, reply: FastifyReply) => {
      const agent = await linked(manager, idOf(request));
      try {
        await agent.shutdown();
      } catch (e) {
        throw agentFailure(e);
      }
      return reply.code(202).send({ ok: true });
    },
  };
}
