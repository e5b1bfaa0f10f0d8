/**
 * The riscv64 `virt` board's physical memory map, compatible with QEMU's `-M virt`
 * (hw/riscv/virt.c). One table: the board maps devices from it and the device tree is generated from it.
 */
export interface Region {
  base: number;
  size: number;
}

export const VIRT_MAP = {
  testFinisher: { base: 0x0010_0000, size: 0x1000 },
  rtc: { base: 0x0010_1000, size: 0x1000 },
  clint: { base: 0x0200_0000, size: 0x1_0000 },
  plic: { base: 0x0c00_0000, size: 0x60_0000 },
  uart0: { base: 0x1000_0000, size: 0x100 },
  /** Eight virtio-mmio slots, 0x1000 apart (see VIRTIO_SLOTS). */
  virtio: { base: 0x1000_1000, size: 0x1000 },
  dram: { base: 0x8000_0000, size: 0 },
} as const satisfies Record<string, Region>;

export const VIRTIO_SLOTS = 8;

/** PLIC interrupt sources (QEMU's numbering). */
export const VIRT_IRQ = {
  /** virtio-mmio slot i raises source VIRTIO_FIRST + i. */
  VIRTIO_FIRST: 1,
  UART0: 10,
  RTC: 11,
} as const;

/** Number of PLIC sources (1..PLIC_SOURCES-1 usable; 0 means "none"). */
export const PLIC_SOURCES = 96;

/** Guest time runs at 10 MHz, as on QEMU's virt board. */
export const TIMEBASE_HZ = 10_000_000;
