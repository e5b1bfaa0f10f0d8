/** Shared parts of the console/events/metrics/TCP tests: guests, a daemon with extra flags, clients. */
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { WebSocket } from "ws";
import { buildBareMetal } from "../support/bare-metal.js";
import { cli, sleep } from "./support.js";

/** Builds test/guest-daemon/NAME.S into `dir`; returns the ELF's path. */
export function guest(dir: string, name: string): string {
  const elf = join(dir, `${name}.elf`);
  return buildBareMetal(`test/guest-daemon/${name}.S`, elf);
}

export interface FlagDaemon {
  child: ChildProcess;
  socket: string;
  stateDir: string;
  log(): string;
  exited: Promise<number | null>;
}

/** `vireo daemon` with `extra` flags; resolves once it listens on its Unix socket. */
export function startDaemonWith(
  dir: string,
  extra: string[],
  stateDir = join(dir, "state"),
): Promise<FlagDaemon> {
  const socket = join(dir, "vireo.sock");
  const child = spawn(
    process.execPath,
    [cli, "daemon", "--socket", socket, "--state-dir", stateDir, "--stop-grace-ms", "0", ...extra],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  return new Promise((ready, fail) => {
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes(`listening on ${socket}`))
        ready({ child, socket, stateDir, log: () => stderr, exited });
    });
    exited.then((code) => fail(new Error(`daemon exited with ${code} before listening:\n${stderr}`)));
  });
}

export async function stopDaemon(d: FlagDaemon): Promise<void> {
  if (d.child.exitCode === null) {
    d.child.kill("SIGKILL");
    await d.exited;
  }
}

/** A console WebSocket that keeps everything it received and how it closed. */
export interface ConsoleClient {
  ws: WebSocket;
  text(): string;
  /** Resolves once the received text satisfies `ok` (the test's timeout bounds the wait). */
  waitFor(ok: (text: string) => boolean): Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
}

export function openConsole(socket: string, vm: string): Promise<ConsoleClient> {
  const ws = new WebSocket(`ws+unix://${socket}:/vms/${vm}/console`);
  let received = "";
  ws.on("message", (d: Buffer) => {
    received += d.toString("latin1");
  });
  const closed = new Promise<{ code: number; reason: string }>((done) =>
    ws.on("close", (code, reason) => done({ code, reason: reason.toString() })),
  );
  const client: ConsoleClient = {
    ws,
    text: () => received,
    async waitFor(ok) {
      while (!ok(received)) await sleep(20);
      return received;
    },
    closed,
  };
  return new Promise((ready, fail) => {
    ws.once("open", () => ready(client));
    ws.once("error", fail);
  });
}

/** GET /events over the socket: the parsed `data:` objects as they come, and a way to hang up. */
export function openEvents(socket: string): Promise<{ events: unknown[]; close(): void }> {
  return new Promise((ready, fail) => {
    const events: unknown[] = [];
    const req = request({ socketPath: socket, method: "GET", path: "/events" }, (res) => {
      let buffered = "";
      res.on("data", (d: Buffer) => {
        buffered += d.toString("utf8");
        let end = buffered.indexOf("\n\n");
        while (end >= 0) {
          for (const line of buffered.slice(0, end).split("\n")) {
            if (line.startsWith("data: ")) events.push(JSON.parse(line.slice(6)));
          }
          buffered = buffered.slice(end + 2);
          end = buffered.indexOf("\n\n");
        }
      });
      res.on("error", () => {});
      ready({ events, close: () => req.destroy() });
    });
    req.on("error", fail);
    req.end();
  });
}

/** One request on TCP; `token` undefined sends no Authorization header. */
export function tcpGet(
  port: number,
  path: string,
  token?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((done, fail) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "GET",
        path,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString("utf8");
        });
        res.on("end", () => done({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", fail);
    req.end();
  });
}
