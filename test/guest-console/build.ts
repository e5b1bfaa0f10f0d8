/** Builds test/guest-console/flood.S for a byte count (riscv64-unknown-elf-gcc), once per count. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";

/** This file runs as dist/test/guest-console/build.js: the repository root is three levels up. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
let dir: string | null = null;
const built = new Map<number, string>();

/** Why the guest cannot be built here, or undefined. */
export const toolchainMissing = crossCompilerMissing;

/** The path of an ELF that prints `total` bytes on the UART and powers off. */
export function floodGuest(total: number): string {
  const known = built.get(total);
  if (known !== undefined) return known;
  dir ??= mkdtempSync(join(tmpdir(), "vireo-guest-console-"));
  const elf = join(dir, `flood-${total}.elf`);
  buildBareMetal("test/guest-console/flood.S", elf, [`-DTOTAL=${total}`]);
  built.set(total, elf);
  return elf;
}
