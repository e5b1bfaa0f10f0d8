/**
 * GET /events: the manager's events (VM created, deleted, changed state, a memory governor decision:
 * see VmEvent; a warm pool's changes: PoolEvent) as server-sent events, one
 * JSON object per `data:` line, from the moment the client connects. A comment line every 15 s keeps
 * proxies from dropping a quiet stream and finds clients that went away.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { VmManager } from "../manager/manager.js";

const KEEPALIVE_MS = 15_000;

/** Ends every open stream: Fastify's close waits for open connections, and these never end alone. */
export class EventStreams {
  private readonly open = new Set<() => void>();

  serve(manager: VmManager, request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    // Absent where the request has no real socket (Fastify's inject).
    request.raw.socket?.setTimeout?.(0);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    res.write(": vireo events\n\n");
    const send = (event: { type: string }) =>
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    const unsubscribeVms = manager.onEvent(send);
    const unsubscribePools = manager.pools.onEvent(send);
    const unsubscribe = () => {
      unsubscribeVms();
      unsubscribePools();
    };
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
    keepalive.unref();
    const end = () => {
      unsubscribe();
      clearInterval(keepalive);
      this.open.delete(end);
      res.end();
    };
    this.open.add(end);
    request.raw.on("close", end);
    res.on("error", end);
  }

  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}
