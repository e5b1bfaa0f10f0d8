/**
 * Kernel modules for the guest, taken from the kernel's own .deb. Debian ships them as `.ko.xz` without
 * a modules.dep (depmod runs at install time), so the dependencies come from each module's `.modinfo`
 * ELF section (`depends=` and `softdep=`), and the load order is a topological sort of them. The
 * modules are stored decompressed (xz in the guest would cost more than the kernel's gunzip of the
 * initramfs). The guest's init loads those the devices present need: the load-order file gives each
 * module's path, what it needs first and its aliases (matched against the devices' modaliases).
 *
 * Extraction streams the package once, decompressing only the modules in the closure.
 */
import { spawnSync } from "node:child_process";
import { posix } from "node:path";
import { gunzipSync } from "node:zlib";
import { UserError } from "../util/errors.js";
import type { CpioEntry } from "./cpio.js";
import { scanDeb } from "./deb.js";

export const NEEDS_XZ = "vireo needs xz (package xz-utils) to unpack the kernel modules of the guest image";
export const NEEDS_ZSTD = "vireo needs zstd (package zstd) to unpack the kernel modules of the guest image";

/** The module list the init reads (see loadOrderText), beside the modules in /lib/modules/<release>/. */
export const LOAD_ORDER_FILE = "load-order";

/** Module names treat "-" and "_" alike; the kernel and modprobe use "_". */
export function normaliseModuleName(name: string): string {
  return name.replace(/-/g, "_");
}

const SUFFIX = /\.ko(\.xz|\.gz|\.zst)?$/;

/** The module name of a file path (`…/virtio-rng.ko.xz` → `virtio_rng`), or undefined if not a module. */
export function moduleNameOf(path: string): string | undefined {
  const base = posix.basename(path);
  if (!SUFFIX.test(base)) return undefined;
  return normaliseModuleName(base.replace(SUFFIX, ""));
}

// ---------------------------------------------------------------------------------------------------------
// .modinfo

export interface ModInfo {
  name: string;
  /** Hard dependencies (`depends=`): must be loaded first. */
  depends: string[];
  /** `softdep=pre:` names (module names or aliases): loaded first when available. */
  pre: string[];
  /** `softdep=post:` names: loaded after, when available. */
  post: string[];
  /** As written (matched against device modaliases as they are; normalised to look up names). */
  aliases: string[];
  vermagic?: string;
}

/** The bytes of the `.modinfo` section of an ELF relocatable (32/64-bit, either byte order). */
export function modinfoSection(elf: Uint8Array): Uint8Array {
  if (elf.length < 0x34 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) {
    throw new Error("not an ELF file");
  }
  const is64 = elf[4] === 2;
  const little = elf[5] !== 2;
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const u16 = (at: number) => view.getUint16(at, little);
  const u32 = (at: number) => view.getUint32(at, little);
  const word = (at: number) => (is64 ? Number(view.getBigUint64(at, little)) : u32(at));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  const shstrndx = u16(is64 ? 0x3e : 0x32);
  if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) {
    throw new Error("ELF section headers are missing or truncated");
  }
  const section = (index: number) => {
    const at = shoff + index * shentsize;
    return {
      name: u32(at),
      offset: word(at + (is64 ? 0x18 : 0x10)),
      size: word(at + (is64 ? 0x20 : 0x14)),
    };
  };
  const names = section(shstrndx);
  const nameOf = (offset: number) => {
    let end = names.offset + offset;
    while (end < elf.length && elf[end] !== 0) end++;
    return Buffer.from(elf.subarray(names.offset + offset, end)).toString("latin1");
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameOf(s.name) === ".modinfo") {
      if (s.offset + s.size > elf.length) throw new Error(".modinfo runs past the end of the file");
      return elf.subarray(s.offset, s.offset + s.size);
    }
  }
  throw new Error("no .modinfo section");
}

/** The `key=value` strings of a .modinfo section, in order (NUL-separated, padding skipped). */
export function parseModinfoStrings(section: Uint8Array): [string, string][] {
  const out: [string, string][] = [];
  for (const text of Buffer.from(section).toString("utf8").split("\0")) {
    const eq = text.indexOf("=");
    if (eq > 0) out.push([text.slice(0, eq), text.slice(eq + 1)]);
  }
  return out;
}

/** `softdep=pre: a b post: c` → { pre: [a, b], post: [c] } (names normalised). */
export function parseSoftdep(value: string): { pre: string[]; post: string[] } {
  const out = { pre: [] as string[], post: [] as string[] };
  let list: string[] | undefined;
  for (const word of value.trim().split(/\s+/)) {
    if (word === "pre:") list = out.pre;
    else if (word === "post:") list = out.post;
    else if (word !== "" && list !== undefined) list.push(normaliseModuleName(word));
  }
  return out;
}

/** The dependency-related fields of a module's .modinfo; `fallbackName` when it has no `name=`. */
export function parseModinfo(elf: Uint8Array, fallbackName?: string): ModInfo {
  const info: ModInfo = { name: fallbackName ?? "", depends: [], pre: [], post: [], aliases: [] };
  for (const [key, value] of parseModinfoStrings(modinfoSection(elf))) {
    switch (key) {
      case "name":
        info.name = normaliseModuleName(value);
        break;
      case "depends":
        info.depends.push(
          ...value
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "")
            .map(normaliseModuleName),
        );
        break;
      case "softdep": {
        const soft = parseSoftdep(value);
        info.pre.push(...soft.pre);
        info.post.push(...soft.post);
        break;
      }
      case "alias":
        info.aliases.push(value);
        break;
      case "vermagic":
        info.vermagic = value;
        break;
    }
  }
  if (info.name === "") throw new Error("module has no name= in .modinfo");
  return info;
}

// ---------------------------------------------------------------------------------------------------------
// Built-in modules

export interface Builtins {
  names: Set<string>;
  /** Alias → built-in module name. */
  aliases: Map<string, string>;
}

/** Module names of `modules.builtin` (one `kernel/…/name.ko` per line). */
export function parseModulesBuiltin(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const name = moduleNameOf(line.trim());
    if (name !== undefined) names.add(name);
  }
  return names;
}

/** Aliases of `modules.builtin.modinfo` (NUL-separated `module.key=value` strings). */
export function parseBuiltinModinfo(data: Uint8Array): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const [key, value] of parseModinfoStrings(data)) {
    const dot = key.indexOf(".");
    if (dot > 0 && key.slice(dot + 1) === "alias") {
      aliases.set(normaliseModuleName(value), normaliseModuleName(key.slice(0, dot)));
    }
  }
  return aliases;
}

// ---------------------------------------------------------------------------------------------------------
// Resolution and load order

/**
 * Module names an unknown alias may belong to, tried when nothing read so far declares it: the alias
 * itself, without a `crypto_` prefix, and with `_generic` (`crypto-crc32c` → crc32c, crc32c_generic).
 * A candidate only counts once its own .modinfo lists the alias.
 */
export function aliasCandidates(alias: string): string[] {
  const n = normaliseModuleName(alias);
  const bare = n.replace(/^crypto_/, "");
  return [...new Set([n, bare, `${bare}_generic`])];
}

export interface ResolveInput {
  /** What must be loadable (a root that is built in is fine). */
  roots: readonly string[];
  /** Modules read so far, by name. */
  modules: ReadonlyMap<string, ModInfo>;
  builtins: Builtins;
  /** Names of every module file in the package (read or not). */
  available: ReadonlySet<string>;
}

export interface Resolution {
  /** Modules to load, dependencies first. */
  order: string[];
  /** Roots and dependencies satisfied by the kernel itself. */
  builtin: string[];
  /** Modules in the package that must be read before the answer is final. */
  fetch: string[];
  /** Roots and hard dependencies found nowhere. */
  missing: string[];
  /** Soft dependencies found nowhere (they are optional). */
  unresolvedSoft: string[];
}

type Lookup =
  | { kind: "module" | "builtin"; name: string }
  | { kind: "fetch"; names: string[] }
  | { kind: "none" };

/**
 * The closure of `roots` over hard and soft dependencies, as a load order (depth-first: a module's
 * `depends` and `softdep pre` before it, its `softdep post` after it; otherwise in the order listed).
 * Soft-dependency cycles are cut; a hard cycle is an error.
 */
export function resolveModules(input: ResolveInput): Resolution {
  const aliasOwner = new Map<string, string>();
  for (const info of input.modules.values()) {
    for (const alias of info.aliases) {
      const n = normaliseModuleName(alias);
      if (!aliasOwner.has(n)) aliasOwner.set(n, info.name);
    }
  }
  const lookup = (ref: string): Lookup => {
    const n = normaliseModuleName(ref);
    if (input.modules.has(n)) return { kind: "module", name: n };
    if (input.builtins.names.has(n)) return { kind: "builtin", name: n };
    const owner = aliasOwner.get(n);
    if (owner !== undefined) return { kind: "module", name: owner };
    const builtinOwner = input.builtins.aliases.get(n);
    if (builtinOwner !== undefined) return { kind: "builtin", name: builtinOwner };
    const unread = aliasCandidates(n).filter((c) => input.available.has(c) && !input.modules.has(c));
    return unread.length > 0 ? { kind: "fetch", names: unread } : { kind: "none" };
  };

  const res: Resolution = { order: [], builtin: [], fetch: [], missing: [], unresolvedSoft: [] };
  const state = new Map<string, "active" | "done">();
  const addOnce = (list: string[], value: string) => {
    if (!list.includes(value)) list.push(value);
  };
  const follow = (ref: string, hard: boolean, from: string | undefined) => {
    const found = lookup(ref);
    switch (found.kind) {
      case "module":
        visit(found.name, hard, from);
        break;
      case "builtin":
        addOnce(res.builtin, found.name);
        break;
      case "fetch":
        for (const name of found.names) addOnce(res.fetch, name);
        break;
      case "none":
        addOnce(hard ? res.missing : res.unresolvedSoft, normaliseModuleName(ref));
        break;
    }
  };
  const visit = (name: string, hard: boolean, from: string | undefined) => {
    const st = state.get(name);
    if (st === "done") return;
    if (st === "active") {
      if (hard) throw new Error(`kernel modules: dependency cycle through ${name} (from ${from})`);
      return;
    }
    state.set(name, "active");
    const info = input.modules.get(name) as ModInfo;
    for (const dep of info.depends) follow(dep, true, name);
    for (const dep of info.pre) follow(dep, false, name);
    res.order.push(name);
    state.set(name, "done");
    for (const dep of info.post) follow(dep, false, name);
  };
  for (const root of input.roots) follow(root, true, undefined);
  return res;
}

// ---------------------------------------------------------------------------------------------------------
// Extraction from the kernel package

export interface KernelModule {
  name: string;
  /** Path under /lib/modules/<release>/, decompressed (`kernel/drivers/virtio/virtio_mmio.ko`). */
  path: string;
  data: Uint8Array;
  info: ModInfo;
}

export interface ModuleSet {
  release: string;
  /** In load order. */
  modules: KernelModule[];
  /** Requested modules the kernel has built in. */
  builtin: string[];
  unresolvedSoft: string[];
}

/** Decompresses a module file by its suffix (.ko as is, .ko.gz with zlib, .ko.xz / .ko.zst with xz / zstd). */
export function decompressModule(path: string, data: Uint8Array): Uint8Array {
  if (path.endsWith(".ko")) return data;
  if (path.endsWith(".ko.gz")) return new Uint8Array(gunzipSync(data));
  const [tool, missing] = path.endsWith(".ko.xz") ? ["xz", NEEDS_XZ] : ["zstd", NEEDS_ZSTD];
  const r = spawnSync(tool, ["-dc"], { input: data, maxBuffer: 1 << 30 });
  if (r.error !== undefined) {
    if ((r.error as NodeJS.ErrnoException).code === "ENOENT") throw new UserError(missing);
    throw r.error;
  }
  if (r.status !== 0) {
    throw new UserError(`${tool} -d ${posix.basename(path)} failed: ${r.stderr.toString().trim()}`);
  }
  return new Uint8Array(r.stdout);
}

/**
 * Takes `roots` and everything they depend on out of a kernel .deb holding
 * `[usr/]lib/modules/<release>/`, in one pass over the package: modules already known to be needed are
 * decompressed as they stream by (their dependencies join the wanted set); the others are held
 * compressed until the closure is known (a dependency may come earlier in the archive than the module
 * that needs it), then dropped. A root or hard dependency that is neither a module nor built in is a
 * UserError; soft dependencies found nowhere are reported in `unresolvedSoft`.
 */
export async function extractModules(
  deb: string,
  release: string,
  roots: readonly string[],
): Promise<ModuleSet> {
  const escaped = release.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const under = new RegExp(`^(?:usr/)?lib/modules/${escaped}/(.+)$`);
  const modules = new Map<string, KernelModule>();
  const infos = new Map<string, ModInfo>();
  /** Module files not read (yet), by module name: member name and compressed bytes. */
  const held = new Map<string, { member: string; relative: string; data: Uint8Array }>();
  const available = new Set<string>();
  const builtins: Builtins = { names: new Set(), aliases: new Map() };
  let sawBuiltinList = false;

  const wanted = new Set<string>();
  const want = (ref: string) => {
    for (const c of aliasCandidates(ref)) wanted.add(c);
  };
  for (const root of roots) want(root);

  const read = (member: string, relative: string, data: Uint8Array) => {
    const elf = decompressModule(member, data);
    let info: ModInfo;
    try {
      info = parseModinfo(elf, moduleNameOf(relative));
    } catch (e) {
      throw new UserError(`${member} in ${posix.basename(deb)}: ${(e as Error).message}`);
    }
    if (modules.has(info.name)) return;
    modules.set(info.name, { name: info.name, path: relative.replace(SUFFIX, ".ko"), data: elf, info });
    infos.set(info.name, info);
    for (const ref of [...info.depends, ...info.pre, ...info.post]) want(ref);
  };

  await scanDeb(
    deb,
    (member) => under.test(member),
    (member, data) => {
      const relative = (under.exec(member) as RegExpExecArray)[1] as string;
      if (relative === "modules.builtin") {
        sawBuiltinList = true;
        for (const n of parseModulesBuiltin(Buffer.from(data).toString("utf8"))) builtins.names.add(n);
        return false;
      }
      if (relative === "modules.builtin.modinfo") {
        for (const [alias, owner] of parseBuiltinModinfo(data)) builtins.aliases.set(alias, owner);
        return false;
      }
      const name = moduleNameOf(relative);
      if (name === undefined || available.has(name)) return false;
      available.add(name);
      if (wanted.has(name)) read(member, relative, data);
      else held.set(name, { member, relative, data });
      return false;
    },
  );
  if (available.size === 0) throw new UserError(`${posix.basename(deb)} holds no modules for ${release}`);
  if (!sawBuiltinList) throw new UserError(`${posix.basename(deb)} has no modules.builtin for ${release}`);

  for (;;) {
    const res = resolveModules({ roots, modules: infos, builtins, available });
    if (res.fetch.length === 0) {
      if (res.missing.length > 0) {
        throw new UserError(
          `the kernel package ${posix.basename(deb)} has no module ${res.missing.join(", ")} (neither a file nor built in)`,
        );
      }
      return {
        release,
        modules: res.order.map((n) => modules.get(n) as KernelModule),
        builtin: res.builtin,
        unresolvedSoft: res.unresolvedSoft,
      };
    }
    for (const name of res.fetch) {
      const file = held.get(name);
      if (file === undefined) throw new Error(`kernel modules: ${name} is neither read nor held`);
      held.delete(name);
      read(file.member, file.relative, file.data);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// In the guest

/**
 * For each module (in load order), the other modules of the list it needs loaded first: its hard and
 * `softdep pre` dependencies, transitively, in load order.
 */
export function moduleNeeds(modules: readonly KernelModule[]): Map<string, string[]> {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const aliasOwner = new Map<string, string>();
  for (const m of modules) {
    for (const a of m.info.aliases) {
      const n = normaliseModuleName(a);
      if (!aliasOwner.has(n)) aliasOwner.set(n, m.name);
    }
  }
  const position = new Map(modules.map((m, i) => [m.name, i]));
  const needs = new Map<string, string[]>();
  for (const m of modules) {
    const found = new Set<string>();
    const walk = (name: string) => {
      const info = byName.get(name)?.info;
      for (const ref of [...(info?.depends ?? []), ...(info?.pre ?? [])]) {
        const dep = byName.has(ref) ? ref : aliasOwner.get(ref);
        if (dep === undefined || dep === m.name || found.has(dep)) continue;
        found.add(dep);
        walk(dep);
      }
    };
    walk(m.name);
    needs.set(
      m.name,
      [...found].sort((x, y) => (position.get(x) as number) - (position.get(y) as number)),
    );
  }
  return needs;
}

/**
 * The load-order file the init script reads: after a comment, one line per module in load order:
 * `<name> <path relative to this folder> <modules it needs first, comma-separated, or -> <aliases…>`.
 * The init loads a module when a device's modalias matches one of its aliases (or a filesystem it must
 * mount has alias fs-<type>), after what it needs.
 */
export function loadOrderText(modules: readonly KernelModule[]): string {
  const needs = moduleNeeds(modules);
  const lines = [
    "# Written by vireo images fetch: kernel modules in load order (dependencies first), one per line:",
    "# <name> <path relative to this folder> <modules it needs first, comma-separated, or -> <aliases...>",
    ...modules.map((m) => {
      const first = needs.get(m.name) ?? [];
      const aliases = m.info.aliases.filter((a) => !/\s/.test(a));
      return [m.name, m.path, first.length > 0 ? first.join(",") : "-", ...aliases].join(" ");
    }),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * A depmod-style modules.dep for busybox modprobe in the guest: `path: deps…` with what each module
 * needs (soft `pre` dependencies included, so `modprobe ext4` brings crc32c), nearest first.
 */
export function modulesDepText(modules: readonly KernelModule[]): string {
  const needs = moduleNeeds(modules);
  const pathOf = new Map(modules.map((m) => [m.name, m.path]));
  const lines = modules.map((m) => {
    const deps = [...(needs.get(m.name) ?? [])].reverse().map((n) => ` ${pathOf.get(n)}`);
    return `${m.path}:${deps.join("")}`;
  });
  return `${lines.join("\n")}\n`;
}

/** modules.alias (`alias <pattern> <module>`), for modprobe by alias (fs-ext4, virtio:d00000002v*). */
export function modulesAliasText(modules: readonly KernelModule[]): string {
  const lines: string[] = [];
  for (const m of modules) {
    for (const a of m.info.aliases) if (!/\s/.test(a)) lines.push(`alias ${a} ${m.name}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * `lib/modules/<release>/…` entries (folders first, `lib` included): the modules and the files derived
 * from them (load-order, modules.dep, modules.alias).
 */
export function moduleEntries(set: Pick<ModuleSet, "release" | "modules">): CpioEntry[] {
  const base = `lib/modules/${set.release}`;
  const dirs = new Set<string>(["lib", "lib/modules", base]);
  for (const m of set.modules) {
    let dir = posix.dirname(`${base}/${m.path}`);
    while (dir.length > base.length) {
      dirs.add(dir);
      dir = posix.dirname(dir);
    }
  }
  const entries: CpioEntry[] = [...dirs]
    .sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b))
    .map((path) => ({ type: "dir", path, mode: 0o755 }));
  for (const m of set.modules) entries.push({ type: "file", path: `${base}/${m.path}`, data: m.data });
  entries.push({ type: "file", path: `${base}/${LOAD_ORDER_FILE}`, data: loadOrderText(set.modules) });
  entries.push({ type: "file", path: `${base}/modules.dep`, data: modulesDepText(set.modules) });
  entries.push({ type: "file", path: `${base}/modules.alias`, data: modulesAliasText(set.modules) });
  return entries;
}

/**
 * The modules of moduleEntries() output (e.g. read back from the cache's modules.cpio), in the order
 * they are listed there (the load order), their .modinfo read again; the derived files are ignored.
 */
export function modulesFromEntries(entries: readonly CpioEntry[]): Pick<ModuleSet, "release" | "modules"> {
  let release: string | undefined;
  const modules: KernelModule[] = [];
  for (const entry of entries) {
    const m = /^lib\/modules\/([^/]+)\/(.+\.ko)$/.exec(entry.path);
    if (m === null || entry.type !== "file") continue;
    if (release !== undefined && release !== m[1])
      throw new Error(`modules of two releases: ${release}, ${m[1]}`);
    release = m[1] as string;
    const data = typeof entry.data === "string" ? new TextEncoder().encode(entry.data) : entry.data;
    const info = parseModinfo(data, moduleNameOf(m[2] as string));
    modules.push({ name: info.name, path: m[2] as string, data, info });
  }
  if (release === undefined) throw new Error("no kernel modules in the entries");
  return { release, modules };
}
