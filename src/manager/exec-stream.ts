/**
 * A command run through the guest agent with its stdin, stdout and stderr streamed while it runs.
 *
 * qemu-ga (Debian's 10.0) hands a guest-exec's captured output over only once the process has exited,
 * and takes its stdin in one piece up front, so streaming is built from the agent's file commands
 * around a small busybox-sh wrapper, in a private folder of the guest's /tmp:
 *   - stdout and stderr go to the files out and err, which the host tails with guest-file-read
 *     (a read returns what is there, and after an eof the next read returns what was added since);
 *   - stdin chunks are written as files in.1, in.2, …, each announced by a line on the FIFO bell;
 *     a feeder in the wrapper reads the bell and copies each chunk into the FIFO in, the command's
 *     stdin, then deletes it; the line "end" ends stdin. The data does not go through a FIFO that
 *     qemu-ga writes: qemu-ga opens files non-blocking and writes through stdio, so a full pipe would
 *     lose bytes and leave the handle in error. Only a few bytes per chunk go through the bell, and the
 *     host keeps at most WINDOW chunks unconsumed (it looks whether in.(n-WINDOW) is gone before it
 *     writes in.n), so the bell cannot fill;
 *   - the wrapper runs under setsid, so its process group (wrapper, feeder, command) is killed at once
 *     on a timeout or when the client goes away; its exit status is the command's (the shell's 127
 *     for a command that is not there), and guest-exec-status reports it;
 *   - the folder is removed at the end, whatever the end.
 */
import { randomUUID } from "node:crypto";
import type { GuestAgent } from "./guest-agent.js";
import { QgaError, QgaLinkError } from "./qga-client.js";

/** Unconsumed stdin chunks the host may have in the guest at once. */
const WINDOW = 16;
/** The largest stdin chunk file: pieces that arrive while one is written are joined up to this. */
const STDIN_CHUNK = 256 * 1024;
/** Bytes asked for per output read (base64 in JSON: ~90 KB a reply). */
const READ_CHUNK = 64 * 1024;
/** The longest pause between two looks at the output of a quiet command (each look is three agent calls). */
const MAX_POLL_MS = 200;

const GUEST_PATH = "PATH=/bin:/sbin:/usr/bin:/usr/sbin";

const SETUP = 'umask 077 && mkdir "$1" && mkfifo "$1/bell" "$1/in" && : >"$1/out" && : >"$1/err"';

// The feeder runs in the background; the command's status is the wrapper's. The feeder is killed once
// the command exits, so a command that never reads its stdin does not wait for its end.
const RUN = [
  "d=$1; shift",
  '{ while read -r n; do [ "$n" = end ] && break; cat "$d/in.$n"; rm -f "$d/in.$n"; done <"$d/bell" >"$d/in"; } &',
  '"$@" <"$d/in" >"$d/out" 2>"$d/err"',
  "st=$?",
  "kill $! 2>/dev/null",
  "exit $st",
].join("\n");

/** What the stream needs of a GuestAgent (a test gives a fake). */
export type ExecAgent = Pick<GuestAgent, "call" | "exec">;

export interface StreamExecRequest {
  argv: string[];
  /** KEY=VALUE words; PATH is the agent's unless given. */
  env?: string[];
  /** Killed in the guest (its whole process group) past this. */
  timeoutMs: number;
}

export interface StreamExecSink {
  /** Called in order; the next read waits for a returned promise (the client's backpressure). */
  stdout(chunk: Buffer): void | Promise<void>;
  stderr(chunk: Buffer): void | Promise<void>;
}

export interface StreamExecEnd {
  /** The wrapper's status: the command's, or 128+N when a signal ended the command. */
  exitCode: number | null;
  /** The signal that ended the wrapper (9 after a timeout or a kill). */
  signal?: number;
  timedOut: boolean;
  /** Killed because the client asked (went away). */
  killed: boolean;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One tailed guest file. A read at the end answers eof, and the next read still returns what was
 * appended since: qemu-ga clears the stream's end-of-file mark after each read (seen with Debian's
 * 10.0: the streaming test passes without a guest-file-seek in between).
 */
class Tail {
  constructor(
    private readonly agent: ExecAgent,
    readonly handle: number,
  ) {}

  /** What was added since the last read (empty: nothing yet). */
  async read(): Promise<Buffer> {
    const r = await this.agent.call<{ count: number; "buf-b64"?: string; eof: boolean }>("guest-file-read", {
      handle: this.handle,
      count: READ_CHUNK,
    });
    return r.count > 0 ? Buffer.from(r["buf-b64"] ?? "", "base64") : Buffer.alloc(0);
  }
}

export class ExecStream {
  /**
   * Resolves when the command has ended and the guest folder is gone; rejects (QgaError, QgaLinkError)
   * when the agent failed on the way (the folder is still removed if the agent answers).
   */
  readonly done: Promise<StreamExecEnd>;
  private stdinQueue: Buffer[] = [];
  private stdinQueued = 0;
  /** Called whenever queued stdin went into the guest (a caller holding its sender back may let it go). */
  onStdinTaken: (() => void) | null = null;
  private stdinEnded = false;
  private stdinPump: Promise<void> | null = null;
  private endSent = false;
  private sent = 0;
  private exited = false;
  private killRequested = false;
  private killSent = false;
  private timedOut = false;
  private wake: (() => void) | null = null;

  private constructor(
    private readonly agent: ExecAgent,
    private readonly dir: string,
    private readonly pid: number,
    private readonly bell: number,
    private readonly tails: { out: Tail; err: Tail },
    private readonly sink: StreamExecSink,
    timeoutMs: number,
  ) {
    this.done = this.run(Date.now() + timeoutMs);
  }

  /**
   * Sets the guest folder up and starts the command. Rejects (QgaError, QgaLinkError) when the agent
   * cannot: the folder is removed again then.
   */
  static async start(agent: ExecAgent, req: StreamExecRequest, sink: StreamExecSink): Promise<ExecStream> {
    const dir = `/tmp/vireo-exec-${randomUUID()}`;
    const setup = await agent.exec({ argv: ["/bin/sh", "-c", SETUP, "sh", dir], timeoutMs: 30_000 });
    if (setup.exitCode !== 0) {
      throw new QgaError("GenericError", `cannot set up ${dir}: ${setup.stderr.toString("utf8").trim()}`);
    }
    const handles: number[] = [];
    try {
      // r+ (read-write): opening a FIFO so never waits for the other end.
      const bell = await agent.call<number>("guest-file-open", { path: `${dir}/bell`, mode: "r+" });
      handles.push(bell);
      const out = await agent.call<number>("guest-file-open", { path: `${dir}/out`, mode: "r" });
      handles.push(out);
      const err = await agent.call<number>("guest-file-open", { path: `${dir}/err`, mode: "r" });
      handles.push(err);
      const env =
        req.env === undefined
          ? undefined
          : [...(req.env.some((e) => e.startsWith("PATH=")) ? [] : [GUEST_PATH]), ...req.env];
      const { pid } = await agent.call<{ pid: number }>("guest-exec", {
        path: "/bin/setsid",
        arg: ["/bin/sh", "-c", RUN, "vireo-exec", dir, ...req.argv],
        ...(env === undefined ? {} : { env }),
      });
      return new ExecStream(
        agent,
        dir,
        pid,
        bell,
        { out: new Tail(agent, out), err: new Tail(agent, err) },
        sink,
        req.timeoutMs,
      );
    } catch (e) {
      await cleanup(agent, dir, handles);
      throw e;
    }
  }

  /** Queues bytes for the command's stdin (dropped once the command has exited or stdin ended). */
  write(bytes: Uint8Array): void {
    if (this.stdinEnded || this.exited || bytes.length === 0) return;
    this.stdinQueue.push(Buffer.from(bytes));
    this.stdinQueued += bytes.length;
    this.kick();
  }

  /** Bytes of stdin queued here, not yet in the guest. */
  get stdinBacklog(): number {
    return this.stdinQueued;
  }

  /** Ends the command's stdin once what was queued has gone in. */
  endStdin(): void {
    if (this.stdinEnded) return;
    this.stdinEnded = true;
    this.kick();
  }

  /** Kills the command (its process group) in the guest; `done` resolves once it is gone. */
  kill(): void {
    this.killRequested = true;
    this.wake?.();
  }

  private kick(): void {
    if (this.stdinPump !== null) return;
    this.stdinPump = this.pumpStdin().finally(() => {
      this.stdinPump = null;
      // Bytes (or the end) that came after the pump last looked.
      if (!this.exited && (this.stdinQueued > 0 || (this.stdinEnded && !this.endSent))) this.kick();
    });
  }

  private async pumpStdin(): Promise<void> {
    try {
      while (this.stdinQueued > 0 && !this.exited) {
        const joined = Buffer.concat(this.stdinQueue);
        const chunk = joined.subarray(0, STDIN_CHUNK);
        const rest = joined.subarray(chunk.length);
        this.stdinQueue = rest.length > 0 ? [rest] : [];
        this.stdinQueued = rest.length;
        this.onStdinTaken?.();
        const n = this.sent + 1;
        if (!(await this.windowOpen(n))) return;
        const path = `${this.dir}/in.${n}`;
        const handle = await this.agent.call<number>("guest-file-open", { path, mode: "w" });
        try {
          await this.agent.call("guest-file-write", { handle, "buf-b64": chunk.toString("base64") });
        } finally {
          await this.agent.call("guest-file-close", { handle });
        }
        await this.ring(`${n}\n`);
        this.sent = n;
      }
      if (this.stdinEnded && this.stdinQueued === 0 && !this.endSent && !this.exited) {
        this.endSent = true;
        await this.ring("end\n");
      }
    } catch (e) {
      // The command may have ended (and its folder gone) meanwhile; otherwise the link broke, which the
      // output loop finds out too. Either way stdin goes no further.
      if (!(e instanceof QgaError || e instanceof QgaLinkError)) throw e;
      this.stdinEnded = true;
      this.endSent = true;
      this.stdinQueue = [];
      this.stdinQueued = 0;
      this.onStdinTaken?.();
    }
  }

  /** Waits until chunk n-WINDOW has been consumed (its file deleted); false if the command ended. */
  private async windowOpen(n: number): Promise<boolean> {
    if (n <= WINDOW) return true;
    let wait = 5;
    for (;;) {
      if (this.exited) return false;
      try {
        const h = await this.agent.call<number>("guest-file-open", {
          path: `${this.dir}/in.${n - WINDOW}`,
          mode: "r",
        });
        await this.agent.call("guest-file-close", { handle: h });
      } catch (e) {
        if (e instanceof QgaError && /No such file/i.test(e.desc)) return true;
        throw e;
      }
      await delay(wait);
      wait = Math.min(wait * 2, MAX_POLL_MS);
    }
  }

  private async ring(line: string): Promise<void> {
    await this.agent.call("guest-file-write", {
      handle: this.bell,
      "buf-b64": Buffer.from(line).toString("base64"),
    });
    await this.agent.call("guest-file-flush", { handle: this.bell });
  }

  private async killGroup(): Promise<void> {
    if (this.killSent) return;
    this.killSent = true;
    // The wrapper leads its own session and process group (setsid): a negative pid reaches all of it.
    await this.agent
      .exec({ argv: ["/bin/sh", "-c", 'kill -9 -- "-$1"', "sh", String(this.pid)], timeoutMs: 10_000 })
      .catch(() => {});
  }

  /** Moves what the command printed to the sink; true when there was any. */
  private async drain(): Promise<boolean> {
    let any = false;
    for (const [name, tail] of [
      ["stdout", this.tails.out],
      ["stderr", this.tails.err],
    ] as const) {
      for (;;) {
        const bytes = await tail.read();
        if (bytes.length === 0) break;
        any = true;
        await this.sink[name](bytes);
        if (bytes.length < READ_CHUNK) break;
      }
    }
    return any;
  }

  private async run(deadline: number): Promise<StreamExecEnd> {
    let status: ExecStatus = { exited: false };
    try {
      let wait = 2;
      for (;;) {
        if (!this.killSent && (this.killRequested || Date.now() >= deadline)) {
          if (!this.killRequested) this.timedOut = true;
          await this.killGroup();
        }
        // The status first: output written before an exit is all there when the reads below run.
        status = await this.agent.call<ExecStatus>("guest-exec-status", { pid: this.pid });
        const printed = await this.drain();
        if (status.exited) break;
        if (printed) wait = 2;
        else {
          await new Promise<void>((r) => {
            const timer = setTimeout(r, wait);
            this.wake = () => {
              clearTimeout(timer);
              r();
            };
          });
          this.wake = null;
          wait = Math.min(wait * 2, MAX_POLL_MS);
        }
      }
    } finally {
      this.exited = true;
      await this.stdinPump?.catch(() => {});
      await cleanup(this.agent, this.dir, [this.bell, this.tails.out.handle, this.tails.err.handle]);
    }
    const end: StreamExecEnd = {
      exitCode: status.exitcode ?? null,
      timedOut: this.timedOut,
      killed: this.killRequested && !this.timedOut,
    };
    if (status.signal !== undefined) end.signal = status.signal;
    return end;
  }
}

/** Closes the handles and removes the folder; failures are ignored (the guest may be gone). */
async function cleanup(agent: ExecAgent, dir: string, handles: number[]): Promise<void> {
  for (const handle of handles) await agent.call("guest-file-close", { handle }).catch(() => {});
  await agent.exec({ argv: ["/bin/rm", "-rf", dir], timeoutMs: 10_000 }).catch(() => {});
}
