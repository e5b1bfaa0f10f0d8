/** Builds bench/guest/idle.S (prints "R", then WFI for ever) and gives the spec the manager bench runs. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VmSpec } from "../../src/vm/spec.js";
import { bareMetalSpec, buildBareMetal } from "../../test/support/bare-metal.js";

export const MiB = 2 ** 20;

/** Builds the idle guest into a fresh temporary directory; returns the ELF's path or why it failed. */
export function buildIdleGuest(): { elf: string } | { error: string } {
  const elf = join(mkdtempSync(join(tmpdir(), "vireo-bench-mgr-")), "idle.elf");
  try {
    buildBareMetal("bench/guest/idle.S", elf);
  } catch (e) {
    return { error: (e as Error).message };
  }
  return { elf };
}

export function idleSpec(name: string, kernel: string, memory = 64 * MiB): VmSpec {
  return bareMetalSpec(name, kernel, memory);
}
