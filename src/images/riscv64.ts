/**
 * The default riscv64 guest: the kernel of Debian trixie's current linux-image-riscv64 (a raw RISC-V
 * `Image`, though the .deb calls it vmlinux) and an initramfs of trixie's static busybox plus our own
 * /init (guest/riscv64/init). Packages come through a private apt configuration (apt.ts).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { UserError } from "../util/errors.js";
import { DEBIAN_KEYRING, PrivateApt, requireAptTools, resolveKernelPackage, systemMirror } from "./apt.js";
import { aptDir, artifactRecord, type Manifest, sha256Bytes, sha256File } from "./cache.js";
import { buildCpio, type CpioEntry } from "./cpio.js";
import { extractFromDeb } from "./deb.js";
import { type BuildContext, type FetchOptions, fetchImage, type Recipe } from "./fetch.js";
import { formatMegabytes, ProgressBar } from "./progress.js";

export const SUITE = "trixie";
export const KERNEL_META = "linux-image-riscv64";
export const BUSYBOX_PACKAGE = "busybox-static";
export const KERNEL_FILE = "Image";
export const INITRD_FILE = "initramfs.cpio.gz";
/** The guest's static busybox, kept so the initramfs can be rebuilt offline when the init changes. */
export const BUSYBOX_FILE = "busybox";

/** Applets linked in the initramfs: what /init and a first shell need before `busybox --install`. */
export const BUSYBOX_LINKS = [
  "sh",
  "ash",
  "cat",
  "chmod",
  "cttyhack",
  "date",
  "dmesg",
  "echo",
  "grep",
  "halt",
  "head",
  "hostname",
  "ln",
  "ls",
  "mkdir",
  "mount",
  "poweroff",
  "reboot",
  "rm",
  "setsid",
  "sleep",
  "sort",
  "tr",
  "umount",
  "uname",
];

/** Where the init script's source lives (dist/src/images/ → guest/riscv64/init). */
export function initScriptPath(): string {
  return fileURLToPath(new URL("../../../guest/riscv64/init", import.meta.url));
}

function readInitScript(): Uint8Array {
  const path = initScriptPath();
  try {
    return readFileSync(path);
  } catch {
    throw new UserError(`the guest init script ${path} is missing (is the vireo install complete?)`);
  }
}

/** The initramfs contents, in archive order (directories first). */
export function initramfsEntries(busybox: Uint8Array, init: Uint8Array | string): CpioEntry[] {
  const entries: CpioEntry[] = [];
  for (const dir of ["bin", "sbin", "dev", "etc", "proc", "sys", "root", "usr", "usr/bin", "usr/sbin"]) {
    entries.push({ type: "dir", path: dir, mode: dir === "root" ? 0o700 : 0o755 });
  }
  entries.push({ type: "dir", path: "tmp", mode: 0o1777 });
  entries.push({ type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 });
  entries.push({ type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 });
  entries.push({ type: "file", path: "bin/busybox", data: busybox, mode: 0o755 });
  for (const applet of BUSYBOX_LINKS)
    entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
  entries.push({ type: "file", path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" });
  entries.push({ type: "file", path: "etc/group", data: "root:x:0:\n" });
  entries.push({ type: "file", path: "etc/hostname", data: "vireo\n" });
  entries.push({ type: "file", path: "init", data: init, mode: 0o755 });
  return entries;
}

/** gzip -9 of the newc archive. */
export function buildInitramfs(busybox: Uint8Array, init: Uint8Array | string): Uint8Array {
  return gzipSync(buildCpio(initramfsEntries(busybox, init)), { level: 9 });
}

/** A RISC-V Linux `Image`: "RISCV\0\0\0" at 0x30 and "RSC\x05" at 0x38. */
export function isRiscvImage(header: Uint8Array): boolean {
  const text = Buffer.from(header.subarray(0x30, 0x3c)).toString("latin1");
  return text === "RISCV\0\0\0RSC\x05";
}

function inputs(): Record<string, string> {
  return { "guest/riscv64/init": sha256Bytes(readInitScript()) };
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

  const kernelPackage = resolveKernelPackage(await apt.depends(KERNEL_META), KERNEL_META);
  const [meta, kernel, busybox] = await Promise.all([
    apt.show(KERNEL_META),
    apt.show(kernelPackage),
    apt.show(BUSYBOX_PACKAGE),
  ]);
  ctx.step(`resolving ${KERNEL_META} → ${kernel.name} ${kernel.version}`);

  const total = kernel.size + busybox.size;
  ctx.step(
    `downloading ${kernel.name} (${formatMegabytes(kernel.size)} MB) and ${busybox.name} ${busybox.version} (${formatMegabytes(
      busybox.size,
    )} MB)…`,
  );
  const debDir = join(ctx.work, "debs");
  const bar = ctx.progress === undefined ? undefined : new ProgressBar(ctx.progress, total, "downloading");
  let kernelDeb: string;
  let busyboxDeb: string;
  try {
    [kernelDeb, busyboxDeb] = (await apt.download([kernel, busybox], debDir, (n) => bar?.update(n))) as [
      string,
      string,
    ];
  } catch (e) {
    bar?.abandon();
    throw e;
  }
  bar?.finish();
  const kernelDebRecord = artifactRecord(kernelDeb);
  const busyboxDebRecord = artifactRecord(busyboxDeb);
  for (const [info, record] of [
    [kernel, kernelDebRecord],
    [busybox, busyboxDebRecord],
  ] as const) {
    if (info.sha256 !== "" && info.sha256 !== record.sha256) {
      throw new UserError(
        `${info.name} ${info.version}: the downloaded .deb does not match the archive's sha256`,
      );
    }
  }

  ctx.step("extracting the kernel and busybox…");
  const release = kernel.name.replace(/^linux-image-/, "");
  const kernelPath = join(ctx.work, KERNEL_FILE);
  const busyboxPath = join(ctx.work, BUSYBOX_FILE);
  await extractFromDeb(kernelDeb, [
    { names: [`boot/vmlinux-${release}`, `boot/Image-${release}`], dest: kernelPath },
  ]);
  await extractFromDeb(busyboxDeb, [
    { names: ["usr/bin/busybox", "bin/busybox"], dest: busyboxPath, mode: 0o755 },
  ]);
  const header = readFileSync(kernelPath).subarray(0, 0x40);
  if (!isRiscvImage(header))
    throw new UserError(`${kernel.name}: boot/vmlinux-${release} is not a RISC-V Image`);

  ctx.step("building initramfs…");
  writeFileSync(join(ctx.work, INITRD_FILE), buildInitramfs(readFileSync(busyboxPath), readInitScript()));

  let debs: string[] | undefined;
  if (ctx.keepDebs) debs = [kernelDeb, busyboxDeb].map((p) => p.slice(debDir.length + 1));
  else rmSync(debDir, { recursive: true, force: true });

  const manifest: Manifest = {
    format: 1,
    arch: "riscv64",
    source: `debian ${SUITE}`,
    mirror,
    created: new Date().toISOString(),
    kernelRelease: release,
    packages: [
      { name: meta.name, version: meta.version, role: "metapackage" },
      { name: kernel.name, version: kernel.version, role: "kernel", ...kernelDebRecord },
      { name: busybox.name, version: busybox.version, role: "busybox", ...busyboxDebRecord },
    ],
    artifacts: {
      [KERNEL_FILE]: artifactRecord(kernelPath),
      [INITRD_FILE]: artifactRecord(join(ctx.work, INITRD_FILE)),
      [BUSYBOX_FILE]: artifactRecord(busyboxPath),
    },
    inputs: inputs(),
  };
  if (debs !== undefined) manifest.debs = debs;
  return manifest;
}

/** After an init script edit: rebuild the initramfs from the cached busybox, no download. */
async function refresh(dir: string, manifest: Manifest, ctx: BuildContext): Promise<Manifest | undefined> {
  const busyboxPath = join(dir, BUSYBOX_FILE);
  const record = manifest.artifacts[BUSYBOX_FILE];
  if (record === undefined || !existsSync(busyboxPath) || sha256File(busyboxPath) !== record.sha256)
    return undefined;
  ctx.step("the guest init script changed: rebuilding initramfs…");
  const tmp = join(dir, `.${INITRD_FILE}.${process.pid}`);
  writeFileSync(tmp, buildInitramfs(readFileSync(busyboxPath), readInitScript()));
  const initrd = artifactRecord(tmp);
  renameSync(tmp, join(dir, INITRD_FILE));
  return {
    ...manifest,
    artifacts: { ...manifest.artifacts, [INITRD_FILE]: initrd },
    inputs: inputs(),
  };
}

export const riscv64Recipe: Recipe = {
  arch: "riscv64",
  kernel: KERNEL_FILE,
  initrd: INITRD_FILE,
  artifacts: [KERNEL_FILE, INITRD_FILE, BUSYBOX_FILE],
  inputs,
  build,
  refresh,
};

/**
 * The cached riscv64 kernel and initramfs, fetched first if needed (what `vireo run` uses without
 * --kernel). Quiet: no steps or progress bar on stderr.
 */
export async function ensureRiscv64Image(
  options: { quiet?: boolean } = {},
): Promise<{ kernel: string; initrd: string }> {
  const fetchOptions: FetchOptions = {};
  if (options.quiet !== undefined) fetchOptions.quiet = options.quiet;
  const r = await fetchImage(riscv64Recipe, fetchOptions);
  return { kernel: r.kernel, initrd: r.initrd };
}
