/**
 * What makes a clone of a snapshot a VM of its own: new MAC addresses, a vsock CID no other VM of the
 * daemon has, and copies of the disks (copies, not overlays: Vireo has no overlay format yet; on a
 * file system with reflinks — btrfs, XFS — the copy shares blocks until either side writes).
 */
import { randomBytes } from "node:crypto";
import { constants, copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { formatMac } from "../net/mac.js";
import type { VmSpec } from "../vm/spec.js";

/** Locally administered unicast addresses in QEMU's 52:54:00 block, the last three bytes random. */
export function cloneMacs(count: number): string[] {
  return Array.from({ length: count }, () =>
    formatMac(Uint8Array.from([0x52, 0x54, 0x00, ...randomBytes(3)])),
  );
}

/** The lowest guest CID (3 and up) that none of `specs` uses. */
export function freeVsockCid(specs: Iterable<VmSpec>): number {
  const used = new Set<number>();
  for (const s of specs) if (s.vsock !== undefined) used.add(s.vsock.cid);
  let cid = 3;
  while (used.has(cid)) cid++;
  return cid;
}

/** Copies each drive image into `dir` (reflinked where the file system can); new paths by drive id. */
export function copyDrives(
  drives: readonly { id: string; path: string }[],
  dir: string,
): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const paths: Record<string, string> = {};
  for (const d of drives) {
    const to = join(dir, `${d.id}.img`);
    copyFileSync(d.path, to, constants.COPYFILE_FICLONE);
    paths[d.id] = to;
  }
  return paths;
}
