import { Csr } from "../../cpu/riscv/csr/csr-numbers.js";
import type { Hart } from "../../cpu/riscv/hart.js";
import { UserError } from "../../util/errors.js";
import type { LinuxImage } from "../loader/linux-image.js";
import type { VirtBoard } from "./board.js";
import { buildVirtDeviceTree } from "./device-tree.js";
import { VIRT_MAP } from "./memory-map.js";
import { startSupervisor } from "./sbi/firmware.js";

/** Where the pieces of a Linux boot go in guest RAM (physical addresses). */
export interface BootLayout {
  firmware: number | null;
  kernel: number;
  kernelEnd: number;
  initrd: { start: number; end: number } | null;
  dtb: number;
  /** fw_dynamic's info block, for an external M-mode firmware. */
  dynamicInfo: number | null;
}

const MiB = 1 << 20;
const alignUp = (value: number, to: number) => Math.ceil(value / to) * to;
const alignDown = (value: number, to: number) => Math.floor(value / to) * to;

/**
 * Places firmware, kernel, initrd and device tree like QEMU's virt board does: the kernel at its
 * text_offset (after the firmware), the initrd at kernel + min(RAM/2, 128 MiB) (clear of the kernel's BSS
 * and of where fw_jump copies the FDT), and the DTB 2 MiB-aligned at the top of RAM.
 */
export function planBoot(
  ramSize: number,
  kernel: LinuxImage,
  firmwareSize: number | null,
  initrdSize: number | null,
  dtbSize: number,
): BootLayout {
  const base = VIRT_MAP.dram.base;
  const end = base + ramSize;
  if (kernel.fixed && firmwareSize !== null && kernel.textOffset < firmwareSize) {
    throw new UserError("the kernel is linked at an address the firmware occupies");
  }
  const kernelOffset = Math.max(
    kernel.textOffset,
    firmwareSize === null ? 0 : alignUp(firmwareSize, 2 * MiB),
  );
  const kernelAddr = base + kernelOffset;
  const kernelEnd = kernelAddr + kernel.imageSize;
  // Room at the top for the DTB (and the firmware's dynamic-info block behind it).
  const tail = alignUp(dtbSize + 64, 2 * MiB);
  const dtb = alignDown(end - dtbSize - 64, 2 * MiB);
  if (kernelEnd > end - tail) {
    throw new UserError(
      `--memory ${ramSize / MiB}M is too small for a ${Math.ceil(kernel.imageSize / MiB)} MiB kernel`,
    );
  }
  let initrd: BootLayout["initrd"] = null;
  if (initrdSize !== null) {
    const start = Math.max(alignUp(kernelEnd, 4096), kernelAddr + Math.min(ramSize / 2, 128 * MiB));
    const fits = start + initrdSize <= dtb;
    const fallback = alignUp(kernelEnd, 4096);
    const at = fits ? start : fallback;
    if (at + initrdSize > dtb) {
      throw new UserError(
        `the initrd (${Math.ceil(initrdSize / MiB)} MiB) does not fit in --memory ${ramSize / MiB}M`,
      );
    }
    initrd = { start: at, end: at + initrdSize };
  }
  return {
    firmware: firmwareSize === null ? null : base,
    kernel: kernelAddr,
    kernelEnd,
    initrd,
    dtb,
    dynamicInfo: firmwareSize === null ? null : alignUp(dtb + dtbSize, 8),
  };
}

/** medeleg: every exception the kernel handles itself (all but ECALL from S/M, which are ours). */
const DELEGATED_EXCEPTIONS = 0xb1ff;
/** mideleg: supervisor software, timer and external interrupts. */
const DELEGATED_INTERRUPTS = 0x222;
/** scounteren.TM: U-mode may read the time CSR. */
const SCOUNTEREN_TM = 1 << 1;
/** menvcfg.STCE (bit 63): the kernel programs its timer through stimecmp (Sstc). */
const MENVCFG_STCE_HI = 1 << 31;

/**
 * What M-mode firmware would have done before entering the kernel, done by the hypervisor instead:
 * delegate traps and interrupts to S, open the counters, enable Sstc, and let S/U reach all memory
 * through PMP.
 */
export function prepareForSupervisor(h: Hart): void {
  const csr = h.csr;
  csr.write(Csr.MEDELEG, DELEGATED_EXCEPTIONS, 0);
  csr.write(Csr.MIDELEG, DELEGATED_INTERRUPTS, 0);
  csr.write(Csr.MCOUNTEREN, -1, 0);
  // U-mode rdtime (the vDSO's clocks): Linux opens scounteren.TM only from its SBI PMU driver, and the
  // built-in SBI has no PMU extension, so start the kernel with it open, as it would have opened it.
  csr.write(Csr.SCOUNTEREN, SCOUNTEREN_TM, 0);
  csr.write(Csr.MENVCFG, 0, MENVCFG_STCE_HI);
  csr.write(Csr.PMPADDR0, -1, -1);
  csr.write(Csr.PMPCFG0, 0x1f, 0);
}

/** What a Linux boot needs besides the board. */
export interface LinuxBootSpec {
  kernel: LinuxImage;
  initrd: Uint8Array | null;
  bootargs: string;
  /** An M-mode firmware (OpenSBI fw_dynamic/fw_jump) loaded at the start of RAM; null = built-in SBI. */
  firmware: Uint8Array | null;
}

/** The extensions this CPU implements, as the device tree announces them. */
export const GUEST_ISA = ["i", "m", "a", "f", "d", "c", "zicntr", "zicsr", "zifencei", "zihintpause", "sstc"];

/** fw_dynamic_info (OpenSBI's include/sbi/fw_dynamic.h): magic "OSBI", version 2, next stage in S-mode. */
const FW_DYNAMIC_MAGIC = 0x4942534f;
const FW_DYNAMIC_VERSION = 2;
const NEXT_MODE_S = 1;

/**
 * Boots Linux on the board: places kernel, initrd and a generated device tree (planBoot), then either
 * enters the kernel in S-mode on hart 0 with the built-in SBI answering its ECALLs (the other harts wait
 * for SBI HSM hart_start), or starts every hart in M-mode in the given firmware with a0 = hartid,
 * a1 = DTB, a2 = fw_dynamic info. Returns the device tree it placed.
 */
export function bootLinux(board: VirtBoard, spec: LinuxBootSpec): Uint8Array {
  const memoryBytes = board.options.memory;
  const tree = (initrd?: { start: number; end: number }) =>
    buildVirtDeviceTree({
      cpus: board.options.cpus,
      memoryBytes,
      bootargs: spec.bootargs,
      ...(initrd ? { initrd } : {}),
      virtioSlots: board.virtio.used(),
      isaExtensions: GUEST_ISA,
      mmuType: "riscv,sv48",
      rngSeed: crypto.getRandomValues(new Uint8Array(64)),
    });
  // The tree's size does not depend on where the initrd goes, only on whether there is one.
  const probe = tree(spec.initrd ? { start: VIRT_MAP.dram.base, end: VIRT_MAP.dram.base } : undefined);
  const layout = planBoot(
    memoryBytes,
    spec.kernel,
    spec.firmware?.length ?? null,
    spec.initrd?.length ?? null,
    probe.length,
  );
  const dtb = tree(layout.initrd ?? undefined);
  if (spec.firmware) board.copyToRam(VIRT_MAP.dram.base, spec.firmware, spec.firmware.length, "firmware");
  board.copyToRam(layout.kernel, spec.kernel.data, spec.kernel.imageSize, "kernel");
  if (spec.initrd && layout.initrd)
    board.copyToRam(layout.initrd.start, spec.initrd, spec.initrd.length, "initrd");
  board.copyToRam(layout.dtb, dtb, dtb.length, "device tree");

  const harts = board.cpu.harts;
  if (spec.firmware === null) {
    board.useBuiltinSbi();
    for (const h of harts) {
      h.reset(0, 0);
      prepareForSupervisor(h);
      h.stopped = h.index !== 0;
    }
    const entry = layout.kernel + spec.kernel.entryOffset;
    startSupervisor(harts[0] as Hart, lo(entry), hi(entry), lo(layout.dtb), hi(layout.dtb));
    return dtb;
  }
  const info = layout.dynamicInfo as number;
  const entry = layout.kernel + spec.kernel.entryOffset;
  const words = [FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, entry, NEXT_MODE_S, 0, -1];
  const block = new Uint8Array(words.length * 8);
  const view = new DataView(block.buffer);
  words.forEach((w, i) => {
    view.setUint32(i * 8, lo(w), true);
    view.setUint32(i * 8 + 4, w === -1 ? -1 : hi(w), true);
  });
  board.copyToRam(info, block, block.length, "fw_dynamic info");
  board.startAll(VIRT_MAP.dram.base);
  for (const h of harts) {
    h.writeX(10, h.index, 0);
    h.writeX(11, lo(layout.dtb), hi(layout.dtb));
    h.writeX(12, lo(info), hi(info));
  }
  return dtb;
}

const lo = (n: number) => (n % 2 ** 32) | 0;
const hi = (n: number) => Math.floor(n / 2 ** 32) | 0;
