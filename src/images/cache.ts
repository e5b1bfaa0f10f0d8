/**
 * Where guest images live and how we know one is complete: `$XDG_CACHE_HOME/vireo/images/<arch>/` (or
 * `~/.cache/vireo/images/<arch>/`) holding the artifacts and a manifest.json with their sizes and sha256.
 * A directory is replaced as a whole (built next to it, then renamed), under a lock file, so readers see
 * either the old image or the new one.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { processAlive } from "../host/process-alive.js";
import { UserError } from "../util/errors.js";

export const MANIFEST = "manifest.json";
export const MANIFEST_FORMAT = 1;

/** `$XDG_CACHE_HOME/vireo/images` (a relative XDG_CACHE_HOME is ignored, as the spec says). */
export function imagesRoot(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== "" && isAbsolute(xdg) ? xdg : join(home, ".cache");
  return join(base, "vireo", "images");
}

/** Writable guest disks made from the images (`$XDG_CACHE_HOME/vireo/disks`); fetches never touch them. */
export function disksRoot(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  return join(imagesRoot(env, home), "..", "disks");
}

export function imageDir(arch: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(imagesRoot(env), arch);
}

/** The private apt folder for one suite and architecture (kept between fetches: its lists are reused). */
export function aptDir(suite: string, arch: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(imagesRoot(env), "apt", `${suite}-${arch}`);
}

export interface ArtifactRecord {
  size: number;
  sha256: string;
}

export interface PackageRecord {
  name: string;
  version: string;
  /** What it was used for ("kernel", "busybox", "metapackage"). */
  role: string;
  /** The .deb's size and sha256 (absent for a metapackage that was only resolved). */
  size?: number;
  sha256?: string;
}

export interface Manifest {
  format: number;
  arch: string;
  /** Distribution and suite the packages came from ("debian trixie"). */
  source: string;
  mirror: string;
  created: string;
  kernelRelease: string;
  packages: PackageRecord[];
  /** File name in the image dir → size and sha256. */
  artifacts: Record<string, ArtifactRecord>;
  /** Inputs of ours baked into the artifacts (e.g. the init script) → sha256; a change means rebuild. */
  inputs: Record<string, string>;
  /** The kernel modules built into the image: load order, requested ones built into the kernel, and
   * optional (soft) dependencies the package does not have. */
  modules?: { order: string[]; builtin: string[]; unresolvedSoft: string[] };
  /** .deb files kept in debs/ (--keep-debs). */
  debs?: string[];
  /** The kernel version asked for with `vireo images fetch --kernel-version` (absent: the current one). */
  kernelPin?: string;
}

/** The manifest's kernel package record (role "kernel"), if any. */
export function kernelRecord(manifest: Manifest): PackageRecord | undefined {
  return manifest.packages.find((p) => p.role === "kernel");
}

export function sha256Bytes(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256File(path: string): string {
  return sha256Bytes(readFileSync(path));
}

export function artifactRecord(path: string): ArtifactRecord {
  const data = readFileSync(path);
  return { size: data.length, sha256: sha256Bytes(data) };
}

export function readManifest(dir: string): Manifest | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(dir, MANIFEST), "utf8"));
  } catch {
    return undefined;
  }
  const m = parsed as Partial<Manifest> | null;
  if (m === null || typeof m !== "object" || m.format !== MANIFEST_FORMAT) return undefined;
  if (typeof m.artifacts !== "object" || m.artifacts === null || !Array.isArray(m.packages)) return undefined;
  return m as Manifest;
}

/** Writes the manifest atomically (temp file + rename). */
export function writeManifest(dir: string, manifest: Manifest): void {
  const tmp = join(dir, `.${MANIFEST}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, join(dir, MANIFEST));
}

export interface CacheExpectation {
  /** Artifacts that must be present. */
  artifacts: readonly string[];
  /** Current fingerprints of our inputs; any difference from the manifest makes the cache stale. */
  inputs?: Record<string, string>;
  /** Hash every artifact (else sizes only). */
  verify?: boolean;
  /** The .deb files must have been kept. */
  debs?: boolean;
}

export type CacheState =
  | { state: "complete"; manifest: Manifest }
  | { state: "stale-inputs"; manifest: Manifest; reason: string }
  | { state: "missing" | "broken"; reason: string; manifest?: Manifest };

/** Whether `dir` holds a complete image matching `expect`, and if not, why. */
export function checkCache(dir: string, expect: CacheExpectation): CacheState {
  if (!existsSync(join(dir, MANIFEST))) return { state: "missing", reason: "not fetched yet" };
  const manifest = readManifest(dir);
  if (manifest === undefined) return { state: "broken", reason: `${MANIFEST} is unreadable` };
  for (const name of expect.artifacts) {
    const record = manifest.artifacts[name];
    if (record === undefined)
      return { state: "broken", reason: `${MANIFEST} does not list ${name}`, manifest };
    const path = join(dir, name);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return { state: "broken", reason: `${name} is missing`, manifest };
    }
    if (size !== record.size) return { state: "broken", reason: `${name} has the wrong size`, manifest };
    if (expect.verify && sha256File(path) !== record.sha256) {
      return { state: "broken", reason: `${name} does not match its sha256`, manifest };
    }
  }
  if (expect.debs) {
    const debs = manifest.debs ?? [];
    if (debs.length === 0 || !debs.every((d) => existsSync(join(dir, "debs", d)))) {
      return { state: "broken", reason: "the .deb files were not kept", manifest };
    }
  }
  for (const [key, value] of Object.entries(expect.inputs ?? {})) {
    if (manifest.inputs?.[key] !== value)
      return { state: "stale-inputs", reason: `${key} changed`, manifest };
  }
  return { state: "complete", manifest };
}

/**
 * Replaces `finalDir` with `builtDir` (both in the same folder): the old one is moved aside, the new one
 * renamed into place, then the old one removed.
 */
export function installDir(builtDir: string, finalDir: string): void {
  let aside: string | undefined;
  if (existsSync(finalDir)) {
    aside = `${finalDir}.old-${process.pid}`;
    rmSync(aside, { recursive: true, force: true });
    renameSync(finalDir, aside);
  }
  try {
    renameSync(builtDir, finalDir);
  } catch (e) {
    if (aside !== undefined) renameSync(aside, finalDir);
    throw e;
  }
  if (aside !== undefined) rmSync(aside, { recursive: true, force: true });
}

/**
 * Takes `<root>/.<name>.lock` (holding our pid), waiting for a live holder to finish (calling `onWait`
 * once) and taking over a dead one's. Returns the release function.
 */
export async function acquireLock(
  root: string,
  name: string,
  onWait?: (pid: number) => void,
  timeoutMs = 30 * 60_000,
): Promise<() => void> {
  const path = join(root, `.${name}.lock`);
  const started = Date.now();
  let waited = false;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let pid = Number.NaN;
    try {
      pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    } catch {
      continue; // released between our open and read
    }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !processAlive(pid)) {
      rmSync(path, { force: true });
      continue;
    }
    if (!waited) {
      waited = true;
      onWait?.(pid);
    }
    if (Date.now() - started > timeoutMs) {
      throw new UserError(`${path} is held by process ${pid}; remove it if that process is not vireo`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Removes build and swap leftovers of `<arch>` (call with the lock held). */
export function removeLeftovers(root: string, arch: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(`.${arch}.build-`) || name.startsWith(`${arch}.old-`)) {
      rmSync(join(root, name), { recursive: true, force: true });
    }
  }
}
