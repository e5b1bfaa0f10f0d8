/**
 * The riscv64 `virt` board's physical memory map, compatible with QEMU's `-M virt`. One table: the board
 * maps devices from it, and (with the Linux machine) the device tree is generated from it.
 */
export interface Region {
  base: number;
  size: number;
}

export const VIRT_MAP = {
  testFinisher: { base: 0x0010_0000, size: 0x1000 },
  clint: { base: 0x0200_0000, size: 0x1_0000 },
  dram: { base: 0x8000_0000, size: 0 },
} as const satisfies Record<string, Region>;

/** Guest time runs at 10 MHz, as on QEMU's virt board. */
export const TIMEBASE_HZ = 10_000_000;
