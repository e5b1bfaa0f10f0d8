import { Csr } from "../../cpu/riscv/csr/csr-numbers.js";
import type { Hart } from "../../cpu/riscv/hart.js";
import { UserError } from "../../util/errors.js";
import type { LinuxImage } from "../loader/linux-image.js";
import { VIRT_MAP } from "./memory-map.js";

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
  const kernelOffset = Math.max(kernel.textOffset, firmwareSize === null ? 0 : alignUp(firmwareSize, 2 * MiB));
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
      throw new UserError(`the initrd (${Math.ceil(initrdSize / MiB)} MiB) does not fit in --memory ${ramSize / MiB}M`);
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
  csr.write(Csr.MENVCFG, 0, MENVCFG_STCE_HI);
  csr.write(Csr.PMPADDR0, -1, -1);
  csr.write(Csr.PMPCFG0, 0x1f, 0);
}
