/**
 * PVH boot of an uncompressed ELF kernel (vmlinux), as Firecracker and Cloud Hypervisor do it: the
 * kernel's PT_LOAD segments go to their physical addresses, and the vCPU starts in 32-bit protected mode
 * (paging off) at the address in the kernel's XEN_ELFNOTE_PHYS32_ENTRY note, with %ebx pointing at an
 * hvm_start_info structure (xen/include/public/arch-x86/hvm/start_info.h) that gives the command line,
 * the memory map, the ACPI RSDP and the initrd as module 0. This skips the bzImage decompressor.
 */
import type { Regs, Sregs } from "../../hypervisor/kvm/registers.js";
import { UserError } from "../../util/errors.js";
import { BOOT_TSS, type E820Entry, e820Map, type PhysicalMemory } from "./boot.js";
import { COMMAND_LINE_MAX, LAYOUT, MiB } from "./memory-map.js";

export interface PvhSegment {
  paddr: number;
  data: Uint8Array;
  memSize: number;
}

export interface PvhKernel {
  entry: number;
  segments: PvhSegment[];
  /** First byte after the highest segment. */
  end: number;
}

const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const START_INFO_MAGIC = 0x336ec578;

/** Where the start info, its module list and memory map go (below the boot GDT's neighbours). */
export const PVH_LAYOUT = { startInfo: 0x6000, modlist: 0x6040, memmap: 0x6100 } as const;
/** A flat 32-bit code segment appended to the boot GDT for the PVH entry. */
export const PVH_CS = 0x28;
export const PVH_DS = 0x18;

export function parsePvhKernel(bytes: Uint8Array, fileName: string): PvhKernel {
  const fail = (why: string): never => {
    throw new UserError(`${fileName}: ${why}`);
  };
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || v.getUint32(0, false) !== 0x7f454c46) fail("not an ELF file");
  if (bytes[4] !== 2 || bytes[5] !== 1) fail("not a 64-bit little-endian ELF file");
  if (v.getUint16(18, true) !== EM_X86_64) fail("not an x86-64 ELF file");
  const u64 = (at: number, what: string): number => {
    const value = v.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} out of range`);
    return Number(value);
  };
  const phoff = u64(32, "e_phoff");
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > bytes.length) fail("truncated program headers");
  const segments: PvhSegment[] = [];
  let entry: number | null = null;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = v.getUint32(ph, true);
    const offset = u64(ph + 8, "p_offset");
    const paddr = u64(ph + 24, "p_paddr");
    const fileSize = u64(ph + 32, "p_filesz");
    const memSize = u64(ph + 40, "p_memsz");
    if (offset + fileSize > bytes.length) fail(`segment ${i} runs past the end of the file`);
    if (type === PT_LOAD && memSize > 0) {
      if (fileSize > memSize) fail(`segment ${i}: file size above memory size`);
      segments.push({ paddr, data: bytes.subarray(offset, offset + fileSize), memSize });
    } else if (type === PT_NOTE) {
      entry ??= findPhys32Entry(v, offset, fileSize);
    }
  }
  if (entry === null) fail("no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY note); boot the bzImage instead");
  if (segments.length === 0) fail("no loadable segments");
  const end = Math.max(...segments.map((s) => s.paddr + s.memSize));
  return { entry: entry as number, segments, end };
}

function findPhys32Entry(v: DataView, offset: number, size: number): number | null {
  const align4 = (n: number) => (n + 3) & ~3;
  let at = offset;
  while (at + 12 <= offset + size) {
    const nameSize = v.getUint32(at, true);
    const descSize = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const name = at + 12;
    const desc = name + align4(nameSize);
    if (desc + descSize > offset + size) return null;
    const isXen =
      nameSize === 4 &&
      v.getUint8(name) === 0x58 && // "Xen\0"
      v.getUint8(name + 1) === 0x65 &&
      v.getUint8(name + 2) === 0x6e;
    if (isXen && type === XEN_ELFNOTE_PHYS32_ENTRY && descSize >= 4) {
      return descSize >= 8 ? Number(v.getBigUint64(desc, true)) : v.getUint32(desc, true);
    }
    at = desc + align4(descSize);
  }
  return null;
}

export interface PvhBootOptions {
  kernel: PvhKernel;
  initrd: Uint8Array | null;
  cmdline: string;
  regions: readonly { base: number; size: number }[];
  rsdp?: number;
}

export interface PvhBootInfo {
  entry: number;
  startInfo: number;
  initrdAddress: number | null;
  e820: E820Entry[];
}

/** Loads the segments, command line and initrd, and writes hvm_start_info with its memory map. */
export function loadPvh(memory: PhysicalMemory, options: PvhBootOptions): PvhBootInfo {
  const { kernel, initrd, cmdline, regions } = options;
  const low = regions.find((r) => r.base === 0);
  const lowEnd = low === undefined ? 0 : low.size;
  if (kernel.end > lowEnd) {
    throw new UserError(
      `the kernel needs more memory than --memory gives: use at least ${Math.ceil((kernel.end + 16 * MiB) / MiB)}M`,
    );
  }
  for (const s of kernel.segments) {
    if (s.paddr < 1 * MiB)
      throw new UserError(`the kernel has a segment below 1 MiB (0x${s.paddr.toString(16)})`);
    memory.write(s.paddr, s.data);
    memory.fill(s.paddr + s.data.length, s.memSize - s.data.length, 0);
  }
  const cmd = new TextEncoder().encode(cmdline);
  if (cmd.length >= COMMAND_LINE_MAX)
    throw new UserError(`the kernel command line is too long (${cmd.length} bytes)`);
  memory.fill(LAYOUT.cmdline, cmd.length + 1, 0);
  memory.write(LAYOUT.cmdline, cmd);

  let initrdAddress: number | null = null;
  if (initrd !== null) {
    initrdAddress = Math.floor((lowEnd - initrd.length) / 4096) * 4096;
    if (initrdAddress < kernel.end) {
      const need = Math.ceil((kernel.end + initrd.length + 16 * MiB) / MiB);
      throw new UserError(
        `the initrd does not fit in memory next to the kernel: use --memory ${need}M or more`,
      );
    }
    memory.write(initrdAddress, initrd);
  }

  const e820 = e820Map(regions);
  const memmap = new Uint8Array(e820.length * 24);
  const mv = new DataView(memmap.buffer);
  e820.forEach((e, i) => {
    mv.setBigUint64(i * 24, BigInt(e.base), true);
    mv.setBigUint64(i * 24 + 8, BigInt(e.size), true);
    mv.setUint32(i * 24 + 16, e.type, true);
  });
  if (PVH_LAYOUT.memmap + memmap.length > LAYOUT.zeroPage) throw new Error("PVH memory map too large");
  memory.write(PVH_LAYOUT.memmap, memmap);

  const info = new Uint8Array(56);
  const iv = new DataView(info.buffer);
  iv.setUint32(0, START_INFO_MAGIC, true);
  iv.setUint32(4, 1, true); // version 1: has the memory map
  if (initrd !== null && initrdAddress !== null) {
    const mod = new Uint8Array(32);
    const modv = new DataView(mod.buffer);
    modv.setBigUint64(0, BigInt(initrdAddress), true);
    modv.setBigUint64(8, BigInt(initrd.length), true);
    memory.write(PVH_LAYOUT.modlist, mod);
    iv.setUint32(12, 1, true);
    iv.setBigUint64(16, BigInt(PVH_LAYOUT.modlist), true);
  }
  iv.setBigUint64(24, BigInt(LAYOUT.cmdline), true);
  if (options.rsdp !== undefined) iv.setBigUint64(32, BigInt(options.rsdp), true);
  iv.setBigUint64(40, BigInt(PVH_LAYOUT.memmap), true);
  iv.setUint32(48, e820.length, true);
  memory.write(PVH_LAYOUT.startInfo, info);
  return { entry: kernel.entry, startInfo: PVH_LAYOUT.startInfo, initrdAddress, e820 };
}

/** 32-bit flat protected mode, paging off, as the PVH entry expects. */
export function pvhSregs(initial: Sregs): Sregs {
  const segment = (selector: number, type: number) => ({
    base: 0n,
    limit: 0xffffffff,
    selector,
    type,
    present: 1,
    dpl: 0,
    db: 1,
    s: 1,
    l: 0,
    g: 1,
    avl: 0,
    unusable: 0,
  });
  const data = segment(PVH_DS, 0x3);
  return {
    ...initial,
    cs: segment(PVH_CS, 0xb),
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
    gdt: { base: BigInt(LAYOUT.gdt), limit: 6 * 8 - 1 },
    idt: { base: BigInt(LAYOUT.idt), limit: 7 },
    cr0: 0x11n, // PE | ET
    cr3: 0n,
    cr4: 0n,
    efer: 0n,
  };
}

export function pvhRegs(initial: Regs, entry: number, startInfo: number): Regs {
  const regs = { ...initial };
  for (const k of Object.keys(regs) as (keyof Regs)[]) regs[k] = 0n;
  regs.rip = BigInt(entry);
  regs.rbx = BigInt(startInfo);
  regs.rflags = 2n;
  return regs;
}
