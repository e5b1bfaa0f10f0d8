/**
 * `vireo web`: serves the static site of `npm run build:web` (Vireo in a browser tab: the machine runs
 * in the page's Web Worker, not here) and the default riscv64 guest's kernel, initramfs and root disk
 * from the image cache under images/riscv64/, until SIGINT or SIGTERM. Only GET and HEAD of the site's
 * files and those three images; nothing else on this host is reachable through it.
 */
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { UserError } from "../util/errors.js";
import { parseListen } from "./daemon.js";
import { addFlags, type FlagSpec, type ParsedArgs, parsedArgs } from "./flags.js";

const DEFAULT_LISTEN = "127.0.0.1:8480";

const FLAGS: FlagSpec = {
  listen: {
    kind: "value",
    arg: "HOST:PORT",
    help: `where to serve the page (default ${DEFAULT_LISTEN}; port 0: any free one)`,
  },
  "listen-any": { kind: "switch", help: "let --listen take an address that is not loopback" },
};

/** dist/web-site, next to dist/src/cli/ where this file runs from. */
export const SITE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web-site");
/** The image files the page asks for, served from the riscv64 image cache. */
const IMAGE_FILES = ["Image", "initramfs.cpio.gz", "rootfs.ext4"];

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

export function webCommand(done: (status: number) => void): Command {
  const cmd = new Command("web").description(
    "serve Vireo in a browser tab: a static page whose Web Worker boots the default guest",
  );
  addFlags(cmd, FLAGS);
  return cmd.action(async () => done(await serveWeb(parsedArgs(cmd, FLAGS))));
}

async function serveWeb(args: ParsedArgs): Promise<number> {
  const listenFlag = args.values.get("listen");
  if (listenFlag === undefined && args.switches.has("listen-any")) {
    throw new UserError("--listen-any only qualifies --listen HOST:PORT");
  }
  const { host, port } = parseListen(listenFlag ?? DEFAULT_LISTEN, args.switches.has("listen-any"));
  if (!existsSync(join(SITE_DIR, "index.html"))) {
    throw new UserError(`the browser site is not built (no ${SITE_DIR}): run 'npm run build:web' first`);
  }
  const { ensureRiscv64Image } = await import("../images/riscv64.js");
  const imageDir = dirname((await ensureRiscv64Image({ quiet: false })).kernel);
  const routes = new Map<string, string>();
  for (const name of readdirSync(SITE_DIR)) routes.set(`/${name}`, join(SITE_DIR, name));
  routes.set("/", join(SITE_DIR, "index.html"));
  for (const name of IMAGE_FILES) routes.set(`/images/riscv64/${name}`, join(imageDir, name));

  const server = createServer((req, res) => respond(routes, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new UserError(`--listen ${host}:${port}: ${e.code ?? e.message}`)),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  const shown = host.includes(":") ? `[${host}]` : host;
  process.stdout.write(`vireo web: serving http://${shown}:${bound}/ (guest images from ${imageDir})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}

function respond(routes: Map<string, string>, req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const file = routes.get(path);
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  let size: number;
  try {
    if (file === undefined) throw new Error("not served");
    size = statSync(file).size;
  } catch {
    res.writeHead(404, { "Content-Type": "text/plain" }).end(`${path}: not found\n`);
    return;
  }
  res.writeHead(200, {
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Content-Length": size,
    // The page is rebuilt and the images refetched now and then: always revalidate.
    "Cache-Control": "no-cache",
    // Cross-origin isolation, so the page may use SharedArrayBuffer should it come to need it.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const stream = createReadStream(file as string);
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}
