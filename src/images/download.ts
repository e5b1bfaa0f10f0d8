import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { type AptClient, kernelVersionMatches, type PackageInfo, resolveKernelPackage } from "./apt.js";
import { type ArtifactRecord, artifactRecord, type PackageRecord } from "./cache.js";
import type { BuildContext } from "./fetch.js";
import { formatMegabytes, ProgressBar } from "./progress.js";

/** The packages a guest image is built from, downloaded and checked against the archive. */
export interface DownloadedPackages {
  kernel: PackageInfo;
  busybox: PackageInfo;
  kernelDeb: string;
  busyboxDeb: string;
  kernelDebRecord: ArtifactRecord;
  busyboxDebRecord: ArtifactRecord;
  /** What the manifest records: the metapackage (unless pinned), the kernel and busybox. */
  records: PackageRecord[];
}

/**
 * The kernel package to use: the one the metapackage depends on today (users get security fixes), or,
 * with `pin`, the one of that version among the versioned packages the lists still carry.
 */
export async function pickKernel(
  apt: AptClient,
  kernelMeta: string,
  pin: string | undefined,
): Promise<PackageInfo> {
  if (pin === undefined) return apt.show(resolveKernelPackage(await apt.depends(kernelMeta), kernelMeta));
  const flavour = kernelMeta.replace(/^linux-image-/, "");
  const candidates = await apt.kernelPackages(flavour);
  const found = candidates.filter((p) => kernelVersionMatches(p.name, p.version, pin, flavour));
  if (found.length === 1) return found[0] as PackageInfo;
  const known = candidates.map((p) => `${p.version} (${p.name})`).join(", ") || "none";
  throw new UserError(
    found.length === 0
      ? `--kernel-version ${pin}: no ${flavour} kernel of that version in Debian ${apt.target.suite}; the package lists have: ${known}`
      : `--kernel-version ${pin} matches several kernels (${found.map((p) => p.name).join(", ")}); give the full version`,
  );
}

/**
 * Resolves the kernel metapackage to its current versioned package (or the pinned version,
 * `ctx.kernelVersion`), downloads it and busybox-static with a progress bar, and checks both .debs
 * against the archive's sha256. Shared by the riscv64 and x86_64 recipes; `where` says which apt
 * answered, for the step line.
 */
export async function downloadKernelAndBusybox(
  apt: AptClient,
  ctx: BuildContext,
  kernelMeta: string,
  busyboxPackage: string,
  where = "",
): Promise<DownloadedPackages> {
  const pin = ctx.kernelVersion;
  const [meta, kernel, busybox] = await Promise.all([
    pin === undefined ? apt.show(kernelMeta) : null,
    pickKernel(apt, kernelMeta, pin),
    apt.show(busyboxPackage),
  ]);
  ctx.step(
    pin === undefined
      ? `resolving ${kernelMeta} → ${kernel.name} ${kernel.version}${where}`
      : `kernel pinned to ${pin} → ${kernel.name} ${kernel.version}${where}`,
  );
  const total = kernel.size + busybox.size;
  ctx.step(
    `downloading ${kernel.name} (${formatMegabytes(kernel.size)} MB) and ${busybox.name} ${busybox.version} ` +
      `(${formatMegabytes(busybox.size)} MB)…`,
  );
  const bar = ctx.progress === undefined ? undefined : new ProgressBar(ctx.progress, total, "downloading");
  let debs: string[];
  try {
    debs = await apt.download([kernel, busybox], join(ctx.work, "debs"), (n) => bar?.update(n));
  } catch (e) {
    bar?.abandon();
    throw e;
  }
  bar?.finish();
  const [kernelDeb, busyboxDeb] = debs as [string, string];
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
  const records: PackageRecord[] = [
    { name: kernel.name, version: kernel.version, role: "kernel", ...kernelDebRecord },
    { name: busybox.name, version: busybox.version, role: "busybox", ...busyboxDebRecord },
  ];
  if (meta !== null) records.unshift({ name: meta.name, version: meta.version, role: "metapackage" });
  return { kernel, busybox, kernelDeb, busyboxDeb, kernelDebRecord, busyboxDebRecord, records };
}
