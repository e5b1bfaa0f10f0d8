/**
 * Migration streams over node:net: a MigrationChannel on a connected socket (a Unix socket, or TCP on
 * loopback as host:port), and the source's connect.
 */
import { rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import {
  decodeStart,
  type Frame,
  FrameQueue,
  FrameType,
  type StartHeader,
  textFrame,
} from "../snapshot/migration-wire.js";
import { UserError } from "../util/errors.js";
import type { MigrationChannel } from "../vm/vm.js";

/** A peer that neither sends nor takes anything this long is taken for dead (it may be stopped, not gone). */
const IDLE_TIMEOUT_MS = 60_000;

/** A channel on a connected `socket`. */
export function socketChannel(socket: Socket): MigrationChannel {
  const queue = new FrameQueue();
  let failed: Error | null = null;
  socket.setTimeout(IDLE_TIMEOUT_MS, () =>
    socket.destroy(new Error(`no traffic with the peer for ${IDLE_TIMEOUT_MS / 1000} s`)),
  );
  socket.on("data", (chunk: Buffer) =>
    queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
  );
  socket.on("end", () => queue.end());
  socket.on("close", () => queue.end());
  socket.on("error", (e) => {
    failed = e;
    queue.fail(new UserError(`migration: ${e.message}`));
  });
  return {
    send(frame: Uint8Array): Promise<void> {
      if (failed !== null) return Promise.reject(new UserError(`migration: ${failed.message}`));
      if (socket.destroyed || !socket.writable) {
        return Promise.reject(new UserError("migration: the connection is closed"));
      }
      // Past the socket's high-water mark, wait for it to drain (or to break): this paces the passes
      // and lets the guest run meanwhile.
      if (socket.write(frame)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const closed = () => {
          socket.off("drain", drained);
          reject(new UserError(`migration: ${failed?.message ?? "the connection closed"}`));
        };
        const drained = () => {
          socket.off("close", closed);
          resolve();
        };
        socket.once("drain", drained);
        socket.once("close", closed);
      });
    },
    next(): Promise<Frame | null> {
      return queue.next();
    },
    poll(): Frame | null {
      return queue.poll();
    },
    close(): void {
      socket.end();
    },
  };
}

/**
 * The target's first step on an accepted connection: reads and checks START. A bad one is answered with
 * REFUSE and the connection closed (the UserError says why); a good one is not answered yet (ACCEPT).
 */
export async function readStart(channel: MigrationChannel): Promise<StartHeader> {
  try {
    const first = await channel.next();
    if (first === null) throw new UserError("migration: the source closed the connection before START");
    return decodeStart(first);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    await channel.send(textFrame(FrameType.REFUSE, reason)).catch(() => {});
    channel.close();
    throw e instanceof UserError ? e : new UserError(reason);
  }
}

/** Where a migration goes: a Unix socket path, or host:port (TCP). */
export function parseMigrationAddress(to: string): { path: string } | { host: string; port: number } {
  const tcp = /^([^/:]+):(\d+)$/.exec(to);
  if (tcp !== null) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new UserError(`migration target ${to}: port out of range`);
    return { host: tcp[1] as string, port };
  }
  if (to.length === 0) throw new UserError("migration target: empty address");
  return { path: to };
}

/** Connects to a migration target; a refused or missing socket is a UserError. */
export function connectMigration(to: string): Promise<MigrationChannel> {
  const address = parseMigrationAddress(to);
  return new Promise((resolve, reject) => {
    const socket = connect(address);
    const fail = (e: Error) => reject(new UserError(`cannot reach the migration target ${to}: ${e.message}`));
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.off("error", fail);
      socket.setNoDelay(true);
      resolve(socketChannel(socket));
    });
  });
}

const LOOPBACK = ["127.0.0.1", "localhost", "[::1]", "::1"];

/**
 * Opens a listener for one incoming migration at `listen` (a Unix socket path, or host:port) and hands
 * the first connection to `accept` (the listener closes then). Resolves once it listens; a UserError
 * when it cannot. `close()` gives up waiting.
 */
export function listenForMigration(
  listen: string,
  accept: (channel: MigrationChannel) => void,
): Promise<{ close(): void }> {
  const address = parseMigrationAddress(listen);
  // The stream carries the guest's whole memory and has no authentication: loopback only.
  if ("host" in address && !LOOPBACK.includes(address.host)) {
    return Promise.reject(
      new UserError(
        `cannot listen on ${listen}: migrations over TCP are for loopback only (${LOOPBACK.join(", ")})`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const server = createServer();
    const close = () => {
      server.close();
      if ("path" in address) rmSync(address.path, { force: true });
    };
    server.once("error", (e) => reject(new UserError(`cannot listen on ${listen}: ${e.message}`)));
    server.once("connection", (socket) => {
      close();
      socket.setNoDelay(true);
      accept(socketChannel(socket));
    });
    const ready = () => resolve({ close });
    if ("path" in address) server.listen(address.path, ready);
    else server.listen(address.port, address.host, ready);
  });
}
