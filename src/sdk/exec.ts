/**
 * A command in the guest with its output streamed (GET /vms/{id}/exec as a WebSocket, through the
 * CLI's client of it): stdout and stderr are Node Readables (async iterables of Buffers), stdin is
 * written piece by piece or given whole, and `exit` resolves with how it ended. A consumer that reads
 * slowly holds the command's output back in the guest rather than in memory here.
 */
import { Readable } from "node:stream";
import { ExecClient, type ExecEnd, type ExecStart, ExecUpgradeError } from "../cli/exec-client.js";
import { VireoApiError } from "./transport.js";

export interface ExecStreamOptions {
  /** KEY=VALUE words (PATH is the agent's unless given). */
  env?: string[];
  /** Killed in the guest past this (default 3600000 ms); `exit` then says timedOut. */
  timeoutMs?: number;
  /** Given: sent as the whole stdin, then stdin ends. Otherwise write() and endStdin(). */
  stdin?: string | Uint8Array | AsyncIterable<Uint8Array>;
}

export interface ExecExit {
  /** The program's status (127: not there; 128+N: ended by signal N); null when it was killed. */
  exitCode: number | null;
  signal?: number;
  timedOut: boolean;
}

export class ExecSession {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** How the program ended; rejects with a VireoApiError when it could not run or the agent failed. */
  readonly exit: Promise<ExecExit>;

  private constructor(
    private readonly client: ExecClient,
    streams: { stdout: Readable; stderr: Readable },
  ) {
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
    this.exit = client.result.then((end) => {
      this.stdout.push(null);
      this.stderr.push(null);
      return exitOf(end);
    });
  }

  static async open(
    url: string,
    headers: Record<string, string>,
    start: ExecStart,
    stdin: ExecStreamOptions["stdin"],
  ): Promise<ExecSession> {
    let client: ExecClient | null = null;
    // Output the reader has not asked for pauses the socket; the reader's next read resumes it.
    const streams = {
      stdout: new Readable({ read: () => client?.resume() }),
      stderr: new Readable({ read: () => client?.resume() }),
    };
    const deliver = (stream: Readable) => (bytes: Buffer) => {
      if (!stream.push(bytes)) client?.pause();
    };
    try {
      client = await ExecClient.open(url, headers, start, {
        stdout: deliver(streams.stdout),
        stderr: deliver(streams.stderr),
      });
    } catch (e) {
      if (e instanceof ExecUpgradeError) throw new VireoApiError(e.status, "http", e.message);
      throw e;
    }
    const session = new ExecSession(client, streams);
    if (stdin !== undefined) session.sendAll(stdin).catch(() => session.kill());
    return session;
  }

  /** Sends bytes (or UTF-8 text) to the program's stdin; resolves once they are on their way. */
  write(input: string | Uint8Array): Promise<void> {
    return this.client.write(typeof input === "string" ? Buffer.from(input, "utf8") : input);
  }

  /** Ends the program's stdin. */
  endStdin(): void {
    this.client.endStdin();
  }

  /** Kills the program in the guest (by going away); `exit` then rejects. */
  kill(): void {
    this.client.close();
  }

  private async sendAll(stdin: NonNullable<ExecStreamOptions["stdin"]>): Promise<void> {
    if (typeof stdin === "string" || stdin instanceof Uint8Array) await this.write(stdin);
    else for await (const piece of stdin) await this.write(piece);
    this.endStdin();
  }
}

function exitOf(end: ExecEnd): ExecExit {
  if (end.type === "error") {
    const status =
      end.error === "not-found" ? 404 : end.error === "invalid" ? 400 : end.error === "conflict" ? 409 : 502;
    throw new VireoApiError(status, end.error ?? "error", end.message ?? "exec failed");
  }
  return {
    exitCode: end.exitCode ?? null,
    ...(end.signal === undefined ? {} : { signal: end.signal }),
    timedOut: end.type === "timeout",
  };
}
