/**
 * The QEMU guest agent in the default guests: Debian's qemu-guest-agent and the shared libraries it needs,
 * found by following the packages' declared `Depends` (first alternative of each), downloaded through the
 * image's apt and reduced to the agent binary, the dynamic loader and the libraries' .so files (no docs,
 * no gconv modules, no maintainer scripts), then to what the binary loads (its DT_NEEDED closure).
 * `/init` starts it on vsock (see guest/init).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { UserError } from "../util/errors.js";
import type { AptClient, PackageInfo } from "./apt.js";
import type { ArtifactRecord, PackageRecord } from "./cache.js";
import { artifactRecord } from "./cache.js";
import { buildCpio, type CpioEntry, readCpio } from "./cpio.js";
import { scanDeb } from "./deb.js";
import type { BuildContext } from "./fetch.js";
import { buildInitramfs, initramfsEntries } from "./initramfs.js";
import { formatMegabytes } from "./progress.js";

export const AGENT_PACKAGE = "qemu-guest-agent";
/** Where the binary lands in the guest (/init runs it from there). */
export const AGENT_BINARY = "usr/sbin/qemu-ga";
/** The vsock port the agent listens on: the host connects with `CONNECT 1234`. */
export const AGENT_VSOCK_PORT = 1234;
/** Bump when what is taken from the packages changes: cached images are rebuilt with a download. */
export const AGENT_RECIPE = `${AGENT_PACKAGE}/3`;
/** The extracted agent files as a newc archive in the image dir (rebuilds without a download). */
export const AGENT_FILE = "agent.cpio";

/**
 * The hard dependencies of `pkg` in `apt-cache depends pkg` output: the first alternative of each
 * `Depends:` group. Pre-Depends are left out (init-system-helpers and the like serve the package's
 * maintainer scripts, which never run here), as are virtual names (`<…>`).
 */
export function parseHardDepends(text: string, pkg: string): string[] {
  const out: string[] = [];
  let inPackage = false;
  let alternative = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    if (!/^\s/.test(line)) {
      inPackage = line.trim() === pkg;
      alternative = false;
      continue;
    }
    if (!inPackage) continue;
    const match = /^\s+(\|?)(\w+):\s+(<?)([^\s>]+)/.exec(line);
    if (match === null) continue;
    const [, bar, kind, virtual, name] = match as unknown as [string, string, string, string, string];
    // "|Depends: a" means the next line is a's alternative: only the first of a group counts.
    const first = !alternative;
    alternative = bar === "|";
    if (kind !== "Depends" || !first || virtual === "<") continue;
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** The package and everything it hard-depends on, breadth first, the package itself first. */
export async function resolveAgentPackages(apt: AptClient, root = AGENT_PACKAGE): Promise<string[]> {
  const seen = [root];
  for (let i = 0; i < seen.length; i++) {
    const name = seen[i] as string;
    for (const dep of parseHardDepends(await apt.depends(name), name)) {
      if (!seen.includes(dep)) seen.push(dep);
    }
  }
  return seen;
}

/**
 * Whether a package member goes into the guest: the agent binary, and shared objects (and their
 * SONAME links) straight in lib/, usr/lib/ or their multiarch folder; not gconv, audit or other
 * plug-in folders below those.
 */
export function wantedAgentMember(name: string): boolean {
  if (name === AGENT_BINARY) return true;
  return /^(usr\/)?lib(\/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?\/[^/]+\.so(\.[0-9][0-9.]*)?$/.test(name);
}

interface ProgramHeader {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** The program headers of a 64-bit little-endian ELF file ([] for anything else or a cut one). */
function programHeaders(b: Buffer): ProgramHeader[] {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return [];
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const out: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > b.length) return [];
    out.push({
      type: b.readUInt32LE(at),
      offset: Number(b.readBigUInt64LE(at + 8)),
      vaddr: Number(b.readBigUInt64LE(at + 16)),
      filesz: Number(b.readBigUInt64LE(at + 32)),
    });
  }
  return out;
}

function cString(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.subarray(at, end < 0 ? b.length : end).toString("latin1");
}

/** The ELF program interpreter (PT_INTERP) of a 64-bit little-endian executable, if it has one. */
export function elfInterpreter(elf: Uint8Array): string | undefined {
  const b = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  const interp = programHeaders(b).find((h) => h.type === 3);
  if (interp === undefined || interp.offset + interp.filesz > b.length) return undefined;
  return cString(b, interp.offset);
}

/** The DT_NEEDED names of a 64-bit little-endian ELF file (the libraries it loads directly). */
export function elfNeeded(elf: Uint8Array): string[] {
  const b = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  const headers = programHeaders(b);
  const dynamic = headers.find((h) => h.type === 2);
  if (dynamic === undefined) return [];
  const needed: number[] = [];
  let strtab: number | undefined;
  for (let at = dynamic.offset; at + 16 <= Math.min(b.length, dynamic.offset + dynamic.filesz); at += 16) {
    const tag = Number(b.readBigUInt64LE(at));
    const value = Number(b.readBigUInt64LE(at + 8));
    if (tag === 0) break;
    if (tag === 1) needed.push(value);
    else if (tag === 5) strtab = value;
  }
  if (strtab === undefined) return [];
  // DT_STRTAB is an address: the PT_LOAD segment holding it says where it is in the file.
  const load = headers.find((h) => h.type === 1 && strtab >= h.vaddr && strtab < h.vaddr + h.filesz);
  if (load === undefined) return [];
  const base = load.offset + (strtab - load.vaddr);
  return needed.map((n) => cString(b, base + n)).filter((name) => name !== "");
}

/**
 * The members the agent loads: the binary, then the libraries its DT_NEEDED names reach (through the
 * SONAME links), each with the links that lead to it; everything else the packages ship is left out.
 */
export function loadedMembers(
  files: ReadonlyMap<string, Uint8Array>,
  links: ReadonlyMap<string, string>,
): { files: Map<string, Uint8Array>; links: Map<string, string>; missing: string[] } {
  const byName = new Map<string, string>();
  for (const p of [...files.keys(), ...links.keys()]) {
    if (p !== AGENT_BINARY && !byName.has(posix.basename(p))) byName.set(posix.basename(p), p);
  }
  const keptFiles = new Map<string, Uint8Array>();
  const keptLinks = new Map<string, string>();
  const missing: string[] = [];
  const queue = [AGENT_BINARY];
  const seen = new Set<string>();
  while (queue.length > 0) {
    let path = queue.shift() as string;
    for (let hops = 0; links.has(path) && hops < 8; hops++) {
      keptLinks.set(path, links.get(path) as string);
      path = posix.join(posix.dirname(path), links.get(path) as string).replace(/^\/+/, "");
    }
    const data = files.get(path);
    if (data === undefined || keptFiles.has(path)) continue;
    keptFiles.set(path, data);
    for (const name of elfNeeded(data)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const at = byName.get(name);
      if (at === undefined) missing.push(name);
      else queue.push(at);
    }
  }
  // The loader itself, wherever the packages put it, under the name the binary asks for.
  const interp = files.get(AGENT_BINARY) && elfInterpreter(files.get(AGENT_BINARY) as Uint8Array);
  if (interp !== undefined && interp !== "") {
    const real = [...files.keys()].find((p) => posix.basename(p) === posix.basename(interp));
    if (real !== undefined) keptFiles.set(real, files.get(real) as Uint8Array);
  }
  return { files: keptFiles, links: keptLinks, missing };
}

/**
 * The guest entries for the extracted members (files and links, paths as in the packages): their
 * folders first, then the members, then a link at the binary's interpreter path if no package put
 * one there (the packages use /usr/lib, which our guests do not merge with /lib).
 */
export function agentEntries(
  allFiles: ReadonlyMap<string, Uint8Array>,
  allLinks: ReadonlyMap<string, string>,
): CpioEntry[] {
  if (!allFiles.has(AGENT_BINARY)) throw new UserError(`${AGENT_PACKAGE} has no ${AGENT_BINARY}`);
  const { files, links, missing } = loadedMembers(allFiles, allLinks);
  if (missing.length > 0) {
    throw new UserError(`${AGENT_PACKAGE} needs ${missing.join(", ")}, which none of its dependencies ship`);
  }
  const binary = files.get(AGENT_BINARY) as Uint8Array;
  const extra = new Map<string, string>();
  const interp = elfInterpreter(binary)?.replace(/^\/+/, "");
  if (interp !== undefined && !files.has(interp) && !links.has(interp)) {
    const base = posix.basename(interp);
    const real = [...files.keys()].find((p) => posix.basename(p) === base);
    if (real === undefined) throw new UserError(`the dynamic loader /${interp} is in none of the packages`);
    extra.set(interp, posix.relative(posix.dirname(interp), real));
  }
  const paths = [...files.keys(), ...links.keys(), ...extra.keys()];
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let d = posix.dirname(p); d !== "."; d = posix.dirname(d)) dirs.add(d);
  }
  const entries: CpioEntry[] = [...dirs]
    .sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b))
    .map((path) => ({ type: "dir", path, mode: 0o755 }));
  for (const [path, data] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    // The kernel runs the loader as a program too: it needs the execute bit like the binary.
    const program = path === AGENT_BINARY || /^ld-.*\.so/.test(posix.basename(path));
    entries.push({ type: "file", path, data, mode: program ? 0o755 : 0o644 });
  }
  for (const [path, target] of [...links, ...extra].sort(([a], [b]) => a.localeCompare(b))) {
    entries.push({ type: "symlink", path, target });
  }
  return entries;
}

export interface AgentBuild {
  entries: CpioEntry[];
  records: PackageRecord[];
  debs: string[];
}

/**
 * Resolves, downloads (checked against the archive's sha256) and extracts the agent and its libraries
 * into guest entries.
 */
export async function downloadAgent(apt: AptClient, ctx: BuildContext, debDir: string): Promise<AgentBuild> {
  const names = await resolveAgentPackages(apt);
  const infos: PackageInfo[] = await Promise.all(names.map((n) => apt.show(n)));
  const total = infos.reduce((sum, p) => sum + p.size, 0);
  ctx.step(
    `downloading ${AGENT_PACKAGE} and its libraries: ${names.join(", ")} (${formatMegabytes(total)} MB)…`,
  );
  const debs = await apt.download(infos, debDir);
  const files = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  const records: PackageRecord[] = [];
  for (const [i, deb] of debs.entries()) {
    const info = infos[i] as PackageInfo;
    const record: ArtifactRecord = artifactRecord(deb);
    if (info.sha256 !== "" && info.sha256 !== record.sha256) {
      throw new UserError(
        `${info.name} ${info.version}: the downloaded .deb does not match the archive's sha256`,
      );
    }
    records.push({
      name: info.name,
      version: info.version,
      role: i === 0 ? "agent" : "agent-library",
      ...record,
    });
    await scanDeb(
      deb,
      wantedAgentMember,
      (name, data) => {
        files.set(name, data);
        return false;
      },
      (name, target) => {
        links.set(name, target);
      },
    );
  }
  return { entries: agentEntries(files, links), records, debs };
}

/** `extra` without the folders `base` already has (an archive may list a path once only). */
export function newEntries(base: readonly CpioEntry[], extra: readonly CpioEntry[]): CpioEntry[] {
  const have = new Set(base.map((e) => e.path));
  return extra.filter((e) => e.type !== "dir" || !have.has(e.path));
}

/**
 * qemu-ga's guest-shutdown runs `/sbin/shutdown -P|-H|-r +0 MESSAGE` and waits for status 0; busybox
 * has no shutdown applet, so this asks PID 1 (guest/init) the way busybox's poweroff, halt and reboot
 * do, by signal.
 */
export const SHUTDOWN_SHIM = `#!/bin/busybox sh
# Written by vireo for qemu-ga's guest-shutdown (see src/images/agent.ts).
case "$1" in
-r) exec /bin/busybox reboot ;;
-H) exec /bin/busybox halt ;;
*) exec /bin/busybox poweroff ;;
esac
`;

/** The guest files the agent needs beside its own: the shutdown command it runs. */
export function agentSupportEntries(): CpioEntry[] {
  return [{ type: "file", path: "sbin/shutdown", data: SHUTDOWN_SHIM, mode: 0o755 }];
}

// What every default image's recipe does with the agent (riscv64.ts, x86_64.ts): one code path.

/** Downloads the agent (downloadAgent) and keeps its files as AGENT_FILE in the build folder. */
export async function fetchAgent(apt: AptClient, ctx: BuildContext, debDir: string): Promise<AgentBuild> {
  const agent = await downloadAgent(apt, ctx, debDir);
  writeFileSync(join(ctx.work, AGENT_FILE), buildCpio(agent.entries));
  return agent;
}

/** The agent's files kept in an image folder (AGENT_FILE), for a rebuild without a download. */
export function cachedAgent(dir: string): CpioEntry[] {
  return readCpio(readFileSync(join(dir, AGENT_FILE)));
}

/** The agent's files and the support files it needs in the guest. */
export function agentGuestEntries(agentFiles: readonly CpioEntry[]): CpioEntry[] {
  return [...agentFiles, ...agentSupportEntries()];
}

/** The gzip'd initramfs of busybox, /init, the modules and the agent (its folders listed once). */
export function initramfsWithAgent(
  busybox: Uint8Array,
  init: Uint8Array | string,
  modules: readonly CpioEntry[],
  agentFiles: readonly CpioEntry[],
): Uint8Array {
  const agent = newEntries(initramfsEntries(busybox, init, modules), agentGuestEntries(agentFiles));
  return buildInitramfs(busybox, init, [...modules, ...agent]);
}
