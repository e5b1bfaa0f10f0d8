/**
 * The client side of the exec WebSocket (GET /vms/{id}/exec, api/exec-ws.ts has the protocol), shared
 * by `vireo vm exec` and the SDK's execStream: opens it, sends the start message, splits stdin into
 * frames, hands stdout and stderr on as they come, and resolves with the last frame.
 */
import type { Static } from "@sinclair/typebox";
import { WebSocket } from "ws";
import type { ExecStreamEndSchema, ExecStreamStartSchema } from "../api/schemas.js";

/** The channel byte of each binary frame. */
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
/** The daemon takes frames of up to 64 KiB (its WebSocket maxPayload). */
const MAX_FRAME_PAYLOAD = 64 * 1024 - 1;

export type ExecStart = Static<typeof ExecStreamStartSchema>;

/** The last frame, or type "error" made here when the connection ended without one. */
export type ExecEnd = Static<typeof ExecStreamEndSchema>;

export interface ExecOutput {
  stdout(bytes: Buffer): void;
  stderr(bytes: Buffer): void;
}

/** The daemon answered the upgrade with an HTTP status (401, 404, …). */
export class ExecUpgradeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** ws's address of a path on the daemon's Unix socket. */
export function unixWsUrl(socket: string, path: string): string {
  return `ws+unix://${socket}:${path}`;
}

export class ExecClient {
  /** Resolves with the last frame once the connection has closed; never rejects. */
  readonly result: Promise<ExecEnd>;
  private stdinClosed = false;

  private constructor(
    private readonly ws: WebSocket,
    output: ExecOutput,
  ) {
    let end: ExecEnd | null = null;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        try {
          end = JSON.parse(data.toString("utf8")) as ExecEnd;
        } catch {
          end = {
            type: "error",
            error: "protocol",
            message: "the daemon sent a last frame that is not JSON",
          };
        }
        return;
      }
      const bytes = data.subarray(1);
      if (data[0] === STDOUT) output.stdout(bytes);
      else if (data[0] === STDERR) output.stderr(bytes);
    });
    this.result = new Promise((resolve) => {
      ws.on("error", () => {}); // the close that follows says it
      ws.on("close", (code, reason) => {
        resolve(
          end ?? {
            type: "error",
            error: "closed",
            message: `the exec connection closed before the command ended (${code}${reason.length > 0 ? ` ${reason}` : ""})`,
          },
        );
      });
    });
  }

  /** Opens the WebSocket at `url` and starts `start`; rejects when the daemon refuses the upgrade. */
  static open(
    url: string,
    headers: Record<string, string>,
    start: ExecStart,
    output: ExecOutput,
  ): Promise<ExecClient> {
    const ws = new WebSocket(url, { headers });
    return new Promise((resolve, reject) => {
      ws.once("open", () => {
        ws.removeAllListeners("error");
        const client = new ExecClient(ws, output);
        ws.send(JSON.stringify(start));
        resolve(client);
      });
      ws.once("unexpected-response", (_req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          let message = `the daemon answered ${res.statusCode}`;
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { message?: unknown };
            if (typeof body.message === "string") message = body.message;
          } catch {}
          reject(new ExecUpgradeError(res.statusCode ?? 0, message));
        });
      });
      ws.once("error", reject);
    });
  }

  /** Sends stdin bytes; resolves once they are handed to the socket (so a reader can wait on it). */
  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length && !this.stdinClosed; at += MAX_FRAME_PAYLOAD) {
      const piece = bytes.subarray(at, at + MAX_FRAME_PAYLOAD);
      if (this.ws.readyState !== WebSocket.OPEN) return;
      await new Promise<void>((resolve) => {
        this.ws.send(Buffer.concat([Buffer.from([STDIN]), piece]), () => resolve());
      });
    }
  }

  /** Ends the command's stdin. */
  endStdin(): void {
    if (this.stdinClosed || this.ws.readyState !== WebSocket.OPEN) return;
    this.stdinClosed = true;
    this.ws.send(Buffer.from([STDIN]));
  }

  /** Stops taking output (the daemon, then the guest, hold it) until resume(). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** Goes away: the daemon kills the command in the guest. */
  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(1000);
  }
}
