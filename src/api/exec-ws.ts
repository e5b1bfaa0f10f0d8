/**
 * GET /vms/{id}/exec as a WebSocket: a command in the guest with its stdin, stdout and stderr streamed
 * (manager/exec-stream.ts builds that out of the guest agent's commands). The protocol:
 *   client → first a text frame, JSON ExecStreamStart {argv, env?, timeoutMs?};
 *            then binary frames whose first byte is 0 (stdin) and the rest stdin bytes;
 *            a frame of that byte alone ends stdin
 *   server → binary frames whose first byte is 1 (stdout) or 2 (stderr), the rest the bytes, as the
 *            command prints them; last a text frame, JSON ExecStreamEnd: {type: "exit", exitCode,
 *            signal?}, {type: "timeout", exitCode: null, signal} or {type: "error", error, message};
 *            then it closes (1000 after exit and timeout; an error with the code below)
 * A client that goes away kills the command's process group in the guest.
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { ManagerError } from "../manager/errors.js";
import { ExecStream } from "../manager/exec-stream.js";
import type { VmManager } from "../manager/manager.js";
import { QgaError, QgaLinkError } from "../manager/qga-client.js";
import { linked } from "./guest-routes.js";
import { ExecStreamStartSchema } from "./schemas.js";

/** Frame channels: the first byte of every binary frame. */
export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

/** Close codes (4000–4999 are the application's). */
export const EXEC_BAD_REQUEST = 4400;
export const EXEC_NO_SUCH_VM = 4404;
export const EXEC_CONFLICT = 4409;
export const EXEC_AGENT_FAILED = 4502;

const DEFAULT_TIMEOUT_MS = 3_600_000;
/** How long the first message may take. */
const START_TIMEOUT_MS = 30_000;
/** Output the client has not taken yet beyond which the guest's output waits (it stays in the guest). */
const MAX_QUEUED_BYTES = 1024 * 1024;
/**
 * Stdin the daemon holds for a command that reads slower than the client sends: past this the socket
 * is paused (TCP pushes back on the client) until the guest has taken half of it.
 */
const MAX_STDIN_BACKLOG = 4 * 1024 * 1024;

const checkStart = TypeCompiler.Compile(ExecStreamStartSchema);

interface Start {
  argv: string[];
  env?: string[];
  timeoutMs?: number;
}

function closeCode(e: unknown): { code: number; error: string } {
  if (e instanceof ManagerError) {
    return e.kind === "not-found"
      ? { code: EXEC_NO_SUCH_VM, error: "not-found" }
      : e.kind === "invalid"
        ? { code: EXEC_BAD_REQUEST, error: "invalid" }
        : { code: EXEC_CONFLICT, error: e.kind };
  }
  return { code: EXEC_AGENT_FAILED, error: "bad-gateway" };
}

export function execSocket(manager: VmManager, socket: WebSocket, request: FastifyRequest): void {
  const id = (request.params as { id: string }).id;
  // The server's idle timeout is for HTTP requests; a command may print nothing for a long time.
  request.raw.socket.setTimeout(0);
  let exec: ExecStream | null = null;
  let gone = false;
  const pendingStdin: Buffer[] = [];
  let pendingBytes = 0;
  let paused = false;
  const backlog = () => (exec === null ? pendingBytes : exec.stdinBacklog);
  const holdBack = () => {
    if (!paused && backlog() > MAX_STDIN_BACKLOG) {
      paused = true;
      socket.pause();
    }
  };
  const letGo = () => {
    if (paused && backlog() <= MAX_STDIN_BACKLOG / 2) {
      paused = false;
      socket.resume();
    }
  };
  let stdinEnded = false;

  const finish = (end: Record<string, unknown>, code: number) => {
    if (gone) return;
    gone = true;
    // A paused socket would not read the client's half of the close handshake.
    if (paused) socket.resume();
    socket.send(JSON.stringify(end));
    socket.close(code, code === 1000 ? "" : String(end.message ?? "").slice(0, 120));
  };
  const fail = (e: unknown) => {
    if (!(e instanceof ManagerError || e instanceof QgaError || e instanceof QgaLinkError)) {
      request.log.error(e);
    }
    const { code, error } = closeCode(e);
    const message = e instanceof Error ? e.message : String(e);
    finish({ type: "error", error, message }, code);
  };
  const startTimer = setTimeout(() => {
    fail(new ManagerError("invalid", `no start message within ${START_TIMEOUT_MS} ms`));
  }, START_TIMEOUT_MS);

  const send = async (channel: number, bytes: Buffer) => {
    if (gone) return;
    const frame = Buffer.concat([Buffer.from([channel]), bytes]);
    if (socket.bufferedAmount > MAX_QUEUED_BYTES) {
      await new Promise<void>((resolve) => socket.send(frame, () => resolve()));
    } else socket.send(frame);
  };

  const start = async (message: Start) => {
    const agent = await linked(manager, id);
    exec = await ExecStream.start(
      agent,
      {
        argv: message.argv,
        timeoutMs: message.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ...(message.env === undefined ? {} : { env: message.env }),
      },
      { stdout: (b) => send(STDOUT, b), stderr: (b) => send(STDERR, b) },
    );
    // The client went away while the command was being set up.
    if (gone) exec.kill();
    exec.onStdinTaken = letGo;
    for (const b of pendingStdin.splice(0)) exec.write(b);
    pendingBytes = 0;
    if (stdinEnded) exec.endStdin();
    const end = await exec.done;
    if (end.timedOut) finish({ type: "timeout", exitCode: null, signal: end.signal ?? 9 }, 1000);
    else
      finish(
        { type: "exit", exitCode: end.exitCode, ...(end.signal === undefined ? {} : { signal: end.signal }) },
        1000,
      );
  };

  let started = false;
  socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (!started) {
      started = true;
      clearTimeout(startTimer);
      let message: unknown;
      try {
        if (isBinary) throw new Error("the first frame must be text");
        message = JSON.parse(bytes.toString("utf8"));
      } catch (e) {
        fail(
          new ManagerError(
            "invalid",
            `the first frame must be JSON {argv, env?, timeoutMs?}: ${(e as Error).message}`,
          ),
        );
        return;
      }
      if (!checkStart.Check(message)) {
        const first = [...checkStart.Errors(message)][0];
        fail(
          new ManagerError("invalid", `start message ${first?.path || "/"}: ${first?.message ?? "invalid"}`),
        );
        return;
      }
      start(message as Start).catch(fail);
      return;
    }
    if (!isBinary || bytes.length === 0 || bytes[0] !== STDIN) {
      fail(new ManagerError("invalid", "after the start message, only binary frames of channel 0 (stdin)"));
      exec?.kill();
      return;
    }
    const payload = bytes.subarray(1);
    if (payload.length === 0) {
      stdinEnded = true;
      exec?.endStdin();
    } else if (exec === null) {
      pendingStdin.push(payload);
      pendingBytes += payload.length;
    } else exec.write(payload);
    holdBack();
  });
  socket.on("close", () => {
    clearTimeout(startTimer);
    gone = true;
    exec?.kill();
  });
}
