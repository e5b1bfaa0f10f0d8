import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { type AptClient, type PackageInfo, resolveKernelPackage } from "./apt.js";
import { type ArtifactRecord, artifactRecord } from "./cache.js";
import type { BuildContext } from "./fetch.js";
import { formatMegabytes, ProgressBar } from "./progress.js";

/** The packages a guest image is built from, downloaded and checked against the archive. */
export interface DownloadedPackages {
  meta: PackageInfo;
  kernel: PackageInfo;
  busybox: PackageInfo;
  kernelDeb: string;
  busyboxDeb: string;
  kernelDebRecord: ArtifactRecord;
  busyboxDebRecord: ArtifactRecord;
}

/**
 * Resolves the kernel metapackage to its current versioned package (never pinned), downloads it and
 * busybox-static with a progress bar, and checks both .debs against the archive's sha256. Shared by the
 * riscv64 and x86_64 recipes; `where` says which apt answered, for the step line.
 */
export async function downloadKernelAndBusybox(
  apt: AptClient,
  ctx: BuildContext,
  kernelMeta: string,
  busyboxPackage: string,
  where = "",
): Promise<DownloadedPackages> {
  const kernelPackage = resolveKernelPackage(await apt.depends(kernelMeta), kernelMeta);
  const [meta, kernel, busybox] = await Promise.all([
    apt.show(kernelMeta),
    apt.show(kernelPackage),
    apt.show(busyboxPackage),
  ]);
  ctx.step(`resolving ${kernelMeta} → ${kernel.name} ${kernel.version}${where}`);
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
  return { meta, kernel, busybox, kernelDeb, busyboxDeb, kernelDebRecord, busyboxDebRecord };
}
