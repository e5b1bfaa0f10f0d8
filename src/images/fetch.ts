/**
 * The architecture-independent part of `vireo images fetch`: the up-to-date check, the lock, building in
 * a temp dir next to the cache and renaming it into place. An architecture plugs in as a Recipe.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { kernelVersionMatches } from "./apt.js";
import {
  acquireLock,
  type CacheState,
  checkCache,
  imageDir,
  imagesRoot,
  installDir,
  kernelRecord,
  type Manifest,
  removeLeftovers,
  writeManifest,
} from "./cache.js";
import type { ProgressStream } from "./progress.js";

export interface BuildContext {
  /** The dir to put the artifacts in (renamed into place afterwards). */
  work: string;
  /** Prints one step ("downloading…"); silent when quiet. */
  step: (line: string) => void;
  /** Where progress bars go, or undefined when quiet. */
  progress: ProgressStream | undefined;
  keepDebs: boolean;
  env: NodeJS.ProcessEnv;
  /** Mirror URI to use instead of the system's (tests). */
  mirror?: string;
  /** The kernel version to fetch instead of the current one (`--kernel-version`). */
  kernelVersion?: string;
}

export interface Recipe {
  arch: string;
  /** File names of the kernel and initrd in the image dir. */
  kernel: string;
  initrd: string;
  /** File name of the root disk image, if the recipe makes one. */
  rootDisk?: string;
  /** The files `vireo images fetch` names with their sizes (default: kernel, initrd and root disk). */
  summary?: readonly string[];
  /** Everything that must be present for the image to be complete. */
  artifacts: readonly string[];
  /** Fingerprints of our own inputs baked into the image (e.g. the init script). */
  inputs(): Record<string, string>;
  /** Builds every artifact into ctx.work and returns the manifest (written by the caller). */
  build(ctx: BuildContext): Promise<Manifest>;
  /**
   * Rebuilds in place what depends only on our inputs (e.g. the initramfs after an init script edit),
   * without downloading; returns undefined when it cannot (then a full build runs).
   */
  refresh?(dir: string, manifest: Manifest, ctx: BuildContext): Promise<Manifest | undefined>;
}

export interface FetchOptions {
  force?: boolean;
  keepDebs?: boolean;
  quiet?: boolean;
  /** Hash every artifact in the up-to-date check (else sizes only). */
  verify?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Where steps and progress go (default process.stderr). */
  stderr?: ProgressStream;
  mirror?: string;
  /**
   * Pin the kernel (`vireo images fetch --kernel-version`): a cached image of another kernel is rebuilt.
   * Without it a cached image is used whatever its kernel (pinned earlier or current when fetched).
   */
  kernelVersion?: string;
}

/** Whether the cached image holds the kernel `wanted` names (see kernelVersionMatches). */
function holdsKernel(manifest: Manifest, wanted: string): boolean {
  if (manifest.kernelPin === wanted) return true;
  const kernel = kernelRecord(manifest);
  if (kernel === undefined) return false;
  const flavour = kernel.name.slice(kernel.name.lastIndexOf("-") + 1);
  return kernelVersionMatches(kernel.name, kernel.version, wanted, flavour);
}

export interface FetchResult {
  dir: string;
  kernel: string;
  initrd: string;
  /** The cached root disk image (pristine: attach a copy), if the recipe makes one. */
  rootDisk?: string;
  manifest: Manifest;
  /** What happened: nothing, the initramfs was rebuilt, or everything was built. */
  action: "up-to-date" | "refreshed" | "built";
  reason?: string;
  seconds: number;
}

function result(
  recipe: Recipe,
  dir: string,
  manifest: Manifest,
  action: FetchResult["action"],
  started: number,
  reason?: string,
): FetchResult {
  const r: FetchResult = {
    dir,
    kernel: join(dir, recipe.kernel),
    initrd: join(dir, recipe.initrd),
    manifest,
    action,
    seconds: (performance.now() - started) / 1000,
  };
  if (recipe.rootDisk !== undefined) r.rootDisk = join(dir, recipe.rootDisk);
  if (reason !== undefined) r.reason = reason;
  return r;
}

/** Makes sure the recipe's image is in the cache, building it if needed. */
export async function fetchImage(recipe: Recipe, options: FetchOptions = {}): Promise<FetchResult> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const stderr = options.stderr ?? process.stderr;
  const quiet = options.quiet ?? false;
  const root = imagesRoot(env);
  const dir = imageDir(recipe.arch, env);
  const keepDebs = options.keepDebs ?? false;
  const expect = () => ({
    artifacts: recipe.artifacts,
    inputs: recipe.inputs(),
    verify: options.verify ?? false,
    debs: keepDebs,
  });
  const ctxFor = (work: string): BuildContext => {
    const ctx: BuildContext = {
      work,
      step: (line) => {
        if (!quiet) stderr.write(`${line}\n`);
      },
      progress: quiet ? undefined : stderr,
      keepDebs,
      env,
    };
    if (options.mirror !== undefined) ctx.mirror = options.mirror;
    if (options.kernelVersion !== undefined) ctx.kernelVersion = options.kernelVersion;
    return ctx;
  };
  const pin = options.kernelVersion;
  if (pin !== undefined && !/^[0-9][0-9A-Za-z.+~-]*$/.test(pin)) {
    throw new UserError(
      `--kernel-version ${JSON.stringify(pin)}: not a kernel version (e.g. 6.12.107 or 6.12.107-1)`,
    );
  }
  /** The cache's state, where a pinned kernel other than the cached one makes it stale. */
  const check = (): CacheState => {
    const s = checkCache(dir, expect());
    if (
      pin === undefined ||
      s.manifest === undefined ||
      s.state === "missing" ||
      holdsKernel(s.manifest, pin)
    )
      return s;
    const cached = kernelRecord(s.manifest)?.version ?? "unknown";
    return {
      state: "broken",
      reason: `the cached kernel is ${cached}, ${pin} was asked for`,
      manifest: s.manifest,
    };
  };

  let state: CacheState = check();
  if (state.state === "complete" && !options.force)
    return result(recipe, dir, state.manifest, "up-to-date", started);

  mkdirSync(root, { recursive: true });
  const release = await acquireLock(root, recipe.arch, (pid) => {
    if (!quiet) stderr.write(`waiting for another vireo (pid ${pid}) updating ${dir}…\n`);
  });
  try {
    // Someone else may have finished the job while we waited.
    state = check();
    if (state.state === "complete" && !options.force) {
      return result(recipe, dir, state.manifest, "up-to-date", started);
    }
    removeLeftovers(root, recipe.arch);
    if (state.state === "stale-inputs" && !options.force && recipe.refresh !== undefined) {
      const refreshed = await recipe.refresh(dir, state.manifest, ctxFor(dir));
      if (refreshed !== undefined) {
        writeManifest(dir, refreshed);
        return result(recipe, dir, refreshed, "refreshed", started, state.reason);
      }
    }
    const reason = options.force || state.state === "complete" ? "--force" : state.reason;
    const work = mkdtempSync(join(root, `.${recipe.arch}.build-`));
    chmodSync(work, 0o755);
    try {
      const manifest = await recipe.build(ctxFor(work));
      writeManifest(work, manifest);
      installDir(work, dir);
      return result(recipe, dir, manifest, "built", started, reason);
    } catch (e) {
      rmSync(work, { recursive: true, force: true });
      throw e;
    }
  } finally {
    release();
  }
}
