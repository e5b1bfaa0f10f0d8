/**
 * Typed objects over /dev/kvm: the system (API version, capabilities, supported CPUID), a VM (memory slots,
 * in-kernel irqchip and PIT, interrupt lines, ioeventfd/irqfd) and its vCPUs (register state, CPUID, MSRs,
 * local APIC, the mmap'd kvm_run page). Every failing ioctl throws a SysError naming it.
 */

import { UserError } from "../../util/errors.js";
import * as libc from "../libc.js";
import {
  CAP,
  CPUID_ENTRY,
  CPUID_ENTRY_SIZE,
  FPU_SIZE,
  IOCTL,
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_PIO,
  IRQCHIP_SIZE,
  IRQFD_FLAG_RESAMPLE,
  KVM_API_VERSION,
  LAPIC_SIZE,
  MSR_ENTRY_SIZE,
  PIT_SPEAKER_DUMMY,
  REGS_SIZE,
  SREGS_SIZE,
} from "./abi.js";
import { decodeRegs, decodeSregs, encodeRegs, encodeSregs, type Regs, type Sregs } from "./registers.js";

export const KVM_DEVICE = "/dev/kvm";

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface MsrEntry {
  index: number;
  value: bigint;
}

/** Capabilities without which the engine cannot run a guest, and why each is needed. */
const REQUIRED_CAPABILITIES: [keyof typeof CAP, string][] = [
  ["USER_MEMORY", "guest RAM from our own mmap"],
  ["SET_TSS_ADDR", "the real-mode TSS"],
  ["IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC"],
  ["PIT2", "in-kernel PIT"],
  ["EXT_CPUID", "CPUID setup"],
  ["IMMEDIATE_EXIT", "stopping vCPUs"],
  ["MP_STATE", "secondary vCPUs (INIT/SIPI)"],
  ["IOEVENTFD", "virtio doorbells"],
  ["IRQFD", "virtio interrupts"],
];

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class Kvm {
  private constructor(readonly fd: number) {}

  /**
   * Opens /dev/kvm and checks the API version and the capabilities the engine needs. A host that cannot
   * run guests (no device, no permission, an old or partial KVM) gets a one-line UserError.
   */
  static open(path = KVM_DEVICE): Kvm {
    let fd: number;
    try {
      fd = libc.open(path, libc.O_RDWR);
    } catch (e) {
      if (e instanceof libc.SysError) {
        const why = e.errno === 13 ? " (no permission: add yourself to the 'kvm' group)" : "";
        throw new UserError(`cannot open ${path}: ${libc.errnoName(e.errno)}${why}`);
      }
      throw e;
    }
    const kvm = new Kvm(fd);
    try {
      const version = libc.ioctlInt(fd, IOCTL.GET_API_VERSION, 0, "KVM_GET_API_VERSION");
      if (version !== KVM_API_VERSION) {
        throw new UserError(`${path}: KVM API version ${version}, expected ${KVM_API_VERSION}`);
      }
      for (const [cap, why] of REQUIRED_CAPABILITIES) {
        if (kvm.checkExtension(CAP[cap]) <= 0) {
          throw new UserError(`${path}: the host's KVM lacks KVM_CAP_${cap} (needed for ${why})`);
        }
      }
    } catch (e) {
      kvm.close();
      throw e;
    }
    return kvm;
  }

  checkExtension(cap: number): number {
    return libc.ioctlInt(this.fd, IOCTL.CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION");
  }

  /** The most vCPUs a VM may have (KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS). */
  maxVcpus(): number {
    return this.checkExtension(CAP.MAX_VCPUS) || this.checkExtension(CAP.NR_VCPUS) || 1;
  }

  vcpuMmapSize(): number {
    return libc.ioctlInt(this.fd, IOCTL.GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer while the kernel answers E2BIG. */
  supportedCpuid(): CpuidEntry[] {
    for (let capacity = 64; ; capacity *= 2) {
      const buffer = new Uint8Array(8 + capacity * CPUID_ENTRY_SIZE);
      dv(buffer).setUint32(0, capacity, true);
      try {
        libc.ioctlPtr(this.fd, IOCTL.GET_SUPPORTED_CPUID, buffer, "KVM_GET_SUPPORTED_CPUID");
      } catch (e) {
        if (e instanceof libc.SysError && e.errno === 7 && capacity < 4096) continue;
        throw e;
      }
      return decodeCpuid(buffer);
    }
  }

  /** The MSR indices KVM saves and restores (KVM_GET_MSR_INDEX_LIST). */
  msrIndexList(): number[] {
    for (let capacity = 256; ; capacity *= 2) {
      const buffer = new Uint8Array(4 + capacity * 4);
      dv(buffer).setUint32(0, capacity, true);
      try {
        libc.ioctlPtr(this.fd, IOCTL.GET_MSR_INDEX_LIST, buffer, "KVM_GET_MSR_INDEX_LIST");
      } catch (e) {
        if (e instanceof libc.SysError && e.errno === 7 && capacity < 65536) continue;
        throw e;
      }
      const v = dv(buffer);
      const n = v.getUint32(0, true);
      return Array.from({ length: n }, (_, i) => v.getUint32(4 + i * 4, true));
    }
  }

  createVm(): Vm {
    return new Vm(this, libc.ioctlInt(this.fd, IOCTL.CREATE_VM, 0, "KVM_CREATE_VM"));
  }

  close(): void {
    libc.close(this.fd);
  }
}

export function decodeCpuid(buffer: Uint8Array): CpuidEntry[] {
  const v = dv(buffer);
  const n = v.getUint32(0, true);
  const entries: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = 8 + i * CPUID_ENTRY_SIZE;
    entries.push({
      function: v.getUint32(at + CPUID_ENTRY.function, true),
      index: v.getUint32(at + CPUID_ENTRY.index, true),
      flags: v.getUint32(at + CPUID_ENTRY.flags, true),
      eax: v.getUint32(at + CPUID_ENTRY.eax, true),
      ebx: v.getUint32(at + CPUID_ENTRY.ebx, true),
      ecx: v.getUint32(at + CPUID_ENTRY.ecx, true),
      edx: v.getUint32(at + CPUID_ENTRY.edx, true),
    });
  }
  return entries;
}

export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const buffer = new Uint8Array(8 + entries.length * CPUID_ENTRY_SIZE);
  const v = dv(buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const at = 8 + i * CPUID_ENTRY_SIZE;
    v.setUint32(at + CPUID_ENTRY.function, e.function >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.index, e.index >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.flags, e.flags >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.eax, e.eax >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.ebx, e.ebx >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.ecx, e.ecx >>> 0, true);
    v.setUint32(at + CPUID_ENTRY.edx, e.edx >>> 0, true);
  });
  return buffer;
}

export class Vm {
  private readonly vcpus: Vcpu[] = [];

  constructor(
    readonly kvm: Kvm,
    readonly fd: number,
  ) {}

  setTssAddress(address: number): void {
    libc.ioctlInt(this.fd, IOCTL.SET_TSS_ADDR, address, "KVM_SET_TSS_ADDR");
  }

  /** In-kernel 8259 PICs, IOAPIC and per-vCPU local APICs; must precede KVM_CREATE_VCPU. */
  createIrqchip(): void {
    libc.ioctlInt(this.fd, IOCTL.CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
  }

  /** The state of one in-kernel interrupt controller (struct kvm_irqchip; see IRQCHIP_ID). */
  getIrqchip(chipId: number): Uint8Array {
    const chip = new Uint8Array(IRQCHIP_SIZE);
    dv(chip).setUint32(0, chipId, true);
    libc.ioctlPtr(this.fd, IOCTL.GET_IRQCHIP, chip, "KVM_GET_IRQCHIP");
    return chip;
  }

  setIrqchip(chip: Uint8Array): void {
    if (chip.length !== IRQCHIP_SIZE) throw new RangeError("struct kvm_irqchip is 520 bytes");
    libc.ioctlPtr(this.fd, IOCTL.SET_IRQCHIP, chip, "KVM_SET_IRQCHIP");
  }

  /** In-kernel 8254 PIT (port 0x61's speaker bits answered by KVM too); must precede KVM_CREATE_VCPU. */
  createPit2(): void {
    const config = new Uint8Array(64);
    dv(config).setUint32(0, PIT_SPEAKER_DUMMY, true);
    libc.ioctlPtr(this.fd, IOCTL.CREATE_PIT2, config, "KVM_CREATE_PIT2");
  }

  /** `flags`: KVM_MEM_LOG_DIRTY_PAGES (1) to track the guest's writes (see dirty-log.ts). */
  setMemoryRegion(slot: number, guestAddress: number, size: number, hostAddress: bigint, flags = 0): void {
    const region = new Uint8Array(32);
    const v = dv(region);
    v.setUint32(0, slot, true);
    v.setUint32(4, flags, true);
    v.setBigUint64(8, BigInt(guestAddress), true);
    v.setBigUint64(16, BigInt(size), true);
    v.setBigUint64(24, hostAddress, true);
    libc.ioctlPtr(this.fd, IOCTL.SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION");
  }

  /** The guest's kvmclock in nanoseconds (KVM_GET_CLOCK, struct kvm_clock_data: clock at offset 0). */
  getClock(): bigint {
    const data = new Uint8Array(48);
    libc.ioctlPtr(this.fd, IOCTL.GET_CLOCK, data, "KVM_GET_CLOCK");
    return dv(data).getBigUint64(0, true);
  }

  /** Sets the kvmclock (KVM_SET_CLOCK with no flags: `clock` only); vCPUs must be out of KVM_RUN. */
  setClock(ns: bigint): void {
    const data = new Uint8Array(48);
    dv(data).setBigUint64(0, ns, true);
    libc.ioctlPtr(this.fd, IOCTL.SET_CLOCK, data, "KVM_SET_CLOCK");
  }

  /** Drives an interrupt line of the in-kernel irqchip (GSI: PIC and IOAPIC pin for 0–15). */
  irqLine(gsi: number, level: boolean): void {
    const arg = new Uint8Array(8);
    const v = dv(arg);
    v.setUint32(0, gsi, true);
    v.setUint32(4, level ? 1 : 0, true);
    libc.ioctlPtr(this.fd, IOCTL.IRQ_LINE, arg, "KVM_IRQ_LINE");
  }

  /**
   * Signalling `eventfd` raises `gsi` without a userspace exit on the way in: an edge (assert and
   * deassert at once), or with `resamplefd` a level that stays asserted until the guest acknowledges
   * the interrupt (EOI), when KVM deasserts it and signals `resamplefd`; whoever drives the line then
   * signals `eventfd` again if the device still wants service (KVM_CAP_IRQFD_RESAMPLE).
   */
  irqfd(eventfd: number, gsi: number, resamplefd?: number): void {
    const arg = new Uint8Array(32);
    const v = dv(arg);
    v.setUint32(0, eventfd, true);
    v.setUint32(4, gsi, true);
    if (resamplefd !== undefined) {
      v.setUint32(8, IRQFD_FLAG_RESAMPLE, true);
      v.setUint32(12, resamplefd, true);
    }
    libc.ioctlPtr(this.fd, IOCTL.IRQFD, arg, "KVM_IRQFD");
  }

  /**
   * Guest writes of `length` bytes at `address` (an MMIO address, or a port with `pio`) signal `eventfd`
   * inside the kernel instead of exiting to userspace; with `match`, only writes of that value.
   */
  ioeventfd(
    eventfd: number,
    address: number,
    length: number,
    options: { pio?: boolean; match?: bigint } = {},
  ): void {
    const arg = new Uint8Array(64);
    const v = dv(arg);
    let flags = options.pio ? IOEVENTFD_FLAG_PIO : 0;
    if (options.match !== undefined) {
      flags |= IOEVENTFD_FLAG_DATAMATCH;
      v.setBigUint64(0, options.match, true);
    }
    v.setBigUint64(8, BigInt(address), true);
    v.setUint32(16, length, true);
    v.setInt32(20, eventfd, true);
    v.setUint32(24, flags, true);
    libc.ioctlPtr(this.fd, IOCTL.IOEVENTFD, arg, "KVM_IOEVENTFD");
  }

  createVcpu(id: number): Vcpu {
    const fd = libc.ioctlInt(this.fd, IOCTL.CREATE_VCPU, id, "KVM_CREATE_VCPU");
    const runSize = this.kvm.vcpuMmapSize();
    let runAddress: bigint;
    try {
      runAddress = libc.mmap(runSize, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, "kvm_run");
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    const vcpu = new Vcpu(id, fd, runAddress, runSize);
    this.vcpus.push(vcpu);
    return vcpu;
  }

  /** Closes the vCPUs and the VM. Only once no thread runs a vCPU any more. */
  close(): void {
    for (const vcpu of this.vcpus) vcpu.close();
    this.vcpus.length = 0;
    libc.close(this.fd);
  }
}

/** Register-state ioctls on a vCPU fd, usable from any thread (the vCPU worker uses them for dumps). */
export function getRegs(fd: number): Regs {
  const bytes = new Uint8Array(REGS_SIZE);
  libc.ioctlPtr(fd, IOCTL.GET_REGS, bytes, "KVM_GET_REGS");
  return decodeRegs(bytes);
}

export function getSregs(fd: number): Sregs {
  const bytes = new Uint8Array(SREGS_SIZE);
  libc.ioctlPtr(fd, IOCTL.GET_SREGS, bytes, "KVM_GET_SREGS");
  return decodeSregs(bytes);
}

export class Vcpu {
  /** This thread's view of the kvm_run page (immediate_exit, exit details, PIO data). */
  readonly run: Uint8Array;
  private closed = false;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly runAddress: bigint,
    readonly runSize: number,
  ) {
    this.run = new Uint8Array(libc.view(runAddress, runSize));
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    libc.ioctlPtr(this.fd, IOCTL.SET_CPUID2, encodeCpuid(entries), "KVM_SET_CPUID2");
  }

  /** Sets MSRs; returns how many were set (KVM stops at the first one it rejects). */
  setMsrs(entries: readonly MsrEntry[]): number {
    const buffer = new Uint8Array(8 + entries.length * MSR_ENTRY_SIZE);
    const v = dv(buffer);
    v.setUint32(0, entries.length, true);
    entries.forEach((e, i) => {
      v.setUint32(8 + i * MSR_ENTRY_SIZE, e.index, true);
      v.setBigUint64(8 + i * MSR_ENTRY_SIZE + 8, e.value, true);
    });
    return libc.ioctlPtr(this.fd, IOCTL.SET_MSRS, buffer, "KVM_SET_MSRS");
  }

  getMsrs(indices: readonly number[]): MsrEntry[] {
    const buffer = new Uint8Array(8 + indices.length * MSR_ENTRY_SIZE);
    const v = dv(buffer);
    v.setUint32(0, indices.length, true);
    indices.forEach((index, i) => {
      v.setUint32(8 + i * MSR_ENTRY_SIZE, index, true);
    });
    const n = libc.ioctlPtr(this.fd, IOCTL.GET_MSRS, buffer, "KVM_GET_MSRS");
    return indices
      .slice(0, n)
      .map((index, i) => ({ index, value: v.getBigUint64(8 + i * MSR_ENTRY_SIZE + 8, true) }));
  }

  getRegs(): Regs {
    return getRegs(this.fd);
  }

  setRegs(regs: Regs): void {
    libc.ioctlPtr(this.fd, IOCTL.SET_REGS, encodeRegs(regs), "KVM_SET_REGS");
  }

  getSregs(): Sregs {
    return getSregs(this.fd);
  }

  setSregs(sregs: Sregs): void {
    libc.ioctlPtr(this.fd, IOCTL.SET_SREGS, encodeSregs(sregs), "KVM_SET_SREGS");
  }

  setFpu(fpu: Uint8Array): void {
    if (fpu.length !== FPU_SIZE) throw new RangeError("kvm_fpu is 416 bytes");
    libc.ioctlPtr(this.fd, IOCTL.SET_FPU, fpu, "KVM_SET_FPU");
  }

  getLapic(): Uint8Array {
    const regs = new Uint8Array(LAPIC_SIZE);
    libc.ioctlPtr(this.fd, IOCTL.GET_LAPIC, regs, "KVM_GET_LAPIC");
    return regs;
  }

  setLapic(regs: Uint8Array): void {
    if (regs.length !== LAPIC_SIZE) throw new RangeError("kvm_lapic_state is 1024 bytes");
    libc.ioctlPtr(this.fd, IOCTL.SET_LAPIC, regs, "KVM_SET_LAPIC");
  }

  /** KVM_MP_STATE_* (0 runnable, 1 uninitialized, 2 init received, 3 halted, 4 SIPI received). */
  mpState(): number {
    const state = new Uint8Array(4);
    libc.ioctlPtr(this.fd, IOCTL.GET_MP_STATE, state, "KVM_GET_MP_STATE");
    return dv(state).getUint32(0, true);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.munmap(this.runAddress, this.runSize);
    libc.close(this.fd);
  }
}
