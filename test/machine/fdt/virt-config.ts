import type { VirtTreeConfig } from "../../../src/machine/riscv-virt/device-tree.js";

/** The ISA the interpreter implements, in a deliberately non-canonical order. */
export const ISA = ["i", "m", "a", "f", "d", "c", "zicntr", "zicsr", "zifencei", "zihpm", "sstc"];

/** A 2-hart, 512 MiB virt configuration with some fields replaced. */
export function virtConfig(overrides: Partial<VirtTreeConfig> = {}): VirtTreeConfig {
  return {
    cpus: 2,
    memoryBytes: 512 * 2 ** 20,
    bootargs: "console=ttyS0 earlycon",
    virtioSlots: [],
    isaExtensions: ["sstc", "zihpm", "zifencei", "zicsr", "zicntr", "c", "d", "f", "a", "m", "i"],
    mmuType: "riscv,sv39",
    ...overrides,
  };
}
