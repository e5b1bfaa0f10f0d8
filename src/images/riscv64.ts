/**
 * The default riscv64 guest: the kernel of Debian trixie's current linux-image-riscv64 (a raw RISC-V
 * `Image`, though the .deb calls it vmlinux), an initramfs of trixie's static busybox, our own /init
 * (guest/init, initramfs.ts) and the kernel modules for virtio-mmio devices and ext4 (modules.ts), and an ext4
 * root disk of the same pieces (rootfs.ts). Packages come through a private apt configuration (apt.ts).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import {
  AGENT_FILE,
  AGENT_PACKAGE,
  AGENT_RECIPE,
  agentGuestEntries,
  cachedAgent,
  fetchAgent,
  initramfsWithAgent,
  newEntries,
} from "./agent.js";
import { DEBIAN_KEYRING, PrivateApt, requireAptTools, systemMirror } from "./apt.js";
import {
  aptDir,
  artifactRecord,
  disksRoot,
  imageDir,
  kernelRecord,
  type Manifest,
  sha256Bytes,
  sha256File,
} from "./cache.js";
import { buildCpio, type CpioEntry, readCpio } from "./cpio.js";
import { extractFromDeb } from "./deb.js";
import { downloadKernelAndBusybox } from "./download.js";
import { type BuildContext, type FetchOptions, fetchImage, type Recipe } from "./fetch.js";
import { BUSYBOX_LINKS, INIT_INPUT, readInitScript } from "./initramfs.js";
import { extractModules, moduleEntries, modulesFromEntries } from "./modules.js";
import { buildExt4, busyboxApplets, ROOTFS_SIZE, rootfsEntries, sparseCopy } from "./rootfs.js";

// Shared with the x86_64 guest; re-exported for the riscv64 recipe's existing users.
export { BUSYBOX_LINKS, buildInitramfs, initramfsEntries, initScriptPath } from "./initramfs.js";

export const SUITE = "trixie";
export const KERNEL_META = "linux-image-riscv64";
export const BUSYBOX_PACKAGE = "busybox-static";
export const KERNEL_FILE = "Image";
export const INITRD_FILE = "initramfs.cpio.gz";
/** The guest's static busybox, kept so the initramfs can be rebuilt offline when the init changes. */
export const BUSYBOX_FILE = "busybox";
/** The extracted kernel modules (lib/modules/<release>/…, decompressed) as a newc archive, kept likewise. */
export const MODULES_FILE = "modules.cpio";
/** The ext4 root disk (sparse). `vireo run --root-disk` boots a writable copy of it, never this file. */
export const ROOTFS_FILE = "rootfs.ext4";

/**
 * Kernel modules the guest loads at boot, with everything they depend on: the virtio-mmio transport
 * and its drivers (virtio_console is built into Debian's riscv64 kernel; built-in ones are skipped),
 * and ext4 for the root disk. virtio_input carries the host's Ctrl-Alt-Del (stop's power-off request).
 */
export const GUEST_MODULES = [
  "virtio_mmio",
  "virtio_blk",
  "virtio_net",
  "virtio_console",
  "virtio_rng",
  "virtio_balloon",
  "vmw_vsock_virtio_transport",
  "virtio_input",
  "ext4",
];

/**
 * The version of what the build makes out of the packages (initramfs layout, root disk layout and size);
 * bump it to have existing caches rebuilt.
 */
export const LAYOUT_VERSION = "4";

/** Appended to the kernel command line to boot from the root disk attached as the first virtio-blk drive. */
export const ROOT_DISK_APPEND = "root=/dev/vda rw";

/** A RISC-V Linux `Image`: "RISCV\0\0\0" at 0x30 and "RSC\x05" at 0x38. */
export function isRiscvImage(header: Uint8Array): boolean {
  const text = Buffer.from(header.subarray(0x30, 0x3c)).toString("latin1");
  return text === "RISCV\0\0\0RSC\x05";
}

function inputs(): Record<string, string> {
  return {
    [INIT_INPUT]: sha256Bytes(readInitScript()),
    modules: GUEST_MODULES.join(" "),
    layout: LAYOUT_VERSION,
    agent: AGENT_RECIPE,
  };
}

/**
 * Writes the initramfs and the root disk into `dir` (under temp names, then renamed) from busybox, the
 * init script and the module entries; returns their artifact records.
 */
function buildGuestFiles(
  dir: string,
  busybox: Uint8Array,
  modules: readonly CpioEntry[],
  agentFiles: readonly CpioEntry[],
): Record<string, { size: number; sha256: string }> {
  const init = readInitScript();
  const agent = agentGuestEntries(agentFiles);
  const initrdTmp = join(dir, `.${INITRD_FILE}.${process.pid}`);
  const rootfsTmp = join(dir, `.${ROOTFS_FILE}.${process.pid}`);
  try {
    writeFileSync(initrdTmp, initramfsWithAgent(busybox, init, modules, agentFiles));
    const applets = busyboxApplets(busybox) ?? BUSYBOX_LINKS;
    const rootfs = rootfsEntries(busybox, init, modules, applets);
    buildExt4([...rootfs, ...newEntries(rootfs, agent)], rootfsTmp, { size: ROOTFS_SIZE });
    const records = { [INITRD_FILE]: artifactRecord(initrdTmp), [ROOTFS_FILE]: artifactRecord(rootfsTmp) };
    renameSync(initrdTmp, join(dir, INITRD_FILE));
    renameSync(rootfsTmp, join(dir, ROOTFS_FILE));
    return records;
  } finally {
    rmSync(initrdTmp, { force: true });
    rmSync(rootfsTmp, { force: true });
  }
}

async function build(ctx: BuildContext): Promise<Manifest> {
  requireAptTools();
  const mirror = ctx.mirror ?? systemMirror();
  const apt = new PrivateApt(aptDir(SUITE, "riscv64", ctx.env), {
    arch: "riscv64",
    suite: SUITE,
    mirror,
    keyring: DEBIAN_KEYRING,
  });
  apt.prepare();
  ctx.step(`updating the package lists of Debian ${SUITE} riscv64 from ${mirror}…`);
  await apt.update();

  const { kernel, kernelDeb, busyboxDeb, records } = await downloadKernelAndBusybox(
    apt,
    ctx,
    KERNEL_META,
    BUSYBOX_PACKAGE,
  );

  ctx.step("extracting the kernel, its modules and busybox…");
  const release = kernel.name.replace(/^linux-image-/, "");
  const kernelPath = join(ctx.work, KERNEL_FILE);
  const busyboxPath = join(ctx.work, BUSYBOX_FILE);
  // The Image comes first in the package and its reader stops there; the modules take a whole pass.
  const [, moduleSet] = await Promise.all([
    extractFromDeb(kernelDeb, [
      { names: [`boot/vmlinux-${release}`, `boot/Image-${release}`], dest: kernelPath },
    ]),
    extractModules(kernelDeb, release, GUEST_MODULES),
    extractFromDeb(busyboxDeb, [
      { names: ["usr/bin/busybox", "bin/busybox"], dest: busyboxPath, mode: 0o755 },
    ]),
  ]);
  const header = readFileSync(kernelPath).subarray(0, 0x40);
  if (!isRiscvImage(header))
    throw new UserError(`${kernel.name}: boot/vmlinux-${release} is not a RISC-V Image`);
  const modules = moduleEntries(moduleSet);
  writeFileSync(join(ctx.work, MODULES_FILE), buildCpio(modules));
  if (moduleSet.unresolvedSoft.length > 0) {
    ctx.step(`(optional module dependencies not in the package: ${moduleSet.unresolvedSoft.join(", ")})`);
  }

  const debDir = join(ctx.work, "debs");
  const agent = await fetchAgent(apt, ctx, debDir);

  ctx.step(`building initramfs (${moduleSet.modules.length} modules, ${AGENT_PACKAGE}) and ${ROOTFS_FILE}…`);
  const guest = buildGuestFiles(ctx.work, readFileSync(busyboxPath), modules, agent.entries);

  let debs: string[] | undefined;
  if (ctx.keepDebs) debs = [kernelDeb, busyboxDeb, ...agent.debs].map((p) => p.slice(debDir.length + 1));
  else rmSync(debDir, { recursive: true, force: true });

  const manifest: Manifest = {
    format: 1,
    arch: "riscv64",
    source: `debian ${SUITE}`,
    mirror,
    created: new Date().toISOString(),
    kernelRelease: release,
    packages: [...records, ...agent.records],
    artifacts: {
      [KERNEL_FILE]: artifactRecord(kernelPath),
      [INITRD_FILE]: guest[INITRD_FILE] as { size: number; sha256: string },
      [ROOTFS_FILE]: guest[ROOTFS_FILE] as { size: number; sha256: string },
      [BUSYBOX_FILE]: artifactRecord(busyboxPath),
      [MODULES_FILE]: artifactRecord(join(ctx.work, MODULES_FILE)),
      [AGENT_FILE]: artifactRecord(join(ctx.work, AGENT_FILE)),
    },
    modules: {
      order: moduleSet.modules.map((m) => m.name),
      builtin: moduleSet.builtin,
      unresolvedSoft: moduleSet.unresolvedSoft,
    },
    inputs: inputs(),
  };
  if (debs !== undefined) manifest.debs = debs;
  if (ctx.kernelVersion !== undefined) manifest.kernelPin = ctx.kernelVersion;
  return manifest;
}

/** A cached artifact that is present and matches its manifest record. */
function intact(dir: string, manifest: Manifest, name: string): boolean {
  const record = manifest.artifacts[name];
  const path = join(dir, name);
  return record !== undefined && existsSync(path) && sha256File(path) === record.sha256;
}

/**
 * After an edit of the init script (or a layout bump): rebuild the initramfs and the root disk from the
 * cached busybox and modules, no download. Not when the module list changed (that needs the package).
 */
async function refresh(dir: string, manifest: Manifest, ctx: BuildContext): Promise<Manifest | undefined> {
  if (manifest.inputs?.modules !== inputs().modules) return undefined;
  if (manifest.inputs?.agent !== inputs().agent) return undefined;
  for (const name of [BUSYBOX_FILE, MODULES_FILE, AGENT_FILE]) {
    if (!intact(dir, manifest, name)) return undefined;
  }
  ctx.step(`rebuilding initramfs and ${ROOTFS_FILE}…`);
  // The derived files (load-order, …) are written anew: their format may have changed with the layout.
  const modules = moduleEntries(modulesFromEntries(readCpio(readFileSync(join(dir, MODULES_FILE)))));
  const agent = cachedAgent(dir);
  const guest = buildGuestFiles(dir, readFileSync(join(dir, BUSYBOX_FILE)), modules, agent);
  return {
    ...manifest,
    artifacts: { ...manifest.artifacts, ...guest },
    inputs: inputs(),
  };
}

export const riscv64Recipe: Recipe = {
  arch: "riscv64",
  kernel: KERNEL_FILE,
  initrd: INITRD_FILE,
  rootDisk: ROOTFS_FILE,
  artifacts: [KERNEL_FILE, INITRD_FILE, ROOTFS_FILE, BUSYBOX_FILE, MODULES_FILE, AGENT_FILE],
  inputs,
  build,
  refresh,
};

export interface Riscv64Image {
  kernel: string;
  initrd: string;
  /** Which kernel it is: "linux-image-6.12.117+deb13-riscv64 6.12.117-1 (debian trixie)". */
  kernelPackage: string;
  /** The pristine root disk in the cache: attach a copy (prepareWritableRootDisk), not this file. */
  rootDisk: string;
}

/**
 * The cached riscv64 kernel, initramfs and root disk, fetched first if needed (what `vireo run` uses
 * without --kernel). Quiet: no steps or progress bar on stderr.
 */
export async function ensureRiscv64Image(
  options: { quiet?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Riscv64Image> {
  const fetchOptions: FetchOptions = {};
  if (options.quiet !== undefined) fetchOptions.quiet = options.quiet;
  if (options.env !== undefined) fetchOptions.env = options.env;
  const r = await fetchImage(riscv64Recipe, fetchOptions);
  const k = kernelRecord(r.manifest);
  const pin = r.manifest.kernelPin === undefined ? "" : `, pinned to ${r.manifest.kernelPin}`;
  return {
    kernel: r.kernel,
    initrd: r.initrd,
    kernelPackage: `${k?.name ?? "unknown kernel"} ${k?.version ?? ""} (${r.manifest.source}${pin})`,
    rootDisk: r.rootDisk ?? join(r.dir, ROOTFS_FILE),
  };
}

/** Where the pristine root disk is cached (it may not be fetched yet). */
export function rootDiskPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(imageDir("riscv64", env), ROOTFS_FILE);
}

/** The default writable root disk: `$XDG_CACHE_HOME/vireo/disks/riscv64-rootfs.ext4`. */
export function writableRootDiskPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(disksRoot(env), "riscv64-rootfs.ext4");
}

export interface WritableRootDiskOptions {
  /** Where the copy goes (default writableRootDiskPath()). */
  path?: string;
  /** Start over from the pristine disk even if the copy exists (always so when `path` is given). */
  fresh?: boolean;
  quiet?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * A writable root disk for `vireo run --root-disk`: the default image is fetched if needed, then its
 * rootfs.ext4 is copied (sparse) on first use to writableRootDiskPath(), which later runs reuse, so
 * what the guest writes persists; delete that file (or pass fresh) to start over. With `path` (tests,
 * throw-away VMs), a fresh copy is made there. The cached rootfs.ext4 itself is never handed out, so
 * the cache stays intact. Boot it with the image's kernel and initramfs and ROOT_DISK_APPEND.
 */
export async function prepareWritableRootDisk(
  options: WritableRootDiskOptions = {},
): Promise<Riscv64Image & { disk: string; created: boolean }> {
  const ensureOptions: { quiet?: boolean; env?: NodeJS.ProcessEnv } = { quiet: options.quiet ?? true };
  if (options.env !== undefined) ensureOptions.env = options.env;
  const image = await ensureRiscv64Image(ensureOptions);
  const disk = options.path ?? writableRootDiskPath(options.env);
  const fresh = options.fresh === true || options.path !== undefined;
  if (!fresh && existsSync(disk)) return { ...image, disk, created: false };
  mkdirSync(join(disk, ".."), { recursive: true });
  sparseCopy(image.rootDisk, disk);
  return { ...image, disk, created: true };
}

/** The kernel command line with the root disk's parameters appended. */
export function withRootDisk(append: string): string {
  return `${append.trim()} ${ROOT_DISK_APPEND}`.trim();
}
