/** Builds bench/guest/idle.S (prints "R", then WFI for ever) and gives the spec the manager bench runs. */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VmSpec } from "../../src/vm/spec.js";
import { repoRoot } from "./paths.js";

export const MiB = 2 ** 20;

/** Builds the idle guest into a fresh temporary directory; returns the ELF's path or why it failed. */
export function buildIdleGuest(): { elf: string } | { error: string } {
  const elf = join(mkdtempSync(join(tmpdir(), "vireo-bench-mgr-")), "idle.elf");
  const r = spawnSync(
    "riscv64-unknown-elf-gcc",
    [
      "-march=rv64gc",
      "-mabi=lp64d",
      "-nostdlib",
      "-nostartfiles",
      "-static",
      "-Wl,--no-warn-rwx-segments",
      "-T",
      join(repoRoot, "test", "guest", "link.ld"),
      "-o",
      elf,
      join(repoRoot, "bench", "guest", "idle.S"),
    ],
    { encoding: "utf8" },
  );
  if (r.error) return { error: `riscv64-unknown-elf-gcc: ${r.error.message}` };
  if (r.status !== 0) return { error: `building idle.S failed:\n${r.stdout}${r.stderr}` };
  return { elf };
}

export function idleSpec(name: string, kernel: string, memory = 64 * MiB): VmSpec {
  return {
    name,
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory,
    boot: { kernel, firmware: "none" },
    drives: [],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "split",
  };
}
