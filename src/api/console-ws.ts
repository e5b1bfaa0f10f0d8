/**
 * GET /vms/{id}/console as a WebSocket: every connection reads (the ring's last 64 KiB first, then
 * new output as binary frames); one writes. The writer role goes to the first connection that sends
 * input and is held until it closes, so two people typing into one guest cannot interleave half
 * lines; anyone else's input closes their connection with WRITER_TAKEN and says who holds it.
 */
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { ManagerError } from "../manager/errors.js";
import type { VmManager } from "../manager/manager.js";

/** Close codes (4000–4999 are the application's): the client shows the reason. */
export const WRITER_TAKEN = 4009;
export const NO_SUCH_VM = 4404;
export const TOO_SLOW = 4008;

/** Output queued for one reader beyond which it is dropped: a stalled client must not grow the daemon. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** Who holds each VM's input, by VM id; shared by every listener (Unix socket and TCP) of one daemon. */
export class ConsoleWriters {
  private readonly holders = new Map<string, { socket: WebSocket; peer: string }>();

  /** True when `socket` may write to VM `id` (it holds the role now, or takes it). */
  claim(id: string, socket: WebSocket, peer: string): boolean {
    const held = this.holders.get(id);
    if (held === undefined) {
      this.holders.set(id, { socket, peer });
      return true;
    }
    return held.socket === socket;
  }

  holder(id: string): string | undefined {
    return this.holders.get(id)?.peer;
  }

  release(id: string, socket: WebSocket): void {
    if (this.holders.get(id)?.socket === socket) this.holders.delete(id);
  }
}

export function consoleSocket(
  manager: VmManager,
  writers: ConsoleWriters,
  socket: WebSocket,
  request: FastifyRequest,
): void {
  const idOrName = (request.params as { id: string }).id;
  let id: string;
  try {
    id = manager.get(idOrName).id;
  } catch (e) {
    if (!(e instanceof ManagerError)) throw e;
    socket.close(NO_SUCH_VM, e.message.slice(0, 120));
    return;
  }
  // The server's idle timeout is for HTTP requests; an attached console may be quiet for hours.
  request.raw.socket.setTimeout(0);
  const peer = `${request.ip || "unix socket"} #${request.id}`;
  const ring = manager.console(id);
  socket.send(ring.contents());
  const stop = ring.follow((chunk) => {
    if (socket.bufferedAmount > MAX_QUEUED_BYTES) {
      socket.close(TOO_SLOW, "this client reads the console more slowly than the guest writes it");
      return;
    }
    socket.send(chunk);
  });
  socket.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    if (!writers.claim(id, socket, peer)) {
      socket.close(WRITER_TAKEN, `another client (${writers.holder(id)}) holds this console's input`);
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    try {
      manager.input(id, bytes);
    } catch (e) {
      // Typing into a stopped VM, or one deleted meanwhile: nothing reads it, and the reader stays.
      if (!(e instanceof ManagerError)) throw e;
    }
  });
  socket.on("close", () => {
    stop();
    writers.release(id, socket);
  });
}
