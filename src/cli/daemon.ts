/**
 * `vireo daemon`: one process that owns many VMs and serves the API on a Unix socket (mode 0600: the
 * socket is the only access control) until SIGTERM or SIGINT, when it stops every VM (a grace period,
 * then kill; their drives are closed as they end), removes the socket and exits 0.
 */

import { chmodSync, mkdirSync, rmSync, type Stats, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, resolve } from "node:path";
import { Command } from "commander";
import { buildApp } from "../api/app.js";
import { openApiDocument } from "../api/openapi.js";
import { VmManager } from "../manager/manager.js";
import { UserError } from "../util/errors.js";
import { defaultSocket, defaultStateDir } from "./daemon-paths.js";
import { addFlags, type FlagSpec, type ParsedArgs, parseCount, parsedArgs } from "./flags.js";
import { nodeVmHost } from "./vm-host.js";
import { vmWorkerEntry } from "./vm-worker.js";

const FLAGS: FlagSpec = {
  socket: { kind: "value", arg: "PATH", help: "the API socket (default $XDG_RUNTIME_DIR/vireo/vireo.sock)" },
  "state-dir": {
    kind: "value",
    arg: "DIR",
    help: "where VM definitions persist (default $XDG_STATE_HOME/vireo)",
  },
  "stop-grace-ms": {
    kind: "value",
    arg: "MS",
    help: "on SIGTERM, how long a VM may take to power off before it is killed (default 5000)",
  },
  openapi: { kind: "switch", help: "print the API's OpenAPI document and exit" },
};
const MAX_SOCKET_PATH_BYTES = 107;

function log(message: string): void {
  process.stderr.write(`vireo daemon: ${message}\n`);
}

/** Whether a process answers on the socket (a stale socket file from a crash does not). */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((done) => {
    const c = connect(path);
    c.once("connect", () => {
      c.destroy();
      done(true);
    });
    c.once("error", () => done(false));
  });
}

export function daemonCommand(done: (status: number) => void): Command {
  const cmd = new Command("daemon").description("own many VMs and serve the REST API until SIGTERM");
  addFlags(cmd, FLAGS);
  return cmd.action(async () => done(await serve(parsedArgs(cmd, FLAGS))));
}

async function serve(args: ParsedArgs): Promise<number> {
  if (args.switches.has("openapi")) {
    process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
    return 0;
  }
  const stateDir = resolve(args.values.get("state-dir") ?? defaultStateDir());
  const socket = resolve(args.values.get("socket") ?? defaultSocket());
  const grace = args.values.get("stop-grace-ms");
  const graceMs = grace === undefined ? 5000 : parseCount(grace, "stop-grace-ms", 0, 600_000);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    throw new UserError(`--socket ${socket}: a Unix socket path is at most ${MAX_SOCKET_PATH_BYTES} bytes`);
  }
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new UserError(`cannot create the state or socket directory: ${(e as Error).message}`);
  }
  let stats: Stats | undefined;
  try {
    stats = statSync(socket);
  } catch {}
  if (stats !== undefined) {
    if (!stats.isSocket()) throw new UserError(`--socket ${socket}: exists and is not a socket`);
    if (await socketInUse(socket)) throw new UserError(`a daemon already listens on ${socket}`);
    // Left behind by a daemon that did not get to remove it.
    rmSync(socket, { force: true });
  }

  // riscv64 VMs run in worker threads of their own, and what they throw ends only them. x86_64 VMs
  // (and riscv64 ones on a switch) still run here: a callback of theirs that throws outside the run
  // loop (a TAP or switch frame, a vsock socket, a console resume) would end the daemon and every VM.
  process.on("uncaughtException", (e) => log(`uncaught exception (the daemon goes on): ${e.stack ?? e}`));

  const testHooks = process.env.VIREO_TEST_HOOKS === "1";
  const manager = await VmManager.open({
    stateDir,
    log,
    testHooks,
    host: (console) => nodeVmHost({ console, warn: (m) => log(`warning: ${m}`) }),
    vmWorker: vmWorkerEntry,
  });
  const app = buildApp({ manager, log });
  try {
    await app.listen({ path: socket });
  } catch (e) {
    throw new UserError(`cannot listen on ${socket}: ${(e as Error).message}`);
  }
  chmodSync(socket, 0o600);
  log(`listening on ${socket} (state in ${stateDir})`);

  await new Promise<void>((done) => {
    const onSignal = (signal: string) => {
      log(`${signal}: stopping every VM`);
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      done();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await manager.shutdown(graceMs);
  await app.close();
  rmSync(socket, { force: true });
  log("stopped");
  return 0;
}
