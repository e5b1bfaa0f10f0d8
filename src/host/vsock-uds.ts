/**
 * virtio-vsock to Unix domain sockets, the way Firecracker does it:
 *
 * - Host-initiated: a client connects to the socket at PATH and writes `CONNECT <port>\n`; Vireo opens a
 *   stream to the guest's port and answers `OK <hostport>\n` once the guest accepted (the host port is
 *   the one the guest sees as its peer), then bytes flow both ways. A refused or failed connection
 *   closes the client's socket without an answer.
 * - Guest-initiated: a guest connection to host port P is forwarded to the Unix socket `PATH_P` if
 *   something listens there; otherwise the guest gets RST (connection refused).
 *
 * Half-closes map both ways: the client ending its side makes the guest read end of stream and a guest
 * `shutdown(SHUT_WR)` ends the client's; a socket error resets the stream and a reset closes the socket.
 * Guest bytes are written to the socket straight from the device's connection buffer and given back
 * to the guest as credit once the socket took them, so each connection holds at most the device's
 * buffer size on the host in each direction.
 */
import { lstatSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import type {
  VsockBackend,
  VsockHost,
  VsockStream,
  VsockStreamHandler,
} from "../devices/virtio/vsock/backend.js";

/**
 * The longest Unix socket path in bytes: sun_path holds 108 with the NUL. A longer path would be bound
 * truncated (a socket file with another name, left behind), so it is refused instead.
 */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Why `path` cannot name a Unix socket, or null when it can. */
export function socketPathProblem(path: string): string | null {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    return `a Unix socket path is at most ${MAX_SOCKET_PATH_BYTES} bytes, this one has ${bytes}`;
  }
  return null;
}

/** The longest CONNECT line accepted (the rest is refused). */
const MAX_LINE = 64;
const CONNECT_LINE = /^CONNECT ([0-9]{1,10})\r?$/;

/** One stream between a Unix socket and a vsock connection. */
class Pipe implements VsockStreamHandler {
  stream: VsockStream | null = null;
  /** Host bytes the stream did not take yet (the socket is paused meanwhile). */
  private pending: Uint8Array | null;
  private socketEnded = false;
  private socketClosed = false;
  private started = false;
  private done = false;
  /** pump() is running: a writable() it causes (see pump) only asks it to go round again. */
  private pumping = false;
  private pumpAgain = false;

  constructor(
    private readonly socket: Socket,
    pending: Uint8Array | null,
    private readonly onConnected: (() => void) | null = null,
  ) {
    this.pending = pending !== null && pending.length > 0 ? pending : null;
    // A client may write its request and end its side before the guest even answered.
    socket.on("end", () => {
      this.socketEnded = true;
      if (this.started && this.pending === null) this.stream?.end();
    });
    socket.on("close", (hadError: boolean) => {
      this.socketClosed = true;
      if (this.done) return;
      if (hadError || !this.started) {
        // Gone with an error, or before the stream was up: abort.
        this.done = true;
        this.stream?.reset();
      } else if (this.pending === null) {
        this.done = true;
        this.stream?.close();
      }
    });
  }

  /** Starts moving bytes (the stream is up). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const s = this.socket;
    s.on("data", (chunk: Buffer) => this.fromHost(chunk));
    this.pump();
  }

  connected(): void {
    this.onConnected?.();
    this.start();
  }

  data(bytes: Uint8Array): void {
    const s = this.socket;
    const n = bytes.length;
    if (s.destroyed || !s.writable) {
      this.stream?.consumed(n);
      return;
    }
    s.write(bytes, () => this.stream?.consumed(n));
  }

  writable(): void {
    this.pump();
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  closed(): void {
    this.done = true;
    this.pending = null;
    const s = this.socket;
    if (s.destroyed) return;
    if (s.writableFinished) s.destroy();
    else {
      s.once("finish", () => s.destroy());
      s.end();
    }
  }

  private fromHost(chunk: Uint8Array): void {
    if (this.done) return;
    if (this.pending === null) this.pending = chunk;
    else {
      const both = new Uint8Array(this.pending.length + chunk.length);
      both.set(this.pending);
      both.set(chunk, this.pending.length);
      this.pending = both;
    }
    this.pump();
  }

  /**
   * Hands pending host bytes to the stream; pauses the socket while it has no room. The device may call
   * writable() from inside stream.write (a partial write schedules delivery, which frees room at once):
   * that must not hand over the same pending bytes a second time, so it only makes this loop run again.
   */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    const stream = this.stream;
    if (this.done || stream === null) return;
    const p = this.pending;
    if (p !== null) {
      const n = stream.write(p);
      if (n < p.length) {
        this.pending = p.subarray(n);
        this.socket.pause();
        return;
      }
      this.pending = null;
    }
    if (this.socketClosed) {
      this.done = true;
      stream.close();
    } else if (this.socketEnded) stream.end();
    else this.socket.resume();
  }
}

/** Removes a socket file nobody listens on any more; throws when PATH is in use or not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new Error(`${path}: another process listens there`);
  unlinkSync(path);
}

export class UdsVsockBackend implements VsockBackend {
  private host: VsockHost | null = null;
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    /** The socket host clients connect to; guest connections to port P go to `${path}_${P}`. */
    readonly path: string,
    private readonly server: Server,
  ) {
    server.on("connection", (socket) => this.client(socket));
  }

  /** Listens on `path` (a stale socket file left by an earlier run is replaced). */
  static async listen(path: string): Promise<UdsVsockBackend> {
    const problem = socketPathProblem(path);
    if (problem !== null) throw Object.assign(new Error(problem), { code: "ENAMETOOLONG" });
    await removeStaleSocket(path);
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new UdsVsockBackend(path, server);
  }

  attach(host: VsockHost): void {
    this.host = host;
  }

  /** Bytes of a guest connection to host port P go to the socket `${path}_${P}`, if it accepts. */
  incoming(stream: VsockStream): void {
    if (this.closed) {
      stream.reject();
      return;
    }
    const socket = connect({ path: `${this.path}_${stream.hostPort}`, allowHalfOpen: true });
    this.track(socket);
    let up = false;
    socket.once("connect", () => {
      up = true;
      const pipe = new Pipe(socket, null);
      if (!stream.accept(pipe)) {
        socket.destroy();
        return;
      }
      pipe.stream = stream;
      pipe.start();
    });
    socket.once("error", () => {
      if (!up) stream.reject();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await stopped;
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => this.sockets.delete(socket));
  }

  /** A host client: reads its CONNECT line, then connects to the guest. */
  private client(socket: Socket): void {
    this.track(socket);
    let line = new Uint8Array(0);
    const onData = (chunk: Buffer) => {
      const joined = new Uint8Array(line.length + chunk.length);
      joined.set(line);
      joined.set(chunk, line.length);
      line = joined;
      const nl = line.indexOf(10);
      if (nl < 0) {
        if (line.length > MAX_LINE) socket.destroy();
        return;
      }
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      const match = CONNECT_LINE.exec(Buffer.from(line.subarray(0, nl)).toString("latin1"));
      const port = match === null ? -1 : Number(match[1]);
      if (nl > MAX_LINE || port < 0 || port >= 0xffff_ffff || this.host === null || this.closed) {
        socket.destroy();
        return;
      }
      let stream: VsockStream | null = null;
      const pipe = new Pipe(socket, line.subarray(nl + 1), () => {
        if (stream !== null) socket.write(`OK ${stream.hostPort}\n`);
      });
      stream = this.host.connect(port, pipe);
      if (stream === null) {
        socket.destroy();
        return;
      }
      pipe.stream = stream;
    };
    const onEnd = () => socket.destroy();
    socket.on("data", onData);
    socket.on("end", onEnd);
  }
}
