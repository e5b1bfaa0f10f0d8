/** Builds test/guest-console/flood.S for a byte count (riscv64-unknown-elf-gcc), once per count. */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBareMetal } from "../support/bare-metal.js";

/** This file runs as dist/test/guest-console/build.js: the repository root is three levels up. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
let dir: string | null = null;
const built = new Map<number, string>();

/** Why the guest cannot be built here, or undefined. */
export function toolchainMissing(): string | undefined {
  const probe = spawnSync("riscv64-unknown-elf-gcc", ["--version"], { stdio: "ignore" });
  return probe.error
    ? "riscv64-unknown-elf-gcc not installed (apt-get install gcc-riscv64-unknown-elf)"
    : undefined;
}

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
