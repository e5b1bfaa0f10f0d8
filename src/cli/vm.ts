/**
 * `vireo vm VERB`: drives a running daemon over its socket. Human tables by default; `--json` prints
 * the daemon's answer as it is, for scripts. A VM is named by its name or its id.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { UserError } from "../util/errors.js";
import { formatSize } from "../util/size.js";
import { callDaemon } from "./api-client.js";
import { type FlagSpec, parseArgs, parseCount } from "./args.js";
import { defaultSocket } from "./daemon-paths.js";
import { VM_CONSOLE_USAGE, vmConsoleCommand } from "./vm-console.js";

const VERBS = ["create", "list", "show", "start", "stop", "pause", "resume", "kill", "rm", "stats"] as const;
type Verb = (typeof VERBS)[number];

export const VM_USAGE = `usage: vireo vm create --name NAME --spec FILE.json [--json] [--socket PATH]
       vireo vm list [--label KEY=VALUE]... [--json] [--socket PATH]
       vireo vm show|start|pause|resume|kill|rm|stats NAME [--json] [--socket PATH]
       vireo vm stop NAME [--grace-ms MS] [--json] [--socket PATH]
${VM_CONSOLE_USAGE}`;

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

function flagsFor(verb: Verb): FlagSpec {
  const flags: FlagSpec = { json: "switch", socket: "value" };
  if (verb === "create") Object.assign(flags, { name: "value", spec: "value" });
  if (verb === "list") flags.label = "repeatable";
  if (verb === "stop") flags["grace-ms"] = "value";
  return flags;
}

export async function vmCommand(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === "--help") {
    process.stdout.write(`${VM_USAGE}\n`);
    return verb === undefined ? 2 : 0;
  }
  if (verb === "console") return vmConsoleCommand(rest);
  if (!(VERBS as readonly string[]).includes(verb)) {
    throw new UserError(`unknown verb 'vm ${verb}' (one of: ${VERBS.join(", ")})`);
  }
  const v = verb as Verb;
  const args = parseArgs(rest, flagsFor(v), `vm ${v}`);
  const socket = resolve(args.values.get("socket") ?? defaultSocket());
  const json = args.switches.has("json");
  const out = (value: unknown, human: () => string) =>
    process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);

  if (v === "create") {
    if (args.positional.length > 0)
      throw new UserError(`'vm create' takes no argument '${args.positional[0]}'`);
    const specFile = args.values.get("spec");
    if (specFile === undefined) throw new UserError("'vm create' needs --spec FILE.json");
    const spec = readSpec(specFile);
    const name = args.values.get("name");
    if (name !== undefined) spec.name = name;
    const { status, body } = await callDaemon(socket, "POST", "/vms", spec);
    const vm = body as VmInfo;
    out(vm, () => `${status === 201 ? "created" : "exists:"} ${vm.name} (${vm.id})`);
    return 0;
  }
  if (v === "list") {
    if (args.positional.length > 0)
      throw new UserError(`'vm list' takes no argument '${args.positional[0]}'`);
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
  if (args.positional.length !== 1) throw new UserError(`'vm ${v}' takes one VM name`);
  const path = `/vms/${encodeURIComponent(args.positional[0] as string)}`;
  switch (v) {
    case "show": {
      const { body } = await callDaemon(socket, "GET", path);
      out(body, () => describe(body as VmInfo));
      return 0;
    }
    case "rm": {
      await callDaemon(socket, "DELETE", path);
      out({ deleted: args.positional[0] }, () => `deleted ${args.positional[0]}`);
      return 0;
    }
    case "stats": {
      const { body } = await callDaemon(socket, "GET", `${path}/stats`);
      out(body, () => statsLines(body as Record<string, unknown>));
      return 0;
    }
    default: {
      const grace = args.values.get("grace-ms");
      const query = grace === undefined ? "" : `?grace_ms=${parseCount(grace, "grace-ms", 0, 999_999)}`;
      const { body } = await callDaemon(socket, "POST", `${path}/actions/${v}${query}`);
      const vm = body as VmInfo;
      out(vm, () => `${vm.name}: ${stateText(vm)}`);
      return 0;
    }
  }
}

/** A spec file, its relative paths made absolute against its own directory (the daemon's differs). */
function readSpec(file: string): Record<string, unknown> & { name?: unknown } {
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UserError(`--spec ${file}: ${(e as Error).message}`);
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new UserError(`--spec ${file}: not a JSON object`);
  }
  const base = dirname(resolve(file));
  const abs = (p: unknown) => (typeof p === "string" && p !== "" && !isAbsolute(p) ? resolve(base, p) : p);
  const s = spec as Record<string, unknown>;
  const boot = s.boot as Record<string, unknown> | undefined;
  if (typeof boot === "object" && boot !== null) {
    for (const key of ["kernel", "initrd"]) if (key in boot) boot[key] = abs(boot[key]);
    if (boot.firmware !== "builtin" && boot.firmware !== "none" && "firmware" in boot) {
      boot.firmware = abs(boot.firmware);
    }
  }
  if (Array.isArray(s.drives)) {
    for (const d of s.drives) if (typeof d === "object" && d !== null) d.path = abs(d.path);
  }
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
