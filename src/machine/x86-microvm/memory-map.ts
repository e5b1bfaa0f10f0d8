/**
 * The x86 microVM board's one table of addresses, ports and interrupt lines (compare Firecracker's
 * x86_64 layout): RAM below 3 GiB and from 4 GiB, the 3–4 GiB hole for MMIO and the APICs, boot-time
 * structures in low memory, legacy devices on ISA ports.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Guest-physical layout. */
export const LAYOUT = {
  /** Boot GDT (null, null, 64-bit code 0x10, data 0x18, TSS 0x20, 32-bit code 0x28), an empty IDT after it. */
  gdt: 0x500,
  idt: 0x530,
  /** Linux boot_params ("zero page"). */
  zeroPage: 0x7000,
  /** Initial stack top (grows down into 0x8000–0x8fff). */
  stackTop: 0x8ff0,
  /** Identity page tables: PML4, PDPT, then four PDs of 2 MiB pages covering 4 GiB. */
  pml4: 0x9000,
  pdpt: 0xa000,
  pd: 0xb000,
  /** Kernel command line, at most `COMMAND_LINE_MAX` bytes with its NUL. */
  cmdline: 0x20000,
  /** Start of the Extended BIOS Data Area: RAM below it is usable, [ebda, 1 MiB) is reserved. */
  ebda: 0x9fc00,
  /** ACPI tables (RSDP first) in the reserved BIOS area, where Linux also scans for the RSDP. */
  acpi: 0xe0000,
  acpiEnd: 0x100000,
  /** The kernel's protected-mode part (bzImage body) loads here. */
  kernel: 0x100000,
  /** RAM stops here below 4 GiB; [3 GiB, 4 GiB) is the MMIO hole. */
  lowRamEnd: 3 * GiB,
  highRamStart: 4 * GiB,
  /** Start of the MMIO hole; the virtio-mmio windows follow a page above it (see VIRTIO_MMIO). */
  mmioBase: 0xc000_0000,
  ioapic: 0xfec0_0000,
  lapic: 0xfee0_0000,
  /** KVM_SET_TSS_ADDR: three pages KVM needs below 4 GiB for real-mode emulation on VMX. */
  tss: 0xfffb_d000,
} as const;

export const COMMAND_LINE_MAX = 0x10000;

/** Legacy ISA devices: I/O ports and interrupt lines (GSI = ISA IRQ on the in-kernel PIC and IOAPIC). */
export const COM1 = { port: 0x3f8, size: 8, irq: 4 } as const;
export const I8042 = { dataPort: 0x60, commandPort: 0x64, irq: 1 } as const;

/**
 * virtio-mmio slots (as Firecracker's): slot i is the 4 KiB window at base + i * size and raises GSI
 * firstGsi + i on the in-kernel IOAPIC. GSIs 5–12 are interrupt numbers no board device uses (COM1 is
 * 4, the i8042 1); below 16 they are also the numbers `virtio_mmio.device=…:IRQ` names on the command line.
 */
export const VIRTIO_MMIO = { base: 0xc000_1000, size: 0x1000, firstGsi: 5, slots: 8 } as const;

/** Guest RAM regions for `memory` bytes: below the hole, and the rest from 4 GiB. */
export function ramRegions(memory: number): { base: number; size: number }[] {
  const low = Math.min(memory, LAYOUT.lowRamEnd);
  const regions = [{ base: 0, size: low }];
  if (memory > low) regions.push({ base: LAYOUT.highRamStart, size: memory - low });
  return regions;
}
