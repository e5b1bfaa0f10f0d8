/**
 * `vireo pool VERB`: a daemon's warm pools (VMs of one spec kept booted and idle, handed out once).
 * As `vireo vm`: human lines by default, `--json` for the daemon's answer as it is.
 */
import { resolve } from "node:path";
import { Command } from "commander";
import { UserError } from "../util/errors.js";
import { callDaemon } from "./api-client.js";
import { defaultSocket } from "./daemon-paths.js";
import { DEVICE_FLAGS } from "./device-flags.js";
import { addFlags, type FlagSpec, type ParsedArgs, parseCount, parsedArgs } from "./flags.js";
import { readSpec } from "./vm.js";

interface PoolInfo {
  id: string;
  name: string;
  size: number;
  ready: number;
  booting: number;
  waiting: number;
  readyMarker: string | null;
  vms: string[];
  createdAt: string;
  lastError?: string;
}

interface Context {
  args: ParsedArgs;
  socket: string;
  out(value: unknown, human: () => string): void;
}

interface Verb {
  description: string;
  operands: [string, string][];
  flags: FlagSpec;
  run(c: Context): Promise<number>;
}

const COMMON_FLAGS: FlagSpec = {
  json: { kind: "switch", help: "print the daemon's answer as JSON" },
  socket: {
    kind: "value",
    arg: "PATH",
    help: "the daemon's socket (default $XDG_RUNTIME_DIR/vireo/vireo.sock)",
  },
};

const POOL: [string, string] = ["<pool>", "the pool's name or id"];
const at = (pool: string | undefined) => `/pools/${encodeURIComponent(pool ?? "")}`;

const VERBS: Record<string, Verb> = {
  create: {
    description: "keep --size VMs of a spec (--spec FILE.json or device flags) booted and idle",
    operands: [],
    flags: {
      name: { kind: "value", arg: "NAME", help: "the pool's name (its VMs are NAME-XXXXXXXX)" },
      size: { kind: "value", arg: "N", help: "VMs kept booted and idle, 0-64" },
      spec: { kind: "value", arg: "FILE", help: "a VmSpec as JSON, in place of the device flags" },
      "ready-marker": {
        kind: "value",
        arg: "TEXT",
        help: "console output that says a VM has booted (default VIREO-READY with an initrd)",
      },
      "ready-on-start": { kind: "switch", help: "no marker: a VM is ready as soon as it runs" },
      ...DEVICE_FLAGS,
    },
    run: create,
  },
  list: {
    description: "list the pools",
    operands: [],
    flags: {},
    run: async ({ socket, out }) => {
      const pools = (await callDaemon(socket, "GET", "/pools")).body as PoolInfo[];
      out(pools, () =>
        [
          ["NAME", "SIZE", "READY", "BOOTING", "WAITING", "ID"],
          ...pools.map((p) => [p.name, p.size, p.ready, p.booting, p.waiting, p.id].map(String)),
        ]
          .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(i === 0 ? 20 : 8))).join(" "))
          .join("\n"),
      );
      return 0;
    },
  },
  show: {
    description: "describe a pool",
    operands: [POOL],
    flags: {},
    run: async ({ args, socket, out }) => {
      const p = (await callDaemon(socket, "GET", at(args.positional[0]))).body as PoolInfo;
      out(p, () =>
        [
          `name:     ${p.name}`,
          `id:       ${p.id}`,
          `size:     ${p.size}`,
          `ready:    ${p.ready}`,
          `booting:  ${p.booting}`,
          `waiting:  ${p.waiting}`,
          `marker:   ${p.readyMarker ?? "- (running is ready)"}`,
          `idle VMs: ${p.vms.length === 0 ? "-" : p.vms.join(" ")}`,
          ...(p.lastError === undefined ? [] : [`failure:  ${p.lastError}`]),
        ].join("\n"),
      );
      return 0;
    },
  },
  acquire: {
    description: "take a booted VM out of the pool (it is yours until released) and print its name",
    operands: [POOL],
    flags: {
      "timeout-ms": { kind: "value", arg: "MS", help: "how long to wait when none is ready (default 30000)" },
    },
    run: async ({ args, socket, out }) => {
      const t = args.values.get("timeout-ms");
      const body = t === undefined ? {} : { timeoutMs: parseCount(t, "timeout-ms", 0, 600_000) };
      const vm = (await callDaemon(socket, "POST", `${at(args.positional[0])}/acquire`, body)).body as {
        name: string;
      };
      out(vm, () => vm.name);
      return 0;
    },
  },
  release: {
    description: "delete a VM acquired from the pool",
    operands: [POOL, ["<vm>", "the acquired VM's name or id"]],
    flags: {},
    run: async ({ args, socket, out }) => {
      const vm = args.positional[1] ?? "";
      await callDaemon(socket, "POST", `${at(args.positional[0])}/release`, { vm });
      out({ released: vm }, () => `released ${vm}`);
      return 0;
    },
  },
  rm: {
    description: "delete a pool and its idle VMs (acquired ones stay)",
    operands: [POOL],
    flags: {},
    run: async ({ args, socket, out }) => {
      const pool = args.positional[0] ?? "";
      await callDaemon(socket, "DELETE", at(pool));
      out({ deleted: pool }, () => `deleted pool ${pool}`);
      return 0;
    },
  },
};

async function create({ args, socket, out }: Context): Promise<number> {
  const size = args.values.get("size");
  if (size === undefined) throw new UserError("'pool create' needs --size N");
  const name = args.values.get("name");
  const specFile = args.values.get("spec");
  let spec: Record<string, unknown>;
  if (specFile !== undefined) {
    const device = Object.keys(DEVICE_FLAGS).find(
      (f) => args.values.has(f) || args.switches.has(f) || args.repeated.has(f),
    );
    if (device !== undefined)
      throw new UserError(`--spec and --${device} do not mix: the spec file has the devices`);
    spec = readSpec(specFile);
  } else {
    // The spec schema is loaded only where a spec is made from flags (see vm.ts's create).
    const { vmSpecFromFlags } = await import("./run-spec.js");
    spec = (await vmSpecFromFlags(args, name ?? "pool")) as unknown as Record<string, unknown>;
  }
  const marker = args.values.get("ready-marker");
  if (marker !== undefined && args.switches.has("ready-on-start")) {
    throw new UserError("--ready-marker and --ready-on-start do not mix");
  }
  const body = {
    ...(name === undefined ? {} : { name }),
    spec,
    size: parseCount(size, "size", 0, 64),
    ...(marker !== undefined ? { readyMarker: marker } : {}),
    ...(args.switches.has("ready-on-start") ? { readyMarker: null } : {}),
  };
  const pool = (await callDaemon(socket, "POST", "/pools", body)).body as PoolInfo;
  out(pool, () => `created pool ${pool.name} (${pool.id}) of ${pool.size}`);
  return 0;
}

export function poolCommand(done: (status: number) => void): Command {
  const pool = new Command("pool").description("warm pools of a running daemon: booted VMs handed out once");
  for (const [name, verb] of Object.entries(VERBS)) {
    const flags = { ...verb.flags, ...COMMON_FLAGS };
    const cmd = addFlags(new Command(name).description(verb.description), flags);
    for (const [operand, help] of verb.operands) cmd.argument(operand, help);
    cmd.action(async () => {
      const args = parsedArgs(cmd, flags);
      const json = args.switches.has("json");
      done(
        await verb.run({
          args,
          socket: resolve(args.values.get("socket") ?? defaultSocket()),
          out: (value, human) =>
            process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`),
        }),
      );
    });
    pool.addCommand(cmd);
  }
  return pool;
}
