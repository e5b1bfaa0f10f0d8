/**
 * `vireo daemon`: one process that owns many VMs and serves the API on a Unix socket (mode 0600: the
 * socket is the only access control) until SIGTERM or SIGINT, when it stops every VM (a grace period,
 * then kill; their drives are closed as they end), removes the socket and exits 0. With --listen it
 * also serves the API on TCP, where a bearer token (made once, kept 0600 in the state directory) is
 * the access control; only on loopback unless --listen-any says otherwise. With --web it serves the
 * web console on TCP too (src/web/console, bundled into dist/web/console), behind the same token,
 * which its login page turns into a cookie.
 */

import { isIP } from "node:net";
import { Command } from "commander";
import {
  DEFAULT_MEMORY_HIGH,
  DEFAULT_MEMORY_INTERVAL_MS,
  DEFAULT_MEMORY_LOW,
  DEFAULT_WARM_WORKERS,
} from "../manager/defaults.js";
import { UserError } from "../util/errors.js";
import { parseSize } from "../util/size.js";
import { addFlags, type FlagSpec, parsedArgs } from "./flags.js";

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
  "suspend-on-exit": {
    kind: "switch",
    help: "on SIGTERM, save running riscv64 VMs as snapshots in the state directory instead of stopping them; the next daemon continues them",
  },
  "warm-workers": {
    kind: "value",
    arg: "N",
    help: `riscv64 VM worker threads kept started ahead of need, so that a VM starts without waiting for one (default ${DEFAULT_WARM_WORKERS}; 0 disables)`,
  },
  "shared-cpus": {
    kind: "value",
    arg: "N",
    help: "host CPUs the shared pool of riscv64 VMs may use at once (default: every CPU not dedicated to a VM)",
  },
  overcommit: {
    kind: "value",
    arg: "RATIO",
    help: "overcommitted VMs' memory may add up to RATIO × the host memory not reserved (default 1.5)",
  },
  "memory-low": {
    kind: "value",
    arg: "SIZE|FRACTION",
    help: `below this much available host memory the governor inflates overcommitted VMs' balloons (a size, or a fraction of host memory such as 0.1 or 10%; default ${DEFAULT_MEMORY_LOW})`,
  },
  "memory-high": {
    kind: "value",
    arg: "SIZE|FRACTION",
    help: `...until this much is available again; above it, it gives memory back (default ${DEFAULT_MEMORY_HIGH})`,
  },
  "memory-interval-ms": {
    kind: "value",
    arg: "MS",
    help: `how often the memory governor looks (default ${DEFAULT_MEMORY_INTERVAL_MS})`,
  },
  openapi: { kind: "switch", help: "print the API's OpenAPI document and exit" },
  listen: {
    kind: "value",
    arg: "HOST:PORT",
    help: "also serve the API on TCP; each request needs the bearer token made at first start (printed once, kept 0600 in the state directory as api-token); loopback only unless --listen-any",
  },
  "listen-any": { kind: "switch", help: "let --listen (and --web) take an address that is not loopback" },
  web: {
    kind: "value",
    arg: "HOST:PORT",
    help: "also serve the web console (and the API, to it) on TCP; it logs in with the same token as --listen; loopback only unless --listen-any",
  },
};
/** --listen HOST:PORT (an IPv6 host in brackets); a host that is not loopback needs --listen-any. */
export function parseListen(value: string, any: boolean, flag = "listen"): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || port > 65535) {
    throw new UserError(`--${flag} ${value}: expected HOST:PORT (e.g. 127.0.0.1:8470, [::1]:8470)`);
  }
  if (host !== "localhost" && isIP(host) === 0) {
    throw new UserError(`--${flag} ${value}: '${host}' is not an IP address or localhost`);
  }
  const loopback = host === "localhost" || host === "::1" || /^127\./.test(host);
  if (!loopback && !any) {
    throw new UserError(
      `--${flag} ${value}: ${host} is not a loopback address; add --listen-any to serve other hosts (token-guarded, unencrypted)`,
    );
  }
  return { host, port };
}

/**
 * --memory-low/--memory-high: a fraction of host memory ("0.1", "10%"; at most 1) or a size ("512M",
 * more than 1 byte), as VmManagerOptions' watermarks take them.
 */
export function parseWatermark(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  const fraction = percent !== null ? Number(percent[1]) / 100 : /^0?\.\d+$/.test(text) ? Number(text) : null;
  if (fraction !== null) {
    if (!(fraction > 0 && fraction <= 1)) throw new UserError(`--${flag} ${text}: a fraction is from 0 to 1`);
    return fraction;
  }
  const bytes = parseSize(text, `--${flag}`);
  if (bytes <= 1) throw new UserError(`--${flag} ${text}: a size is more than 1 byte (or give a fraction)`);
  return bytes;
}
export function daemonCommand(done: (status: number) => void): Command {
  const cmd = new Command("daemon").description("own many VMs and serve the REST API until SIGTERM");
  addFlags(cmd, FLAGS);
  // The API and manager stack is loaded only here: every other command (and --help) goes without it.
  return cmd.action(async () => {
    const { serve } = await import("./daemon-serve.js");
    done(await serve(parsedArgs(cmd, FLAGS)));
  });
}
