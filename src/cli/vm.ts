/**
 * `vireo vm VERB`: drives a running daemon over its socket. Human tables by default; `--json` prints
 * the daemon's answer as it is, for scripts. A VM is named by its name or its id.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command } from "commander";
import { isSingleFile, SINGLE_FILE_SUFFIX } from "../snapshot/store.js";
import { UserError } from "../util/errors.js";
import { formatSize, parseSize } from "../util/size.js";
import { callDaemon } from "./api-client.js";
import { BACKEND_FLAGS, backendOverridesFromFlags } from "./backend-flags.js";
import { defaultSocket } from "./daemon-paths.js";
import { DEVICE_FLAGS } from "./device-flags.js";
import { addFlags, type FlagSpec, type ParsedArgs, parseCount, parsedArgs } from "./flags.js";
import { absoluteSpecPaths } from "./spec-paths.js";

interface VmInfo {
  id: string;
  name: string;
  state: string;
  reason?: string;
  exit?: { reason: string; code?: number };
  labels: Record<string, string>;
  autostart: boolean;
  createdAt: string;
  spec: { arch: string; cpus: number; memory: number };
}

/** What a verb's run gets: its flags, the VM it names (if it takes one), and how to print. */
interface VerbContext {
  args: ParsedArgs;
  socket: string;
  /** The daemon's path of the VM named on the command line ("/vms/NAME"). */
  path: string;
  vm: string;
  out(value: unknown, human: () => string): void;
}

interface Verb {
  description: string;
  /** Whether it takes a VM NAME operand. */
  named: boolean;
  /** Operands after NAME, as commander writes them ("[size]"), with their help. */
  operands?: [string, string][];
  flags: FlagSpec;
  run(c: VerbContext): Promise<number>;
}

const COMMON_FLAGS: FlagSpec = {
  json: { kind: "switch", help: "print the daemon's answer as JSON" },
  socket: {
    kind: "value",
    arg: "PATH",
    help: "the daemon's socket (default $XDG_RUNTIME_DIR/vireo/vireo.sock)",
  },
};

/** How a VM gets host CPU (VmSpec.cpu), for create and set. */
const CPU_FLAGS: FlagSpec = {
  "cpu-mode": {
    kind: "value",
    arg: "MODE",
    help: "shared (a share of the pool's CPUs, the default) or dedicated (a host CPU of its own)",
  },
  weight: { kind: "value", arg: "N", help: "shared: relative CPU share, 1-10000 (default 100)" },
  cap: { kind: "value", arg: "FRACTION", help: "shared: at most this much of one host CPU, e.g. 0.5" },
  reservation: {
    kind: "value",
    arg: "FRACTION",
    help: "shared: at least this much of one host CPU when it has work, e.g. 0.2",
  },
};

const CREATE_FLAGS: FlagSpec = {
  name: { kind: "value", arg: "NAME", help: "the VM's name (overrides the spec file's)" },
  spec: { kind: "value", arg: "FILE", help: "a VmSpec as JSON, in place of the device flags" },
  ...DEVICE_FLAGS,
  ...CPU_FLAGS,
  "memory-mode": {
    kind: "value",
    arg: "MODE",
    help: "overcommit (guest RAM committed as it is touched, the default) or reserved (committed at start)",
  },
};

/** A fraction of one CPU from a flag: a number in (0, 1] (or [0, 1] when zero is allowed). */
function parseFraction(text: string, flag: string, zero: boolean): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n > 1 || n < 0 || (!zero && n === 0)) {
    throw new UserError(`--${flag} ${text}: expected a fraction of one CPU, ${zero ? "0" : "above 0"} to 1`);
  }
  return n;
}

/** The CPU share the flags describe over `base` (the VM's current one, for set); undefined: none given. */
function cpuShareFromFlags(
  args: ParsedArgs,
  base: Record<string, unknown> = {},
): Record<string, unknown> | undefined {
  const given = Object.keys(CPU_FLAGS).filter((f) => args.values.has(f));
  if (given.length === 0) return undefined;
  const share: Record<string, unknown> = { mode: "shared", ...base };
  const mode = args.values.get("cpu-mode");
  if (mode !== undefined) {
    if (mode !== "shared" && mode !== "dedicated") {
      throw new UserError(`--cpu-mode ${mode}: expected shared or dedicated`);
    }
    share.mode = mode;
    if (mode === "dedicated") {
      delete share.weight;
      delete share.cap;
      delete share.reservation;
    }
  }
  const weight = args.values.get("weight");
  if (weight !== undefined) share.weight = parseCount(weight, "weight", 1, 10_000);
  const cap = args.values.get("cap");
  if (cap !== undefined) share.cap = parseFraction(cap, "cap", false);
  const reservation = args.values.get("reservation");
  if (reservation !== undefined) share.reservation = parseFraction(reservation, "reservation", true);
  return share;
}

/** A VM action (POST /vms/NAME/actions/VERB), printed as the state it leaves the VM in. */
function action(verb: string, description: string, flags: FlagSpec = {}): Verb {
  return {
    description,
    named: true,
    flags,
    run: async ({ args, socket, path, out }) => {
      const grace = args.values.get("grace-ms");
      const query = grace === undefined ? "" : `?grace_ms=${parseCount(grace, "grace-ms", 0, 999_999)}`;
      const { body } = await callDaemon(socket, "POST", `${path}/actions/${verb}${query}`);
      const vm = body as VmInfo;
      out(vm, () => `${vm.name}: ${stateText(vm)}`);
      return 0;
    },
  };
}

/** The verbs, in help order. */
const VERBS: Record<string, Verb> = {
  create: {
    description: "define a VM from device flags or --spec FILE.json",
    named: false,
    flags: CREATE_FLAGS,
    run: create,
  },
  list: {
    description: "list the VMs",
    named: false,
    flags: { label: { kind: "repeatable", arg: "KEY=VALUE", help: "only VMs with this label (repeatable)" } },
    run: list,
  },
  show: {
    description: "describe a VM",
    named: true,
    flags: {},
    run: async ({ socket, path, out }) => {
      const { body } = await callDaemon(socket, "GET", path);
      out(body, () => describe(body as VmInfo));
      return 0;
    },
  },
  start: action("start", "boot a VM"),
  stop: action("stop", "ask a VM to power off, then kill it after a grace period", {
    "grace-ms": { kind: "value", arg: "MS", help: "how long the guest may take to power off" },
  }),
  pause: action("pause", "pause a running VM"),
  resume: action("resume", "resume a paused VM"),
  kill: action("kill", "end a VM at once"),
  reboot: action("reboot", "end a VM and boot it again from its definition"),
  console: {
    description: "attach the terminal to a VM's console (the last 64 KiB first; Ctrl-A x detaches)",
    named: true,
    flags: {},
    run: async ({ socket, vm }) => {
      // ws, the spec schema and the like are loaded by the verbs that use them, not by every `vireo`.
      const { vmConsole } = await import("./vm-console.js");
      return vmConsole(vm, socket);
    },
  },
  rm: {
    description: "delete a VM's definition",
    named: true,
    flags: {},
    run: async ({ socket, path, vm, out }) => {
      await callDaemon(socket, "DELETE", path);
      out({ deleted: vm }, () => `deleted ${vm}`);
      return 0;
    },
  },
  balloon: {
    description: "set the balloon target of a running VM (what its guest gives back), or show the balloon",
    named: true,
    operands: [["[size]", "what the guest is asked to hold in its balloon, e.g. 128M (0 gives it all back)"]],
    flags: {},
    run: async ({ args, socket, path, vm, out }) => {
      const size = args.positional[1];
      const { body } =
        size === undefined
          ? await callDaemon(socket, "GET", `${path}/balloon`)
          : await callDaemon(socket, "PATCH", `${path}/balloon`, { targetBytes: parseSize(size, "SIZE") });
      const b = body as { targetBytes: number; actualBytes: number; peakActualBytes: number };
      out(
        body,
        () =>
          `${vm}: balloon target ${formatSize(b.targetBytes)}, the guest holds ${formatSize(b.actualBytes)} (peak ${formatSize(b.peakActualBytes)})`,
      );
      return 0;
    },
  },
  set: {
    description:
      "change how a VM gets host CPU (a running shared VM at once; a change of mode at its next start)",
    named: true,
    flags: CPU_FLAGS,
    run: async ({ args, socket, path, vm, out }) => {
      const { body: current } = await callDaemon(socket, "GET", path);
      const base = ((current as { spec: { cpu?: Record<string, unknown> } }).spec.cpu ?? {}) as Record<
        string,
        unknown
      >;
      const share = cpuShareFromFlags(args, base);
      if (share === undefined)
        throw new UserError("'vm set' needs --cpu-mode, --weight, --cap or --reservation");
      const { body } = await callDaemon(socket, "PATCH", `${path}/cpu`, share);
      out(body, () => `${vm}: cpu ${JSON.stringify((body as { spec: { cpu?: unknown } }).spec.cpu)}`);
      return 0;
    },
  },
  stats: {
    description: "a VM's counters",
    named: true,
    flags: {},
    run: async ({ socket, path, out }) => {
      const { body } = await callDaemon(socket, "GET", `${path}/stats`);
      out(body, () => statsLines(body as Record<string, unknown>));
      return 0;
    },
  },
  snapshot: {
    description:
      "save a running or paused VM (riscv64, or x86_64 on KVM) into a directory, or one file ending in .vsnap (it runs on unless --paused)",
    named: true,
    operands: [["<dir>", "the snapshot's directory (created if missing), or FILE.vsnap"]],
    flags: {
      paused: { kind: "switch", help: "leave the VM paused after saving" },
      zlib: { kind: "switch", help: "compress the memory file" },
      "single-file": { kind: "switch", help: "one file (.vsnap is added to the name if it lacks it)" },
    },
    run: async ({ args, socket, path, vm, out }) => {
      const given = resolve(args.positional[1] ?? "");
      const dir =
        args.switches.has("single-file") && !isSingleFile(given) ? `${given}${SINGLE_FILE_SUFFIX}` : given;
      const { body } = await callDaemon(socket, "POST", `${path}/snapshot`, {
        path: dir,
        resume: !args.switches.has("paused"),
        compression: args.switches.has("zlib") ? "zlib" : "none",
      });
      const r = body as { pages: number; ramBytes: number; pausedMs: number };
      out(
        body,
        () =>
          `${vm}: saved to ${dir} (${formatSize(r.ramBytes)} of RAM in ${r.pages} pages; paused ${Math.round(r.pausedMs)} ms)`,
      );
      return 0;
    },
  },
  migrate: {
    description: "live-migrate a running riscv64 VM to a daemon waiting for it ('vm migrate-in' there)",
    named: true,
    flags: {
      to: { kind: "value", arg: "SOCKET", help: "the target's migration socket (path, or host:port)" },
      downtime: { kind: "value", arg: "MS", help: "longest pause for the last pass (default 300)" },
    },
    run: async ({ args, socket, path, vm, out }) => {
      const to = args.values.get("to");
      if (to === undefined) throw new UserError("'vm migrate' needs --to SOCKET");
      const downtime = args.values.get("downtime");
      const { body } = await callDaemon(socket, "POST", `${path}/migrate`, {
        to: migrationAddress(to),
        ...(downtime === undefined ? {} : { downtimeMs: parseCount(downtime, "--downtime", 1, 3_600_000) }),
      });
      const r = body as { passes: number; bytes: number; totalMs: number; downtimeMs: number };
      out(
        body,
        () =>
          `${vm}: migrated to ${to} in ${Math.round(r.totalMs)} ms (${r.passes} passes, ${formatSize(r.bytes)}; downtime ${Math.round(r.downtimeMs)} ms)`,
      );
      return 0;
    },
  },
  "migrate-in": {
    description: "wait for one VM to migrate in at a socket, to be named NAME here",
    named: true,
    flags: {
      listen: { kind: "value", arg: "SOCKET", help: "where to wait (a socket path, or host:port)" },
      ...BACKEND_FLAGS,
    },
    run: async ({ args, socket, vm, out }) => {
      const listen = args.values.get("listen");
      if (listen === undefined) throw new UserError("'vm migrate-in' needs --listen SOCKET");
      const { body } = await callDaemon(socket, "POST", "/vms/migrate-in", {
        name: vm,
        listen: migrationAddress(listen),
        ...backendOverridesFromFlags(args),
      });
      out(body, () => `waiting for ${vm} at ${listen}`);
      return 0;
    },
  },
  restore: fromSnapshot("restore", "start a VM that goes on where the snapshot DIR left off"),
  clone: fromSnapshot(
    "clone",
    "start a copy of the snapshot DIR's VM (new MACs and vsock CID; its disks copied to DIR/clones/NEW/)",
  ),
  exec: {
    description:
      "run a command in a running VM through its guest agent (stdin and output streamed, its exit status is vireo's)",
    named: true,
    operands: [["[command...]", "the program and its arguments, after --"]],
    flags: {
      env: { kind: "repeatable", arg: "KEY=VALUE", help: "the command's environment (repeatable)" },
      "timeout-ms": {
        kind: "value",
        arg: "MS",
        help: "kill it in the guest past this (default one hour; with --json 60000); exit 124",
      },
    },
    run: async ({ args, socket, path }) => {
      const { execVerb } = await import("./vm-exec.js");
      return execVerb(socket, path, args.positional.slice(1), {
        env: args.repeated.get("env") ?? [],
        ...(args.values.has("timeout-ms") ? { timeoutMs: args.values.get("timeout-ms") as string } : {}),
        json: args.switches.has("json"),
      });
    },
  },
  cp: {
    description: "copy a file into a running VM (FILE NAME:PATH) or out of it (NAME:PATH FILE)",
    named: false,
    operands: [
      ["<source>", "FILE or NAME:/PATH"],
      ["<dest>", "NAME:/PATH or FILE"],
    ],
    flags: {},
    run: async ({ args, socket, out }) => {
      const [source, dest] = args.positional as [string, string];
      const { cpVerb } = await import("./vm-exec.js");
      const line = await cpVerb(socket, source, dest);
      out({ copied: line }, () => line);
      return 0;
    },
  },
};

/** A socket path made absolute (the daemon's working directory is not ours); host:port as it is. */
function migrationAddress(text: string): string {
  return /^[^/:]+:\d+$/.test(text) ? text : resolve(text);
}

/** `vm restore DIR --name NEW` and `vm clone DIR --name NEW`: POST /vms {name, restore|clone}. */
function fromSnapshot(how: "restore" | "clone", description: string): Verb {
  return {
    description,
    named: false,
    operands: [["<dir>", "the snapshot's directory"]],
    flags: { name: { kind: "value", arg: "NEW", help: "the new VM's name" }, ...BACKEND_FLAGS },
    run: async ({ args, socket, out }) => {
      const name = args.values.get("name");
      if (name === undefined) throw new UserError(`'vm ${how}' needs --name NEW`);
      const dir = resolve(args.positional[0] ?? "");
      const { body } = await callDaemon(socket, "POST", "/vms", {
        name,
        [how]: dir,
        ...backendOverridesFromFlags(args),
      });
      const vm = body as VmInfo;
      out(vm, () => `${how === "restore" ? "restored" : "cloned"} ${vm.name} (${vm.id}): ${stateText(vm)}`);
      return 0;
    },
  };
}

export function vmCommand(done: (status: number) => void): Command {
  const vm = new Command("vm").description("drive the VMs of a running daemon");
  for (const [name, verb] of Object.entries(VERBS)) {
    const flags = { ...verb.flags, ...COMMON_FLAGS };
    const cmd = addFlags(new Command(name).description(verb.description), flags);
    if (verb.named) cmd.argument("<name>", "the VM's name or id");
    for (const [operand, help] of verb.operands ?? []) cmd.argument(operand, help);
    cmd.action(async () => {
      const args = parsedArgs(cmd, flags);
      const json = args.switches.has("json");
      const target = args.positional[0] ?? "";
      const status = await verb.run({
        args,
        socket: resolve(args.values.get("socket") ?? defaultSocket()),
        path: `/vms/${encodeURIComponent(target)}`,
        vm: target,
        out: (value, human) =>
          process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`),
      });
      done(status);
    });
    vm.addCommand(cmd);
  }
  return vm;
}

async function create({ args, socket, out }: VerbContext): Promise<number> {
  const specFile = args.values.get("spec");
  const name = args.values.get("name");
  let spec: Record<string, unknown>;
  if (specFile !== undefined) {
    const device = Object.keys(DEVICE_FLAGS).find(
      (f) => args.values.has(f) || args.switches.has(f) || args.repeated.has(f),
    );
    if (device !== undefined)
      throw new UserError(`--spec and --${device} do not mix: the spec file has the devices`);
    spec = readSpec(specFile);
    if (name !== undefined) spec.name = name;
  } else {
    if (name === undefined) throw new UserError("'vm create' needs --name NAME (or --spec FILE.json)");
    const { vmSpecFromFlags } = await import("./run-spec.js");
    spec = (await vmSpecFromFlags(args, name)) as unknown as Record<string, unknown>;
  }
  const share = cpuShareFromFlags(args, (spec.cpu ?? {}) as Record<string, unknown>);
  if (share !== undefined) spec.cpu = share;
  const memoryMode = args.values.get("memory-mode");
  if (memoryMode !== undefined) {
    if (memoryMode !== "reserved" && memoryMode !== "overcommit") {
      throw new UserError(`--memory-mode ${memoryMode}: expected reserved or overcommit`);
    }
    spec.memoryMode = memoryMode;
  }
  const { status, body } = await callDaemon(socket, "POST", "/vms", spec);
  const vm = body as VmInfo;
  out(vm, () => `${status === 201 ? "created" : "exists:"} ${vm.name} (${vm.id})`);
  return 0;
}

async function list({ args, socket, out }: VerbContext): Promise<number> {
  const labels = args.repeated.get("label") ?? [];
  for (const l of labels) if (!/^[^=]+=/.test(l)) throw new UserError(`--label ${l}: expected KEY=VALUE`);
  const query = labels.map((l) => `label=${encodeURIComponent(l)}`).join("&");
  const { body } = await callDaemon(socket, "GET", `/vms${query === "" ? "" : `?${query}`}`);
  const vms = body as VmInfo[];
  out(vms, () =>
    table(
      ["NAME", "STATE", "ARCH", "CPUS", "MEMORY", "ID"],
      vms.map((vm) => [
        vm.name,
        vm.state,
        vm.spec.arch,
        String(vm.spec.cpus),
        formatSize(vm.spec.memory),
        vm.id,
      ]),
    ),
  );
  return 0;
}

/** A spec file, its relative paths made absolute against its own directory (the daemon's differs). */
export function readSpec(file: string): Record<string, unknown> & { name?: unknown } {
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UserError(`--spec ${file}: ${(e as Error).message}`);
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new UserError(`--spec ${file}: not a JSON object`);
  }
  const s = spec as Record<string, unknown>;
  absoluteSpecPaths(s, dirname(resolve(file)));
  return s;
}

function stateText(vm: VmInfo): string {
  if (vm.state === "failed") return `failed: ${vm.reason ?? "?"}`;
  if (vm.state === "stopped" && vm.exit !== undefined) {
    return `stopped (${vm.exit.reason}${vm.exit.code === undefined ? "" : ` ${vm.exit.code}`})`;
  }
  return vm.state;
}

function describe(vm: VmInfo): string {
  const labels = Object.entries(vm.labels).map(([k, v]) => `${k}=${v}`);
  return [
    `name:      ${vm.name}`,
    `id:        ${vm.id}`,
    `state:     ${stateText(vm)}`,
    `arch:      ${vm.spec.arch}`,
    `cpus:      ${vm.spec.cpus}`,
    `memory:    ${formatSize(vm.spec.memory)}`,
    `autostart: ${vm.autostart ? "yes" : "no"}`,
    `labels:    ${labels.length === 0 ? "-" : labels.join(" ")}`,
    `created:   ${vm.createdAt}`,
  ].join("\n");
}

function statsLines(stats: Record<string, unknown>): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(stats)) {
    if (Array.isArray(value) && value.every((e) => Array.isArray(e))) {
      if (value.length > 0) lines.push(`${key}: ${value.map(([k, n]) => `${k}=${n}`).join(" ")}`);
    } else if (typeof value !== "object" || value === null) lines.push(`${key}: ${value}`);
    else lines.push(`${key}: ${JSON.stringify(value)}`);
  }
  return lines.join("\n");
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
