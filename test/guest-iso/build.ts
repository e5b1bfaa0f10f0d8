/**
 * Builds test/guest-iso/iso.c (riscv64-unknown-elf-gcc) in FILL or SCAN mode, with the secret (FILL) or
 * the masked key (SCAN) written as a generated header into the build directory.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../guest-console/build.js";

const source = join(repoRoot, "test", "guest-iso", "iso.c");
const linkScript = join(repoRoot, "test", "guest-iso", "link.ld");
/** The byte iso.c's SCAN mode XORs with RAM before comparing with its key. */
export const MASK = 0x5a;

function header(name: string, bytes: Uint8Array): string {
  return `static const u8 ${name}[64] = {${[...bytes].join(",")}};\n`;
}

/** FILL: the ELF of VM A, which writes `secret` (64 bytes) across its free RAM of `ramSize` bytes. */
export function fillGuest(dir: string, secret: Uint8Array, ramSize: number): string {
  writeFileSync(join(dir, "secret.h"), header("SECRET", secret));
  return build(dir, "fill.elf", ["-DFILL", `-DRAM_SIZE=${ramSize}ul`]);
}

/** SCAN: the ELF of VM B; it holds only secret ^ MASK. */
export function scanGuest(dir: string, secret: Uint8Array, ramSize: number): string {
  writeFileSync(
    join(dir, "key.h"),
    header(
      "KEY",
      secret.map((b) => b ^ MASK),
    ),
  );
  return build(dir, "scan.elf", [`-DRAM_SIZE=${ramSize}ul`]);
}

function build(dir: string, name: string, defines: string[]): string {
  const elf = join(dir, name);
  const r = spawnSync(
    "riscv64-unknown-elf-gcc",
    [
      "-O2",
      "-march=rv64gc",
      "-mabi=lp64d",
      "-mcmodel=medany",
      "-nostdlib",
      "-ffreestanding",
      "-fno-builtin",
      "-fno-tree-loop-distribute-patterns",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-static",
      "-nostartfiles",
      "-Wl,--no-warn-rwx-segments",
      "-Wl,--build-id=none",
      ...defines,
      `-I${dir}`,
      "-T",
      linkScript,
      "-o",
      elf,
      source,
      "-lgcc",
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`building iso.c (${name}) failed:\n${r.stdout}${r.stderr}`);
  return elf;
}
