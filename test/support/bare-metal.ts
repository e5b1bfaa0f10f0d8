/**
 * Building the small bare-metal riscv64 guests the tests and benchmarks run (one assembly file, the
 * M-mode link script of test/guest), with Debian's cross compiler.
 */
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { VmSpec } from "../../src/vm/spec.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const linkScript = join(repoRoot, "test", "guest", "link.ld");

/** Why bare-metal guests cannot be built here, or undefined. */
export function crossCompilerMissing(): string | undefined {
  const probe = spawnSync("riscv64-unknown-elf-gcc", ["--version"], { stdio: "ignore" });
  return probe.error
    ? "riscv64-unknown-elf-gcc not installed (apt-get install gcc-riscv64-unknown-elf)"
    : undefined;
}

/**
 * Assembles `source` (a path under the repository root, e.g. "test/guest-daemon/counter.S") into the
 * ELF `elf`, with `defines` (-DNAME=VALUE); throws with the compiler's output when it fails.
 */
export function buildBareMetal(source: string, elf: string, defines: string[] = []): string {
  const r = spawnSync(
    "riscv64-unknown-elf-gcc",
    [
      "-march=rv64gc",
      "-mabi=lp64d",
      "-nostdlib",
      "-nostartfiles",
      "-static",
      "-Wl,--no-warn-rwx-segments",
      ...defines,
      "-T",
      linkScript,
      "-o",
      elf,
      join(repoRoot, source),
    ],
    { encoding: "utf8" },
  );
  if (r.error) throw new Error(`riscv64-unknown-elf-gcc: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`building ${source} failed:\n${r.stdout}${r.stderr}`);
  return elf;
}

/** The spec of a bare-metal riscv64 guest (M-mode ELF, no firmware, no devices unless `extra` adds them). */
export function bareMetalSpec(
  name: string,
  kernel: string,
  memory: number,
  extra: Partial<VmSpec> = {},
): VmSpec {
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
    ...extra,
  };
}
