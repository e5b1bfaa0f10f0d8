/**
 * The whole KVM state of a vCPU and of a VM, read and written through ioctls, for snapshots: registers,
 * special registers, FPU/XSAVE, XCRs, MSRs, LAPIC, pending events, MP state; and VM-wide the in-kernel
 * PICs and IOAPIC, the PIT and the kvmclock. Bytes stay in the kernel's layouts (abi.ts); records.ts turns
 * them into checked snapshot records.
 *
 * The vCPU functions take a vCPU fd and must run on the thread that runs that vCPU (the engine hands them
 * to a parked vCPU worker): KVM loads a vCPU onto the calling thread, and some state (the FPU, pending
 * events) is only coherent there.
 */
import * as libc from "../libc.js";
import {
  CAP,
  FPU_SIZE,
  IOCTL,
  IRQCHIP_ID,
  IRQCHIP_SIZE,
  LAPIC_SIZE,
  MSR_ENTRY_SIZE,
  PIT_STATE2_SIZE,
  REGS_SIZE,
  SREGS_SIZE,
  VCPU_EVENTS_FLAGS,
  VCPU_EVENTS_SIZE,
  VCPUEVENT_VALID,
  XCRS_SIZE,
  XSAVE_SIZE,
} from "./abi.js";
import type { Kvm, MsrEntry, Vm } from "./kvm.js";

/** What this host's KVM can save of a vCPU; decided once per VM on the main thread. */
export interface VcpuStateCaps {
  /** Bytes of the XSAVE area (KVM_CAP_XSAVE2's answer when larger than 4 KiB); 0: only KVM_GET_FPU. */
  xsaveBytes: number;
  xcrs: boolean;
  events: boolean;
  /** Every MSR KVM says it saves (KVM_GET_MSR_INDEX_LIST); the vCPU thread drops those it refuses. */
  msrIndices: number[];
}

export interface VcpuStateBytes {
  regs: Uint8Array;
  sregs: Uint8Array;
  /** The XSAVE area, or null where the host has no KVM_CAP_XSAVE (then `fpu`). */
  xsave: Uint8Array | null;
  fpu: Uint8Array | null;
  xcrs: Uint8Array | null;
  lapic: Uint8Array;
  events: Uint8Array | null;
  mpState: number;
  msrs: MsrEntry[];
}

export interface VmStateBytes {
  picMaster: Uint8Array;
  picSlave: Uint8Array;
  ioapic: Uint8Array;
  pit: Uint8Array;
  /** The kvmclock in nanoseconds. */
  clock: bigint;
}

/** The TSC deadline: only meaningful once the LAPIC is in TSC-deadline mode, so it is written again last. */
const MSR_TSC_DEADLINE = 0x6e0;

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function get(fd: number, request: number, size: number, name: string): Uint8Array {
  const bytes = new Uint8Array(size);
  libc.ioctlPtr(fd, request, bytes, name);
  return bytes;
}

/** Which optional pieces this KVM offers; a snapshot must refuse what it could not restore. */
export function vcpuStateCaps(kvm: Kvm): VcpuStateCaps {
  const xsave = kvm.checkExtension(CAP.XSAVE) > 0;
  const xsave2 = xsave ? kvm.checkExtension(CAP.XSAVE2) : 0;
  return {
    xsaveBytes: xsave ? Math.max(XSAVE_SIZE, xsave2) : 0,
    xcrs: kvm.checkExtension(CAP.XCRS) > 0,
    events: kvm.checkExtension(CAP.VCPU_EVENTS) > 0,
    msrIndices: kvm.msrIndexList(),
  };
}

/** KVM_GET_MSRS stops at the first MSR it will not read: drop that one and read on from the next. */
function readMsrs(fd: number, indices: readonly number[]): MsrEntry[] {
  const out: MsrEntry[] = [];
  let rest = indices;
  while (rest.length > 0) {
    const buffer = new Uint8Array(8 + rest.length * MSR_ENTRY_SIZE);
    const v = dv(buffer);
    v.setUint32(0, rest.length, true);
    rest.forEach((index, i) => {
      v.setUint32(8 + i * MSR_ENTRY_SIZE, index, true);
    });
    const n = libc.ioctlPtr(fd, IOCTL.GET_MSRS, buffer, "KVM_GET_MSRS");
    for (let i = 0; i < n; i++) {
      out.push({ index: rest[i] as number, value: v.getBigUint64(8 + i * MSR_ENTRY_SIZE + 8, true) });
    }
    rest = rest.slice(n + 1);
  }
  return out;
}

function writeMsrs(fd: number, msrs: readonly MsrEntry[]): void {
  if (msrs.length === 0) return;
  const buffer = new Uint8Array(8 + msrs.length * MSR_ENTRY_SIZE);
  const v = dv(buffer);
  v.setUint32(0, msrs.length, true);
  msrs.forEach((e, i) => {
    v.setUint32(8 + i * MSR_ENTRY_SIZE, e.index, true);
    v.setBigUint64(8 + i * MSR_ENTRY_SIZE + 8, e.value, true);
  });
  const n = libc.ioctlPtr(fd, IOCTL.SET_MSRS, buffer, "KVM_SET_MSRS");
  if (n < msrs.length) {
    const refused = msrs[n] as MsrEntry;
    throw new Error(
      `KVM_SET_MSRS refused MSR 0x${refused.index.toString(16)} = 0x${refused.value.toString(16)}`,
    );
  }
}

/** Reads a vCPU's state; on the vCPU's own thread, outside KVM_RUN. */
export function readVcpuState(fd: number, caps: VcpuStateCaps): VcpuStateBytes {
  let xsave: Uint8Array | null = null;
  if (caps.xsaveBytes > XSAVE_SIZE) {
    xsave = get(fd, IOCTL.GET_XSAVE2, caps.xsaveBytes, "KVM_GET_XSAVE2");
  } else if (caps.xsaveBytes > 0) {
    xsave = get(fd, IOCTL.GET_XSAVE, XSAVE_SIZE, "KVM_GET_XSAVE");
  }
  const mp = get(fd, IOCTL.GET_MP_STATE, 4, "KVM_GET_MP_STATE");
  return {
    regs: get(fd, IOCTL.GET_REGS, REGS_SIZE, "KVM_GET_REGS"),
    sregs: get(fd, IOCTL.GET_SREGS, SREGS_SIZE, "KVM_GET_SREGS"),
    xsave,
    fpu: xsave === null ? get(fd, IOCTL.GET_FPU, FPU_SIZE, "KVM_GET_FPU") : null,
    xcrs: caps.xcrs ? get(fd, IOCTL.GET_XCRS, XCRS_SIZE, "KVM_GET_XCRS") : null,
    lapic: get(fd, IOCTL.GET_LAPIC, LAPIC_SIZE, "KVM_GET_LAPIC"),
    events: caps.events ? get(fd, IOCTL.GET_VCPU_EVENTS, VCPU_EVENTS_SIZE, "KVM_GET_VCPU_EVENTS") : null,
    mpState: dv(mp).getUint32(0, true),
    msrs: readMsrs(fd, caps.msrIndices),
  };
}

/**
 * Writes a vCPU's state, in QEMU's order: registers, XSAVE, XCRs, sregs, MSRs, MP state, LAPIC, events,
 * then the TSC deadline again (writing the LAPIC clears it). On the vCPU's own thread, before KVM_RUN.
 */
export function writeVcpuState(fd: number, s: VcpuStateBytes): void {
  libc.ioctlPtr(fd, IOCTL.SET_REGS, s.regs, "KVM_SET_REGS");
  if (s.xsave !== null) libc.ioctlPtr(fd, IOCTL.SET_XSAVE, s.xsave, "KVM_SET_XSAVE");
  else if (s.fpu !== null) libc.ioctlPtr(fd, IOCTL.SET_FPU, s.fpu, "KVM_SET_FPU");
  if (s.xcrs !== null) libc.ioctlPtr(fd, IOCTL.SET_XCRS, s.xcrs, "KVM_SET_XCRS");
  libc.ioctlPtr(fd, IOCTL.SET_SREGS, s.sregs, "KVM_SET_SREGS");
  writeMsrs(fd, s.msrs);
  const mp = new Uint8Array(4);
  dv(mp).setUint32(0, s.mpState, true);
  libc.ioctlPtr(fd, IOCTL.SET_MP_STATE, mp, "KVM_SET_MP_STATE");
  libc.ioctlPtr(fd, IOCTL.SET_LAPIC, s.lapic, "KVM_SET_LAPIC");
  if (s.events !== null) {
    const events = s.events.slice();
    const v = dv(events);
    // GET leaves these two out of `flags`, yet fills their fields: ask SET to take them too.
    v.setUint32(
      VCPU_EVENTS_FLAGS,
      v.getUint32(VCPU_EVENTS_FLAGS, true) | VCPUEVENT_VALID.NMI_PENDING | VCPUEVENT_VALID.SIPI_VECTOR,
      true,
    );
    libc.ioctlPtr(fd, IOCTL.SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS");
  }
  writeMsrs(
    fd,
    s.msrs.filter((m) => m.index === MSR_TSC_DEADLINE),
  );
}

/** The VM-wide state: PICs, IOAPIC, PIT, kvmclock. Any vCPU must be out of KVM_RUN. */
export function readVmState(vm: Vm): VmStateBytes {
  return {
    picMaster: vm.getIrqchip(IRQCHIP_ID.PIC_MASTER),
    picSlave: vm.getIrqchip(IRQCHIP_ID.PIC_SLAVE),
    ioapic: vm.getIrqchip(IRQCHIP_ID.IOAPIC),
    pit: get(vm.fd, IOCTL.GET_PIT2, PIT_STATE2_SIZE, "KVM_GET_PIT2"),
    clock: vm.getClock(),
  };
}

export function writeVmState(vm: Vm, s: VmStateBytes): void {
  for (const chip of [s.picMaster, s.picSlave, s.ioapic]) {
    if (chip.length !== IRQCHIP_SIZE) throw new RangeError("struct kvm_irqchip is 520 bytes");
    vm.setIrqchip(chip);
  }
  libc.ioctlPtr(vm.fd, IOCTL.SET_PIT2, s.pit, "KVM_SET_PIT2");
  vm.setClock(s.clock);
}
