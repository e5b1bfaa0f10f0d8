/**
 * A client of the QEMU guest agent (qemu-ga) over one byte stream: the guest's vsock port reached
 * through the VM's vsock Unix socket (`CONNECT <port>\n` → `OK <hostport>\n`, see host/vsock-uds.ts).
 *
 * The protocol is QMP without a greeting: one JSON object per request, answered in order by
 * {"return": …} or {"error": {"class", "desc"}}. qemu-ga serves one request at a time, so calls are
 * queued and only one is on the wire. A fresh stream starts with `guest-sync-delimited`: the agent
 * writes 0xFF before its answer, so whatever a previous client left half-read in the agent's buffers
 * is skipped. A reply that is not JSON, or not an answer, fails the call it was for and the stream is
 * synced again before the next call; a stream that closes fails the calls on it (the next call
 * connects anew, through `connect`).
 */
import { randomInt } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";

/** The agent answered with an error (class and desc as qemu-ga gives them). */
export class QgaError extends Error {
  override name = "QgaError";
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`guest agent: ${desc}`);
  }
}

/** The stream, not the agent, failed: closed, garbage, no answer in time. */
export class QgaLinkError extends Error {
  override name = "QgaLinkError";
}

/** Longest reply accepted (a 1 MiB file chunk is ~1.4 MB of base64; exec output can be larger). */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** Splits a byte stream into top-level JSON objects, skipping whitespace between them. */
export class JsonObjectSplitter {
  private parts: Buffer[] = [];
  private length = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Skip everything up to and including the next 0xFF (after guest-sync-delimited). */
  awaitDelimiter = false;

  /** Feeds bytes; returns the complete objects' texts, or throws on a byte outside an object. */
  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (this.awaitDelimiter) {
        if (c === 0xff) this.awaitDelimiter = false;
        start = i + 1;
        continue;
      }
      if (this.depth === 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xff) {
          start = i + 1;
          continue;
        }
        if (c !== 0x7b)
          throw new QgaLinkError(`guest agent: unexpected byte 0x${c.toString(16)} between replies`);
        start = i;
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          this.parts.push(Buffer.from(chunk.subarray(start, i + 1)));
          out.push(Buffer.concat(this.parts).toString("utf8"));
          this.parts = [];
          this.length = 0;
          start = i + 1;
        }
      }
    }
    if (this.depth > 0 && start < chunk.length) {
      this.parts.push(Buffer.from(chunk.subarray(start)));
      this.length += chunk.length - start;
      if (this.length > MAX_REPLY_BYTES) throw new QgaLinkError("guest agent: reply too long");
    }
    return out;
  }

  /** Forgets a half-read object (after garbage). */
  reset(): void {
    this.parts = [];
    this.length = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }
}

interface Pending {
  command: string;
  args: Record<string, unknown> | undefined;
  timeoutMs: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export interface QgaCallOptions {
  /** Fail the call (and drop the stream) when no answer came by then. Default 30 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** One stream to one agent, with its queue of calls. */
export class QgaClient {
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private readonly splitter = new JsonObjectSplitter();
  private timer: NodeJS.Timeout | null = null;
  private closedWith: Error | null = null;
  /** The id the next sync answer must carry; the stream is unsynced until it comes. */
  private syncId: number | null = null;
  private syncWaiters: { resolve(): void; reject(e: Error): void } | null = null;

  constructor(private readonly stream: Socket) {
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("error", (e) => this.fail(new QgaLinkError(`guest agent stream: ${e.message}`)));
    stream.on("close", () => this.fail(new QgaLinkError("guest agent: the stream closed mid-reply")));
  }

  /**
   * Connects through a vsock Unix socket to the agent's port and syncs the stream. Rejects with a
   * QgaLinkError when the socket is not there, the guest refuses the port (nobody listens yet), or
   * the agent does not answer the sync in time.
   */
  static async connect(udsPath: string, port: number, options: QgaCallOptions = {}): Promise<QgaClient> {
    const socket = await vsockConnect(udsPath, port, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const client = new QgaClient(socket);
    try {
      await client.sync(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Calls `command`; resolves with its "return", rejects with QgaError or QgaLinkError. */
  call<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: QgaCallOptions = {},
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closedWith !== null) {
        reject(this.closedWith);
        return;
      }
      this.queue.push({
        command,
        args,
        timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.next();
    });
  }

  close(): void {
    this.fail(new QgaLinkError("guest agent: the client closed"));
  }

  /**
   * Ends the stream and waits (at most `timeoutMs`) until the guest closed its side too, so that the
   * agent is back to listening. A snapshot taken while the agent still holds a connection would have
   * the restored guest's transport reset break it, and qemu-ga exits on a read error.
   */
  end(timeoutMs: number): Promise<void> {
    if (this.closedWith !== null) return Promise.resolve();
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.close();
        done();
      }, timeoutMs);
      this.stream.once("close", () => {
        clearTimeout(timer);
        done();
      });
      this.stream.end();
    });
  }

  /** Sends guest-sync-delimited and waits for the answer with its id, past anything before it. */
  private sync(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const id = randomInt(1, 2 ** 31);
      this.syncId = id;
      this.syncWaiters = { resolve, reject };
      this.splitter.reset();
      this.splitter.awaitDelimiter = true;
      this.arm(timeoutMs, "guest-sync-delimited");
      this.stream.write(`${JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } })}\n`);
    });
  }

  private next(): void {
    if (this.current !== null || this.syncId !== null || this.closedWith !== null) return;
    const call = this.queue.shift();
    if (call === undefined) return;
    this.current = call;
    this.arm(call.timeoutMs, call.command);
    const request: Record<string, unknown> = { execute: call.command };
    if (call.args !== undefined) request.arguments = call.args;
    this.stream.write(`${JSON.stringify(request)}\n`);
  }

  private arm(ms: number, command: string): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // A late answer would be taken for the next call's: the stream cannot be trusted any more.
      this.fail(new QgaLinkError(`guest agent: no answer to ${command} within ${ms} ms`));
    }, ms);
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private onData(chunk: Buffer): void {
    let texts: string[];
    try {
      texts = this.splitter.push(chunk);
    } catch (e) {
      this.garbage((e as Error).message);
      return;
    }
    for (const text of texts) {
      if (this.closedWith !== null) return;
      let reply: unknown;
      try {
        reply = JSON.parse(text);
      } catch {
        this.garbage("guest agent: a reply that is not JSON");
        return;
      }
      this.onReply(reply);
    }
  }

  private onReply(reply: unknown): void {
    const r = reply as { return?: unknown; error?: { class?: unknown; desc?: unknown } } | null;
    if (this.syncId !== null) {
      // Until the sync's own answer, replies are leftovers of an earlier client or call: dropped.
      if (r !== null && typeof r === "object" && r.return === this.syncId) {
        this.syncId = null;
        this.disarm();
        const waiter = this.syncWaiters;
        this.syncWaiters = null;
        waiter?.resolve();
        this.next();
      }
      return;
    }
    const call = this.current;
    if (call === null) return; // an answer nobody asked for (an event): ignored
    if (r === null || typeof r !== "object" || (!("return" in r) && !("error" in r))) {
      if (r !== null && typeof r === "object" && "event" in r) return;
      this.garbage("guest agent: a reply that is neither a return nor an error");
      return;
    }
    this.current = null;
    this.disarm();
    if ("error" in r) {
      const e = r.error ?? {};
      call.reject(new QgaError(String(e.class ?? "GenericError"), String(e.desc ?? "unknown error")));
    } else call.resolve(r.return);
    this.next();
  }

  /** Fails the call on the wire and syncs the stream again for the calls queued behind it. */
  private garbage(message: string): void {
    const call = this.current;
    this.current = null;
    this.disarm();
    call?.reject(new QgaLinkError(message));
    if (this.syncWaiters !== null) {
      this.fail(new QgaLinkError(message));
      return;
    }
    this.sync(DEFAULT_TIMEOUT_MS).then(
      () => {},
      () => {},
    );
  }

  private fail(error: Error): void {
    if (this.closedWith !== null) return;
    this.closedWith = error;
    this.disarm();
    this.current?.reject(error);
    this.current = null;
    for (const call of this.queue.splice(0)) call.reject(error);
    this.syncWaiters?.reject(error);
    this.syncWaiters = null;
    this.stream.destroy();
  }
}

/** A stream to the guest's vsock `port` through the VM's vsock Unix socket. */
export function vsockConnect(udsPath: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(udsPath);
    let line = "";
    const done = (error: Error | null) => {
      clearTimeout(timer);
      socket.removeAllListeners("data");
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      if (error !== null) {
        socket.destroy();
        reject(error);
      } else resolve(socket);
    };
    const timer = setTimeout(
      () => done(new QgaLinkError(`no answer to CONNECT ${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("connect", () => socket.write(`CONNECT ${port}\n`));
    socket.on("error", (e) => done(new QgaLinkError(`vsock socket ${udsPath}: ${e.message}`)));
    socket.on("close", () =>
      done(new QgaLinkError(`the guest refused vsock port ${port} (no agent listening)`)),
    );
    socket.on("data", (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      line += chunk.subarray(0, nl < 0 ? chunk.length : nl).toString("latin1");
      if (nl < 0) {
        if (line.length > 64) done(new QgaLinkError("vsock socket: a CONNECT answer that is too long"));
        return;
      }
      if (!line.startsWith("OK ")) {
        done(new QgaLinkError(`vsock socket: unexpected answer '${line.slice(0, 40)}'`));
        return;
      }
      const rest = chunk.subarray(nl + 1);
      done(null);
      if (rest.length > 0) socket.unshift(rest);
    });
  });
}
