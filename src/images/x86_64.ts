/**
 * The default x86_64 guest: the kernel of the system's own Debian suite (the versioned package that
 * `linux-image-amd64` depends on) as shipped (`bzImage`), the uncompressed ELF inside it (`vmlinux`:
 * the payload the bzImage's setup header points at, decompressed with xz; Debian builds it with a PVH
 * entry note, so the KVM engine can enter it directly and skip the bzImage's decompressor, which is
 * very slow on nested hosts), and an initramfs of the suite's static busybox, our /init (guest/init,
 * shared with riscv64), the kernel modules for virtio-mmio devices and ext4, and the suite's QEMU guest
 * agent with its libraries (agent.ts, the same code path as riscv64's).
 *
 * The packages come through the system's own apt (its sources, lists and architecture: this needs an
 * amd64 host), with `apt-get download` into the build folder: nothing is installed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { isBzImage } from "../machine/x86-microvm/bzimage.js";
import { parsePvhKernel } from "../machine/x86-microvm/pvh.js";
import { UserError } from "../util/errors.js";
import {
  AGENT_FILE,
  AGENT_PACKAGE,
  AGENT_RECIPE,
  cachedAgent,
  fetchAgent,
  initramfsWithAgent,
} from "./agent.js";
import { hostDebianArch, requireAptTools, SystemApt, systemMirror, systemSuite } from "./apt.js";
import { artifactRecord, type Manifest, sha256Bytes, sha256File } from "./cache.js";
import { buildCpio, type CpioEntry, readCpio } from "./cpio.js";
import { extractFromDeb } from "./deb.js";
import { downloadKernelAndBusybox } from "./download.js";
import { type BuildContext, type FetchOptions, fetchImage, type Recipe } from "./fetch.js";
import { INIT_INPUT, readInitScript } from "./initramfs.js";
import { extractModules, moduleEntries, modulesFromEntries, NEEDS_XZ, NEEDS_ZSTD } from "./modules.js";
import { GUEST_MODULES } from "./riscv64.js";

export const ARCH = "x86_64";
/** The Debian architecture the packages are for. */
export const DEBIAN_ARCH = "amd64";
export const KERNEL_META = "linux-image-amd64";
export const BUSYBOX_PACKAGE = "busybox-static";
/** The kernel as the package ships it (boot/vmlinuz-<release>). */
export const BZIMAGE_FILE = "bzImage";
/** The uncompressed kernel ELF from inside the bzImage (booted through its PVH entry). */
export const VMLINUX_FILE = "vmlinux";
export const INITRD_FILE = "initramfs.cpio.gz";
export const BUSYBOX_FILE = "busybox";
export const MODULES_FILE = "modules.cpio";

/**
 * The same modules as the riscv64 guest (virtio_console is a module here too), less virtio_input: the
 * x86 board attaches no virtio keyboard.
 */
export const X86_GUEST_MODULES = GUEST_MODULES.filter((m) => m !== "virtio_input");

/** Bump to have existing x86_64 caches rebuilt (initramfs layout, what is extracted). */
export const LAYOUT_VERSION = "1";

// ---------------------------------------------------------------------------------------------------------
// The bzImage's payload

/** Setup header fields (Documentation/arch/x86/boot.rst) for the compressed kernel. */
const HDR_SETUP_SECTS = 0x1f1;
const HDR_VERSION = 0x206;
const HDR_PAYLOAD_OFFSET = 0x248;
const HDR_PAYLOAD_LENGTH = 0x24c;
/** payload_offset/payload_length exist from boot protocol 2.08. */
const PAYLOAD_MIN_VERSION = 0x0208;

export type PayloadFormat = "xz" | "gzip" | "zstd" | "lzma" | "bzip2" | "lzo" | "lz4" | "unknown";

export interface BzImagePayload {
  /** File offset of the compressed kernel: (setup_sects + 1) · 512 + payload_offset. */
  offset: number;
  /** payload_length bytes, the last 4 of which are the decompressed size (little-endian). */
  length: number;
  format: PayloadFormat;
  /** The size the build recorded after the compressed stream. */
  uncompressedSize: number;
}

function payloadFormat(head: Uint8Array): PayloadFormat {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (starts(0x1f, 0x8b)) return "gzip";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  if (starts(0x5d, 0x00, 0x00)) return "lzma";
  if (starts(0x42, 0x5a, 0x68)) return "bzip2";
  if (starts(0x89, 0x4c, 0x5a, 0x4f)) return "lzo";
  if (starts(0x02, 0x21, 0x4c, 0x18)) return "lz4";
  return "unknown";
}

/** Where a bzImage's compressed kernel is (from its setup header), or a UserError naming `name`. */
export function bzImagePayload(bytes: Uint8Array, name = "bzImage"): BzImagePayload {
  if (!isBzImage(bytes)) throw new UserError(`${name}: not an x86 bzImage (no "HdrS" at 0x202)`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(HDR_VERSION, true);
  if (version < PAYLOAD_MIN_VERSION || bytes.length < HDR_PAYLOAD_LENGTH + 4) {
    throw new UserError(`${name}: boot protocol 0x${version.toString(16)} has no payload fields (need 2.08)`);
  }
  const setupSects = (bytes[HDR_SETUP_SECTS] as number) || 4;
  const offset = (setupSects + 1) * 512 + v.getUint32(HDR_PAYLOAD_OFFSET, true);
  const length = v.getUint32(HDR_PAYLOAD_LENGTH, true);
  if (length < 8 || offset + length > bytes.length) {
    throw new UserError(
      `${name}: the setup header's payload (${length} bytes at ${offset}) is not in the file`,
    );
  }
  return {
    offset,
    length,
    format: payloadFormat(bytes.subarray(offset, offset + 6)),
    uncompressedSize: v.getUint32(offset + length - 4, true),
  };
}

function decompressWith(tool: string, args: string[], input: Uint8Array, missing: string): Uint8Array {
  const r = spawnSync(tool, args, { input, maxBuffer: 1 << 30 });
  if (r.error !== undefined) {
    if ((r.error as NodeJS.ErrnoException).code === "ENOENT") throw new UserError(missing);
    throw r.error;
  }
  if (r.status !== 0) throw new UserError(`${tool} ${args.join(" ")} failed: ${r.stderr.toString().trim()}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
}

/**
 * The uncompressed kernel inside a bzImage: its payload decompressed (xz with the `xz` command, also
 * gzip and zstd), checked against the size recorded after it and for an x86-64 ELF header.
 */
export function extractVmlinux(bzImage: Uint8Array, name = "bzImage"): Uint8Array {
  const p = bzImagePayload(bzImage, name);
  // The stream without the 4-byte size the kernel build appends to it.
  const stream = bzImage.subarray(p.offset, p.offset + p.length - 4);
  let out: Uint8Array;
  switch (p.format) {
    case "xz":
      out = decompressWith("xz", ["-dc", "--single-stream"], stream, NEEDS_XZ);
      break;
    case "gzip":
      out = new Uint8Array(gunzipSync(stream));
      break;
    case "zstd":
      out = decompressWith("zstd", ["-dc"], stream, NEEDS_ZSTD);
      break;
    default:
      throw new UserError(`${name}: a ${p.format}-compressed kernel (vireo unpacks xz, gzip and zstd)`);
  }
  if (out.length !== p.uncompressedSize) {
    throw new UserError(
      `${name}: the payload decompressed to ${out.length} bytes, the header says ${p.uncompressedSize}`,
    );
  }
  const elf = out[0] === 0x7f && out[1] === 0x45 && out[2] === 0x4c && out[3] === 0x46;
  if (!elf || out[4] !== 2 || out[18] !== 62 || out[19] !== 0) {
    throw new UserError(`${name}: the payload is not an x86-64 ELF kernel`);
  }
  return out;
}

/** Whether an ELF kernel has a PVH entry note the KVM engine can boot (parsePvhKernel accepts it). */
export function hasPvhEntry(vmlinux: Uint8Array): boolean {
  try {
    parsePvhKernel(vmlinux, VMLINUX_FILE);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The recipe

function inputs(): Record<string, string> {
  return {
    [INIT_INPUT]: sha256Bytes(readInitScript()),
    modules: X86_GUEST_MODULES.join(" "),
    layout: LAYOUT_VERSION,
    agent: AGENT_RECIPE,
  };
}

/** Writes the initramfs into `dir` (temp name, then renamed); returns its artifact record. */
function writeInitramfs(
  dir: string,
  busybox: Uint8Array,
  modules: readonly CpioEntry[],
  agentFiles: readonly CpioEntry[],
): { size: number; sha256: string } {
  const tmp = join(dir, `.${INITRD_FILE}.${process.pid}`);
  try {
    writeFileSync(tmp, initramfsWithAgent(busybox, readInitScript(), modules, agentFiles));
    const record = artifactRecord(tmp);
    renameSync(tmp, join(dir, INITRD_FILE));
    return record;
  } finally {
    rmSync(tmp, { force: true });
  }
}

async function build(ctx: BuildContext): Promise<Manifest> {
  requireAptTools();
  const hostArch = hostDebianArch();
  if (hostArch !== DEBIAN_ARCH) {
    throw new UserError(
      `x86_64 guest images come from the system's own apt, which serves ${hostArch ?? "no Debian architecture"} here (an amd64 host is needed); use --kernel/--initrd with your own files`,
    );
  }
  const suite = systemSuite() ?? "(system)";
  let mirror: string;
  try {
    mirror = ctx.mirror ?? systemMirror();
  } catch {
    mirror = "(system apt sources)";
  }
  const apt = new SystemApt({ arch: DEBIAN_ARCH, suite });
  const { kernel, busybox, kernelDeb, busyboxDeb, records } = await downloadKernelAndBusybox(
    apt,
    ctx,
    KERNEL_META,
    BUSYBOX_PACKAGE,
    ` (the system's apt, Debian ${suite})`,
  );

  ctx.step("extracting the kernel, its modules and busybox…");
  const release = kernel.name.replace(/^linux-image-/, "");
  const bzImagePath = join(ctx.work, BZIMAGE_FILE);
  const busyboxPath = join(ctx.work, BUSYBOX_FILE);
  const [, moduleSet] = await Promise.all([
    extractFromDeb(kernelDeb, [{ names: [`boot/vmlinuz-${release}`], dest: bzImagePath }]),
    extractModules(kernelDeb, release, X86_GUEST_MODULES),
    extractFromDeb(busyboxDeb, [
      { names: ["usr/bin/busybox", "bin/busybox"], dest: busyboxPath, mode: 0o755 },
    ]),
  ]);
  const busyboxBytes = readFileSync(busyboxPath);
  if (busyboxBytes.readUInt16LE(18) !== 62)
    throw new UserError(`${busybox.name}: busybox is not an x86-64 ELF`);

  ctx.step(`decompressing vmlinux from ${BZIMAGE_FILE}…`);
  const vmlinux = extractVmlinux(readFileSync(bzImagePath), `${kernel.name}: boot/vmlinuz-${release}`);
  writeFileSync(join(ctx.work, VMLINUX_FILE), vmlinux);
  if (!hasPvhEntry(vmlinux)) {
    ctx.step(`(${VMLINUX_FILE} has no PVH entry note: vireo run will boot the ${BZIMAGE_FILE})`);
  }
  const modules = moduleEntries(moduleSet);
  writeFileSync(join(ctx.work, MODULES_FILE), buildCpio(modules));
  if (moduleSet.unresolvedSoft.length > 0) {
    ctx.step(`(optional module dependencies not in the package: ${moduleSet.unresolvedSoft.join(", ")})`);
  }

  const debDir = join(ctx.work, "debs");
  const agent = await fetchAgent(apt, ctx, debDir);

  ctx.step(`building initramfs (${moduleSet.modules.length} modules, ${AGENT_PACKAGE})…`);
  const initrd = writeInitramfs(ctx.work, busyboxBytes, modules, agent.entries);

  let debs: string[] | undefined;
  if (ctx.keepDebs) debs = [kernelDeb, busyboxDeb, ...agent.debs].map((p) => p.slice(debDir.length + 1));
  else rmSync(debDir, { recursive: true, force: true });

  const manifest: Manifest = {
    format: 1,
    arch: ARCH,
    source: `debian ${suite}`,
    mirror,
    created: new Date().toISOString(),
    kernelRelease: release,
    packages: [...records, ...agent.records],
    artifacts: {
      [BZIMAGE_FILE]: artifactRecord(bzImagePath),
      [VMLINUX_FILE]: artifactRecord(join(ctx.work, VMLINUX_FILE)),
      [INITRD_FILE]: initrd,
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

function intact(dir: string, manifest: Manifest, name: string): boolean {
  const record = manifest.artifacts[name];
  const path = join(dir, name);
  return record !== undefined && existsSync(path) && sha256File(path) === record.sha256;
}

/** After an edit of the init script: the initramfs again from the cached busybox and modules, no download. */
async function refresh(dir: string, manifest: Manifest, ctx: BuildContext): Promise<Manifest | undefined> {
  const now = inputs();
  // A cache from before the agent (or another recipe of it) needs its packages: a full build.
  if (manifest.inputs?.modules !== now.modules || manifest.inputs?.layout !== now.layout) return undefined;
  if (manifest.inputs?.agent !== now.agent) return undefined;
  for (const name of [BUSYBOX_FILE, MODULES_FILE, AGENT_FILE]) {
    if (!intact(dir, manifest, name)) return undefined;
  }
  ctx.step("rebuilding initramfs…");
  const modules = moduleEntries(modulesFromEntries(readCpio(readFileSync(join(dir, MODULES_FILE)))));
  const initrd = writeInitramfs(dir, readFileSync(join(dir, BUSYBOX_FILE)), modules, cachedAgent(dir));
  return { ...manifest, artifacts: { ...manifest.artifacts, [INITRD_FILE]: initrd }, inputs: now };
}

export const x86Recipe: Recipe = {
  arch: ARCH,
  kernel: BZIMAGE_FILE,
  initrd: INITRD_FILE,
  summary: [BZIMAGE_FILE, VMLINUX_FILE, INITRD_FILE],
  artifacts: [BZIMAGE_FILE, VMLINUX_FILE, INITRD_FILE, BUSYBOX_FILE, MODULES_FILE, AGENT_FILE],
  inputs,
  build,
  refresh,
};

export interface X86Image {
  /** The image folder. */
  dir: string;
  /** The kernel as Debian ships it. */
  bzImage: string;
  /** The uncompressed kernel ELF (PVH entry). */
  vmlinux: string;
  initrd: string;
}

/**
 * The cached x86_64 kernel (bzImage and vmlinux) and initramfs, fetched first if needed (what
 * `vireo run --arch x86_64` uses without --kernel).
 */
export async function ensureX86Image(
  options: { quiet?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<X86Image> {
  const fetchOptions: FetchOptions = {};
  if (options.quiet !== undefined) fetchOptions.quiet = options.quiet;
  if (options.env !== undefined) fetchOptions.env = options.env;
  const r = await fetchImage(x86Recipe, fetchOptions);
  return { dir: r.dir, bzImage: r.kernel, vmlinux: join(r.dir, VMLINUX_FILE), initrd: r.initrd };
}
