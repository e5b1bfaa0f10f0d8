/**
 * `vireo daemon`'s body (the command and its flags are in daemon.ts): the VmManager, the API on the
 * Unix socket and, with --listen/--web, on TCP, until SIGTERM or SIGINT.
 */

import { chmodSync, existsSync, mkdirSync, rmSync, type Stats, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { apiShared, buildApp } from "../api/app.js";
import { loadOrCreateToken } from "../api/auth.js";
import { openApiDocument } from "../api/openapi.js";
import { loadWebAssets, type WebDefaults } from "../api/web.js";
import { VmManager } from "../manager/manager.js";
import { DEFAULT_WARM_WORKERS } from "../manager/worker-pool.js";
import { UserError } from "../util/errors.js";
import { DEFAULT_CMDLINE_RISCV } from "../vm/riscv.js";
import { parseListen, parseWatermark } from "./daemon.js";
import { defaultSocket, defaultStateDir } from "./daemon-paths.js";
import { type ParsedArgs, parseCount } from "./flags.js";
import { nodeVmHost } from "./vm-host.js";
import { vmWorkerEntry } from "./vm-worker.js";

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

export async function serve(args: ParsedArgs): Promise<number> {
  if (args.switches.has("openapi")) {
    process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
    return 0;
  }
  const listenFlag = args.values.get("listen");
  const webFlag = args.values.get("web");
  if (listenFlag === undefined && webFlag === undefined && args.switches.has("listen-any")) {
    throw new UserError("--listen-any only qualifies --listen HOST:PORT or --web HOST:PORT");
  }
  const listen = listenFlag === undefined ? null : parseListen(listenFlag, args.switches.has("listen-any"));
  const webListen =
    webFlag === undefined ? null : parseListen(webFlag, args.switches.has("listen-any"), "web");
  const webAssets = webListen === null ? null : webConsoleAssets();
  const stateDir = resolve(args.values.get("state-dir") ?? defaultStateDir());
  const socket = resolve(args.values.get("socket") ?? defaultSocket());
  const grace = args.values.get("stop-grace-ms");
  const graceMs = grace === undefined ? 5000 : parseCount(grace, "stop-grace-ms", 0, 600_000);
  const warm = args.values.get("warm-workers");
  const warmWorkers = warm === undefined ? DEFAULT_WARM_WORKERS : parseCount(warm, "warm-workers", 0, 64);
  const sharedFlag = args.values.get("shared-cpus");
  const sharedCpus = sharedFlag === undefined ? undefined : parseCount(sharedFlag, "shared-cpus", 1, 1024);
  const overcommitFlag = args.values.get("overcommit");
  const overcommit = overcommitFlag === undefined ? undefined : Number(overcommitFlag);
  if (overcommit !== undefined && !(Number.isFinite(overcommit) && overcommit >= 1 && overcommit <= 100)) {
    throw new UserError(`--overcommit ${overcommitFlag}: expected a ratio from 1 to 100`);
  }
  const low = parseWatermark(args.values.get("memory-low"), "memory-low");
  const high = parseWatermark(args.values.get("memory-high"), "memory-high");
  const intervalFlag = args.values.get("memory-interval-ms");
  const intervalMs =
    intervalFlag === undefined ? undefined : parseCount(intervalFlag, "memory-interval-ms", 10, 3_600_000);
  if (low !== undefined && high !== undefined && low <= 1 === high <= 1 && low > high) {
    throw new UserError(`--memory-low ${args.values.get("memory-low")}: above --memory-high`);
  }
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
  // still run here: a callback of theirs that throws outside the run loop (a TAP frame, a vsock socket,
  // a console resume) would end the daemon and every VM.
  process.on("uncaughtException", (e) => log(`uncaught exception (the daemon goes on): ${e.stack ?? e}`));

  const testHooks = process.env.VIREO_TEST_HOOKS === "1";
  const manager = await VmManager.open({
    stateDir,
    log,
    testHooks,
    host: (console) => nodeVmHost({ console, warn: (m) => log(`warning: ${m}`) }),
    vmWorker: vmWorkerEntry,
    warmWorkers,
    suspendOnExit: args.switches.has("suspend-on-exit"),
    ...(sharedCpus === undefined ? {} : { sharedCpus }),
    ...(overcommit === undefined ? {} : { overcommit }),
    memoryGovernor: {
      ...(low === undefined ? {} : { low }),
      ...(high === undefined ? {} : { high }),
      ...(intervalMs === undefined ? {} : { intervalMs }),
    },
  });
  const shared = apiShared(manager);
  const app = buildApp({ manager, log, shared });
  let tcpApp: ReturnType<typeof buildApp> | null = null;
  let webApp: ReturnType<typeof buildApp> | null = null;
  let token: ReturnType<typeof loadOrCreateToken> | null = null;
  if (listen !== null || webListen !== null) {
    try {
      token = loadOrCreateToken(stateDir);
    } catch (e) {
      await manager.shutdown(0);
      throw new UserError(`cannot read or write the API token: ${(e as Error).message}`);
    }
    if (token.created) log(`API token (shown once; kept in ${token.file}): ${token.token}`);
  }
  if (listen !== null && token !== null) {
    tcpApp = buildApp({ manager, log, shared, token: token.token });
    const where = await listenTcp(tcpApp, listen, String(listenFlag), manager);
    log(`listening on tcp ${where} (Authorization: Bearer <the token in ${token.file}>)`);
  }
  if (webListen !== null && webAssets !== null && token !== null) {
    const web = { assets: webAssets, defaults: cachedDefaultImage, uploads: resolve(stateDir, "uploads") };
    webApp = buildApp({ manager, log, shared, token: token.token, web });
    let where: string;
    try {
      where = await listenTcp(webApp, webListen, String(webFlag), manager);
    } catch (e) {
      await tcpApp?.close();
      throw e;
    }
    log(`web console on http://${where}/ (log in with the token in ${token.file})`);
  }
  try {
    await app.listen({ path: socket });
  } catch (e) {
    await tcpApp?.close();
    await webApp?.close();
    await manager.shutdown(0);
    throw new UserError(`cannot listen on ${socket}: ${(e as Error).message}`);
  }
  chmodSync(socket, 0o600);
  log(`listening on ${socket} (state in ${stateDir})`);

  await new Promise<void>((done) => {
    const onSignal = (signal: string) => {
      log(
        `${signal}: ${args.switches.has("suspend-on-exit") ? "suspending riscv64 VMs, stopping the rest" : "stopping every VM"}`,
      );
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      done();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await manager.shutdown(graceMs);
  await Promise.all([app.close(), tcpApp?.close(), webApp?.close()]);
  rmSync(socket, { force: true });
  log("stopped");
  return 0;
}

/** Listens on TCP; answers the address as "host:port" (an IPv6 host in brackets). */
async function listenTcp(
  app: ReturnType<typeof buildApp>,
  at: { host: string; port: number },
  flag: string,
  manager: VmManager,
): Promise<string> {
  try {
    await app.listen({ host: at.host, port: at.port });
  } catch (e) {
    await manager.shutdown(0);
    throw new UserError(`cannot listen on ${flag}: ${(e as Error).message}`);
  }
  const address = app.server.address();
  return typeof address === "object" && address !== null
    ? `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
    : flag;
}

/** The web console's bundle, which `npm run build` puts beside the compiled code (dist/web/console). */
function webConsoleAssets(): string {
  const dir = fileURLToPath(new URL("../../web/console/", import.meta.url));
  try {
    loadWebAssets(dir);
  } catch (e) {
    throw new UserError(`--web: the web console is not built (${(e as Error).message}); run npm run build`);
  }
  return dir;
}

/** The default riscv64 guest where it is in the cache (the form never starts a download). */
async function cachedDefaultImage(): Promise<WebDefaults | null> {
  const { imageDir } = await import("../images/cache.js");
  const { INITRD_FILE, KERNEL_FILE } = await import("../images/riscv64.js");
  const dir = imageDir("riscv64");
  const kernel = join(dir, KERNEL_FILE);
  const initrd = join(dir, INITRD_FILE);
  if (!existsSync(kernel) || !existsSync(initrd)) return null;
  return { kernel, initrd, cmdline: DEFAULT_CMDLINE_RISCV };
}
