/**
 * The default x86_64 guest of `vireo run --arch x86_64` without --kernel: the cached image (fetched on
 * first use, see images/x86_64.ts), its vmlinux through the PVH entry when it has one (the bzImage's
 * decompressor, very slow on nested hosts, is skipped), else the bzImage. Says which on stderr.
 */
import { readFileSync } from "node:fs";

export async function defaultX86Guest(): Promise<{ kernelPath: string; initrdPath: string }> {
  const { ensureX86Image, hasPvhEntry } = await import("../images/x86_64.js");
  const image = await ensureX86Image({});
  const pvh = hasPvhEntry(readFileSync(image.vmlinux));
  const kernelPath = pvh ? image.vmlinux : image.bzImage;
  process.stderr.write(
    pvh
      ? `vireo: default x86_64 guest: ${kernelPath} through its PVH entry (the bzImage's decompressor is skipped)\n`
      : `vireo: default x86_64 guest: ${kernelPath} (64-bit boot protocol)\n`,
  );
  return { kernelPath, initrdPath: image.initrd };
}
