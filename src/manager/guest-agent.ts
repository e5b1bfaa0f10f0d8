/**
 * What the daemon does through a VM's guest agent (qga-client.ts): run a command and collect its
 * output, copy a file in or out in chunks, shut the guest down. One stream per VM, made on first use
 * and made again after it broke; calls from many requests share it (the agent answers in order).
 */
import type { Readable } from "node:stream";
import { QgaClient, QgaError, QgaLinkError } from "./qga-client.js";

/** The vsock port /init starts qemu-ga on (guest/init, images/agent.ts). */
export const AGENT_PORT = 1234;
/** Default and largest output kept per stream of one exec. */
export const DEFAULT_OUTPUT_CAP = 1024 * 1024;
export const MAX_OUTPUT_CAP = 16 * 1024 * 1024;
/** File chunks: qemu-ga takes base64 in JSON, so ~1.4 MB per message. */
export const FILE_CHUNK = 1024 * 1024;

export interface ExecRequest {
  argv: string[];
  /** KEY=VALUE words; PATH is the agent's unless given (qemu-ga replaces the whole environment). */
  env?: string[];
  stdin?: Uint8Array;
  /** Killed in the guest (SIGKILL) past this. */
  timeoutMs: number;
  /** Bytes kept of stdout and of stderr each (default DEFAULT_OUTPUT_CAP). */
  outputCap?: number;
}

export interface ExecResult {
  exitCode: number | null;
  /** The signal that ended it, if one did. */
  signal?: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Output past the cap was dropped. */
  truncated: boolean;
  timedOut: boolean;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

/**
 * guest-exec-status polls: the first after this, doubling up to the largest. Each poll is a round trip
 * through the interpreted guest's qemu-ga, so polling faster costs the guest the CPU it runs the
 * command on; a long first sleep would dominate a short command.
 */
export const EXEC_POLL_FIRST_MS = 2;
export const EXEC_POLL_MAX_MS = 50;

const GUEST_PATH = "PATH=/bin:/sbin:/usr/bin:/usr/sbin";

/** How qemu-ga says a program could not be started because it is not there (glib's spawn error). */
function isMissingProgram(e: unknown): e is QgaError {
  return e instanceof QgaError && /No such file or directory|not found/i.test(e.desc);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class GuestAgent {
  private client: QgaClient | null = null;
  private connecting: Promise<QgaClient> | null = null;
  private execAnswered!: () => void;
  /**
   * Resolves once an exec in this run has answered (or failed): a warm pool waits for it before it
   * starts the acquired VM's replacement, which would otherwise take the CPUs that exec runs on.
   */
  readonly firstExec = new Promise<void>((answered) => {
    this.execAnswered = answered;
  });

  constructor(
    readonly udsPath: string,
    private readonly port = AGENT_PORT,
  ) {}

  /** The stream, connected (and synced) if it is not. */
  async link(timeoutMs = 10_000): Promise<QgaClient> {
    if (this.client !== null && !this.client.closed) return this.client;
    this.connecting ??= QgaClient.connect(this.udsPath, this.port, { timeoutMs }).finally(() => {
      this.connecting = null;
    });
    this.client = await this.connecting;
    return this.client;
  }

  async call<T>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    const client = await this.link();
    return client.call<T>(command, args, timeoutMs === undefined ? {} : { timeoutMs });
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }

  /** Closes the link the clean way, the guest's side included (see QgaClient.end). */
  async release(timeoutMs = 5_000): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end(timeoutMs);
  }

  /**
   * Runs argv[0] (searched on the guest's PATH) with captured output. A program that is not there is
   * the shell's 127 with qemu-ga's message as stderr, not an error. Past the timeout the process is
   * killed in the guest (through the agent, with busybox kill) and what it printed is returned.
   */
  async exec(req: ExecRequest): Promise<ExecResult> {
    try {
      return await this.run(req);
    } finally {
      this.execAnswered();
    }
  }

  private async run(req: ExecRequest): Promise<ExecResult> {
    const cap = Math.min(req.outputCap ?? DEFAULT_OUTPUT_CAP, MAX_OUTPUT_CAP);
    const env =
      req.env === undefined
        ? undefined
        : [...(req.env.some((e) => e.startsWith("PATH=")) ? [] : [GUEST_PATH]), ...req.env];
    const args: Record<string, unknown> = {
      path: req.argv[0],
      arg: req.argv.slice(1),
      "capture-output": true,
    };
    if (env !== undefined) args.env = env;
    if (req.stdin !== undefined && req.stdin.length > 0)
      args["input-data"] = Buffer.from(req.stdin).toString("base64");
    let pid: number;
    try {
      pid = (await this.call<{ pid: number }>("guest-exec", args)).pid;
    } catch (e) {
      if (!isMissingProgram(e)) throw e;
      return {
        exitCode: 127,
        stdout: Buffer.alloc(0),
        stderr: Buffer.from(`${e.desc}\n`),
        truncated: false,
        timedOut: false,
      };
    }
    const deadline = Date.now() + req.timeoutMs;
    let wait = EXEC_POLL_FIRST_MS;
    let timedOut = false;
    for (;;) {
      const status = await this.call<ExecStatus>("guest-exec-status", { pid });
      if (status.exited) return result(status, cap, timedOut);
      if (!timedOut && Date.now() >= deadline) {
        timedOut = true;
        await this.call("guest-exec", { path: "kill", arg: ["-9", String(pid)] }).catch(() => {});
        wait = 5;
        continue;
      }
      await delay(wait);
      wait = Math.min(wait * 2, EXEC_POLL_MAX_MS);
    }
  }

  /** Writes `data` to `path` in the guest (created or truncated); resolves with the bytes written. */
  async copyIn(
    path: string,
    data: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable,
  ): Promise<number> {
    const handle = await this.call<number>("guest-file-open", { path, mode: "w" });
    let total = 0;
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (all: boolean) => {
        while (pendingBytes >= FILE_CHUNK || (all && pendingBytes > 0)) {
          const joined = Buffer.concat(pending);
          const chunk = joined.subarray(0, Math.min(FILE_CHUNK, joined.length));
          const rest = joined.subarray(chunk.length);
          pending = rest.length > 0 ? [rest] : [];
          pendingBytes = rest.length;
          const r = await this.call<{ count: number }>("guest-file-write", {
            handle,
            "buf-b64": chunk.toString("base64"),
          });
          // qemu-ga writes what it decoded and errors when the write fails, so another count means the
          // bytes changed on the way: never retried, since what was written cannot be known.
          if (r.count !== chunk.length) {
            throw new QgaLinkError(
              `guest agent: wrote ${r.count} bytes of a ${chunk.length}-byte chunk to ${path}`,
            );
          }
          total += chunk.length;
        }
      };
      for await (const piece of data as AsyncIterable<Uint8Array>) {
        pending.push(Buffer.from(piece));
        pendingBytes += piece.length;
        await flush(false);
      }
      await flush(true);
    } finally {
      await this.call("guest-file-close", { handle }).catch(() => {});
    }
    return total;
  }

  /** Reads `path` from the guest chunk by chunk (opened at once, so a missing file fails the call). */
  async copyOut(path: string): Promise<AsyncGenerator<Buffer>> {
    const handle = await this.call<number>("guest-file-open", { path, mode: "r" });
    const self = this;
    return (async function* () {
      try {
        for (;;) {
          const r = await self.call<{ count: number; "buf-b64": string; eof: boolean }>("guest-file-read", {
            handle,
            count: FILE_CHUNK,
          });
          if (r.count > 0) yield Buffer.from(r["buf-b64"], "base64");
          if (r.eof || r.count === 0) return;
        }
      } finally {
        await self.call("guest-file-close", { handle }).catch(() => {});
      }
    })();
  }

  /** Asks the guest to power off; the agent may go away before it answers, which is success here. */
  async shutdown(): Promise<void> {
    try {
      await this.call("guest-shutdown", { mode: "powerdown" }, 5_000);
    } catch (e) {
      if (!(e instanceof QgaLinkError)) throw e;
    }
  }
}

function result(status: ExecStatus, cap: number, timedOut: boolean): ExecResult {
  const out = Buffer.from(status["out-data"] ?? "", "base64");
  const err = Buffer.from(status["err-data"] ?? "", "base64");
  const r: ExecResult = {
    exitCode: status.exitcode ?? null,
    stdout: out.subarray(0, cap),
    stderr: err.subarray(0, cap),
    truncated:
      out.length > cap ||
      err.length > cap ||
      status["out-truncated"] === true ||
      status["err-truncated"] === true,
    timedOut,
  };
  if (status.signal !== undefined) r.signal = status.signal;
  return r;
}
