/**
 * The Linux/x86 64-bit boot protocol done by the VMM, without firmware: the kernel is loaded at 1 MiB,
 * boot_params (the zero page) describes memory (e820), the command line and the initrd, and the boot vCPU
 * starts in long mode at the 64-bit entry with paging on (identity map), flat segments from our GDT,
 * interrupts off and %rsi = boot_params.
 */
import type { Regs, Segment, Sregs } from "../../hypervisor/kvm/registers.js";
import { UserError } from "../../util/errors.js";
import { type BzImage, HDR } from "./bzimage.js";
import { COMMAND_LINE_MAX, GiB, LAYOUT, MiB } from "./memory-map.js";

/** What the boot code needs from guest RAM. */
export interface PhysicalMemory {
  write(paddr: number, data: Uint8Array): void;
  fill(paddr: number, length: number, value?: number): void;
  contains(paddr: number, length: number): boolean;
}

export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;

export interface E820Entry {
  base: number;
  size: number;
  type: number;
}

/** boot_params offsets (Documentation/arch/x86/zero-page.rst) beyond the setup header. */
const ZP = {
  acpiRsdpAddr: 0x070,
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  e820Entries: 0x1e8,
  e820Table: 0x2d0,
} as const;
const E820_MAX_ENTRIES = 128;

/** The memory map Linux gets: low RAM minus the EBDA/BIOS area, then RAM above 1 MiB and above 4 GiB. */
export function e820Map(regions: readonly { base: number; size: number }[]): E820Entry[] {
  const entries: E820Entry[] = [
    { base: 0, size: LAYOUT.ebda, type: E820_RAM },
    { base: LAYOUT.ebda, size: 1 * MiB - LAYOUT.ebda, type: E820_RESERVED },
  ];
  for (const r of regions) {
    const start = Math.max(r.base, 1 * MiB);
    const end = r.base + r.size;
    if (end > start) entries.push({ base: start, size: end - start, type: E820_RAM });
  }
  return entries;
}

export interface LinuxBootOptions {
  image: BzImage;
  initrd: Uint8Array | null;
  cmdline: string;
  /** RAM regions (from `ramRegions`). */
  regions: readonly { base: number; size: number }[];
  /** Guest address of the ACPI RSDP, if tables were built. */
  rsdp?: number;
}

export interface LinuxBootInfo {
  entry: number;
  initrdAddress: number | null;
  e820: E820Entry[];
}

/**
 * Loads the kernel, command line and initrd and writes boot_params. Input that cannot fit (RAM too small
 * for the kernel or the initrd, a command line longer than the kernel accepts) is a UserError.
 */
export function loadLinux(memory: PhysicalMemory, options: LinuxBootOptions): LinuxBootInfo {
  const { image, initrd, cmdline, regions } = options;
  const low = regions.find((r) => r.base === 0);
  const lowEnd = low === undefined ? 0 : low.base + low.size;
  const kernelEnd = image.loadAddress + image.initSize;
  if (kernelEnd > lowEnd) {
    const need = Math.ceil((kernelEnd + 4 * MiB) / MiB);
    throw new UserError(`the kernel needs more memory than --memory gives: use at least ${need}M`);
  }
  memory.write(image.loadAddress, image.kernel);

  const cmd = new TextEncoder().encode(cmdline);
  const cmdMax = Math.min(image.cmdlineSize, COMMAND_LINE_MAX - 1);
  if (cmd.length > cmdMax) {
    throw new UserError(`the kernel command line is ${cmd.length} bytes; this kernel accepts ${cmdMax}`);
  }
  memory.fill(LAYOUT.cmdline, cmd.length + 1, 0);
  memory.write(LAYOUT.cmdline, cmd);

  let initrdAddress: number | null = null;
  if (initrd !== null) {
    const top = Math.min(lowEnd, image.initrdAddrMax + 1);
    initrdAddress = Math.floor((top - initrd.length) / 4096) * 4096;
    if (initrdAddress < kernelEnd) {
      const need = Math.ceil((kernelEnd + initrd.length + 4 * MiB) / MiB);
      throw new UserError(
        `the initrd does not fit in memory next to the kernel: use --memory ${need}M or more`,
      );
    }
    memory.write(initrdAddress, initrd);
  }

  const e820 = e820Map(regions);
  const zp = new Uint8Array(4096);
  const v = new DataView(zp.buffer);
  zp.set(image.setupHeader, HDR.setupSects);
  zp[HDR.typeOfLoader] = 0xff;
  v.setUint32(HDR.cmdLinePtr, LAYOUT.cmdline, true);
  if (initrd !== null && initrdAddress !== null) {
    v.setUint32(HDR.ramdiskImage, initrdAddress, true);
    v.setUint32(HDR.ramdiskSize, initrd.length, true);
  }
  if (options.rsdp !== undefined) v.setBigUint64(ZP.acpiRsdpAddr, BigInt(options.rsdp), true);
  if (e820.length > E820_MAX_ENTRIES) throw new Error("too many e820 entries");
  zp[ZP.e820Entries] = e820.length;
  e820.forEach((e, i) => {
    const at = ZP.e820Table + i * 20;
    v.setBigUint64(at, BigInt(e.base), true);
    v.setBigUint64(at + 8, BigInt(e.size), true);
    v.setUint32(at + 16, e.type, true);
  });
  memory.write(LAYOUT.zeroPage, zp);
  return { entry: image.loadAddress + 0x200, initrdAddress, e820 };
}

/** GDT entries: flags/access in the usual packed descriptor format. */
function descriptor(base: number, limit: number, flags: number, access: number): bigint {
  return (
    (BigInt(limit & 0xffff) |
      (BigInt(base & 0xffffff) << 16n) |
      (BigInt(access & 0xff) << 40n) |
      (BigInt((limit >> 16) & 0xf) << 48n) |
      (BigInt(flags & 0xf) << 52n) |
      (BigInt((base >>> 24) & 0xff) << 56n)) &
    0xffff_ffff_ffff_ffffn
  );
}

export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const BOOT_TSS = 0x20;
const GDT_ENTRIES = [
  0n,
  0n,
  descriptor(0, 0xfffff, 0xa, 0x9b), // 0x10: 64-bit code, G and L
  descriptor(0, 0xfffff, 0xc, 0x93), // 0x18: data, G and D/B
  descriptor(0, 0x67, 0x0, 0x8b), // 0x20: TSS (busy)
  descriptor(0, 0xfffff, 0xc, 0x9b), // 0x28: 32-bit code, for the PVH entry
];

/** Writes the boot GDT, an empty IDT and identity page tables (2 MiB pages) over the first 4 GiB. */
export function writeLongModeTables(memory: PhysicalMemory): void {
  const gdt = new Uint8Array(GDT_ENTRIES.length * 8);
  const gv = new DataView(gdt.buffer);
  GDT_ENTRIES.forEach((d, i) => {
    gv.setBigUint64(i * 8, d, true);
  });
  memory.write(LAYOUT.gdt, gdt);
  memory.fill(LAYOUT.idt, 8, 0);

  const tables = new Uint8Array(LAYOUT.pd + 4 * 4096 - LAYOUT.pml4);
  const tv = new DataView(tables.buffer);
  const at = (address: number) => address - LAYOUT.pml4;
  tv.setBigUint64(at(LAYOUT.pml4), BigInt(LAYOUT.pdpt | 0x3), true);
  for (let i = 0; i < 4; i++) {
    tv.setBigUint64(at(LAYOUT.pdpt) + i * 8, BigInt((LAYOUT.pd + i * 4096) | 0x3), true);
  }
  for (let i = 0; i < 4 * 512; i++) {
    // Present, writable, 2 MiB page.
    tv.setBigUint64(at(LAYOUT.pd) + i * 8, (BigInt(i) * 0x20_0000n) | 0x83n, true);
  }
  memory.write(LAYOUT.pml4, tables);
}

/** How much the boot page tables map (identity, from 0). */
export const IDENTITY_MAPPED = 4 * GiB;

function flat(selector: number, type: number, code: boolean): Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type,
    present: 1,
    dpl: 0,
    db: code ? 0 : 1,
    s: 1,
    l: code ? 1 : 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

export const CR0_PE = 1n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_PG = 1n << 31n;
export const CR4_PAE = 1n << 5n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;

/** Long-mode system registers for the boot vCPU, starting from what KVM_GET_SREGS returned. */
export function longModeSregs(initial: Sregs): Sregs {
  const data = flat(BOOT_DS, 0x3, false);
  return {
    ...initial,
    cs: flat(BOOT_CS, 0xb, true),
    ds: data,
    es: { ...data },
    fs: { ...data },
    gs: { ...data },
    ss: { ...data },
    tr: {
      ...initial.tr,
      base: 0n,
      limit: 0x67,
      selector: BOOT_TSS,
      type: 0xb,
      present: 1,
      s: 0,
      g: 0,
      unusable: 0,
    },
    gdt: { base: BigInt(LAYOUT.gdt), limit: GDT_ENTRIES.length * 8 - 1 },
    idt: { base: BigInt(LAYOUT.idt), limit: 7 },
    cr0: CR0_PE | CR0_ET | CR0_NE | CR0_PG,
    cr3: BigInt(LAYOUT.pml4),
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
}

/** General registers at the 64-bit entry: rip = entry, rsi = boot_params, a small stack, IF clear. */
export function entryRegs(initial: Regs, entry: number): Regs {
  const regs = { ...initial };
  for (const k of Object.keys(regs) as (keyof Regs)[]) regs[k] = 0n;
  regs.rip = BigInt(entry);
  regs.rsi = BigInt(LAYOUT.zeroPage);
  regs.rsp = BigInt(LAYOUT.stackTop);
  regs.rbp = BigInt(LAYOUT.stackTop);
  regs.rflags = 2n;
  return regs;
}
