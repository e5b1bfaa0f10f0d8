/**
 * The KVM userspace ABI for x86-64: ioctl numbers, capability numbers, exit reasons and the byte offsets of
 * the structs we pass (checked against linux/kvm.h with offsetof; see test/kvm/abi.test.ts).
 */

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const KVMIO = 0xae;

/** Linux's _IOC encoding: direction 31:30, size 29:16, type 15:8, number 7:0 (as an unsigned 32-bit value). */
function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

export const KVM_API_VERSION = 12;

export const IOCTL = {
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, 4),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, 8),
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, 32),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, 8),
  GET_IRQCHIP: iowr(0x62, 520),
  /** _IOR in linux/kvm.h, although userspace writes it. */
  SET_IRQCHIP: ior(0x63, 520),
  IRQFD: iow(0x76, 32),
  CREATE_PIT2: iow(0x77, 64),
  IOEVENTFD: iow(0x79, 64),
  SET_CLOCK: iow(0x7b, 48),
  GET_CLOCK: ior(0x7c, 48),
  RUN: io(0x80),
  GET_REGS: ior(0x81, 144),
  SET_REGS: iow(0x82, 144),
  GET_SREGS: ior(0x83, 312),
  SET_SREGS: iow(0x84, 312),
  GET_MSRS: iowr(0x88, 8),
  SET_MSRS: iow(0x89, 8),
  GET_FPU: ior(0x8c, 416),
  SET_FPU: iow(0x8d, 416),
  GET_LAPIC: ior(0x8e, 1024),
  SET_LAPIC: iow(0x8f, 1024),
  SET_CPUID2: iow(0x90, 8),
  GET_MP_STATE: ior(0x98, 4),
  SET_MP_STATE: iow(0x99, 4),
  // KVM_GET_PIT2 and KVM_GET_VCPU_EVENTS share number 0x9f (and SET_* 0xa0): the struct size tells them apart.
  GET_VCPU_EVENTS: ior(0x9f, 64),
  SET_VCPU_EVENTS: iow(0xa0, 64),
  GET_PIT2: ior(0x9f, 112),
  SET_PIT2: iow(0xa0, 112),
  GET_XSAVE: ior(0xa4, 4096),
  SET_XSAVE: iow(0xa5, 4096),
  GET_XCRS: ior(0xa6, 392),
  SET_XCRS: iow(0xa7, 392),
  /** Like GET_XSAVE, for an area larger than 4 KiB (KVM_CAP_XSAVE2 answers its size). */
  GET_XSAVE2: ior(0xcf, 4096),
  GET_DIRTY_LOG: iow(0x42, 16),
} as const;

export type IoctlName = keyof typeof IOCTL;

/** Capabilities (KVM_CHECK_EXTENSION) the engine relies on, with the name the error message uses. */
export const CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  MP_STATE: 14,
  IRQFD: 32,
  PIT2: 33,
  IOEVENTFD: 36,
  ADJUST_CLOCK: 39,
  IRQFD_RESAMPLE: 82,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  IMMEDIATE_EXIT: 136,
  PIT_STATE2: 35,
  VCPU_EVENTS: 41,
  XSAVE: 55,
  XCRS: 56,
  XSAVE2: 208,
} as const;

export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

export const EXIT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(EXIT).map(([name, n]) => [n, `KVM_EXIT_${name}`]),
);

export const SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

export const PIT_SPEAKER_DUMMY = 1;

/** struct kvm_irqchip (520 bytes): chip_id u32 @0 (0 PIC master, 1 PIC slave, 2 IOAPIC), state @8. */
export const IRQCHIP_SIZE = 520;
export const IRQCHIP_ID = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;
/** struct kvm_pic_state fields, offsets inside struct kvm_irqchip. */
export const PIC_STATE = { imr: 8 + 2, irqBase: 8 + 5, initState: 8 + 9 } as const;
export const IOEVENTFD_FLAG_PIO = 1 << 1;
export const IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
/** struct kvm_irqfd (32 bytes): fd u32 @0, gsi u32 @4, flags u32 @8, resamplefd u32 @12, pad. */
export const IRQFD_FLAG_DEASSIGN = 1 << 0;
/** Level-triggered irqfd: the GSI stays asserted until the guest's EOI, then `resamplefd` is signalled. */
export const IRQFD_FLAG_RESAMPLE = 1 << 1;

/** struct kvm_run (the mmap'd page of a vCPU); the union fields all start at 32. */
export const RUN = {
  immediateExit: 1,
  exitReason: 8,
  /** KVM_EXIT_IO: direction (0 in, 1 out) u8, size u8, port u16, count u32, data_offset u64. */
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  /** KVM_EXIT_MMIO: phys_addr u64, data[8], len u32, is_write u8. */
  mmioAddress: 32,
  mmioData: 40,
  mmioLength: 48,
  mmioIsWrite: 52,
  /** KVM_EXIT_FAIL_ENTRY: hardware_entry_failure_reason u64, cpu u32. */
  failReason: 32,
  failCpu: 40,
  /** KVM_EXIT_INTERNAL_ERROR: suberror u32, ndata u32, data u64[16]. */
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  /** KVM_EXIT_SYSTEM_EVENT: type u32, ndata u32, data u64[16]. */
  eventType: 32,
  /** KVM_EXIT_EXCEPTION: exception u32, error_code u32. */
  exception: 32,
  exceptionError: 36,
} as const;

export const REGS_SIZE = 144;
/** General registers in struct kvm_regs order, 8 bytes each; rip @128, rflags @136. */
export const REG_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags",
] as const;
export type RegName = (typeof REG_NAMES)[number];

export const SREGS_SIZE = 312;
/** struct kvm_sregs: eight 24-byte segments, two 16-byte tables, then control registers. */
export const SREGS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
} as const;

/** struct kvm_segment. */
export const SEGMENT = {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
} as const;

export const FPU_SIZE = 416;
export const FPU = { fcw: 128, mxcsr: 408 } as const;

export const LAPIC_SIZE = 1024;
export const LAPIC = { id: 0x20, lvtLint0: 0x350, lvtLint1: 0x360 } as const;

export const CPUID_ENTRY_SIZE = 40;
export const CPUID_ENTRY = { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 } as const;
/** kvm_cpuid_entry2.flags: the leaf has subleaves selected by ECX. */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;

export const MSR_ENTRY_SIZE = 16;

/** State structs read and written whole by snapshots (vcpu-state.ts); their insides are the kernel's. */
export const XSAVE_SIZE = 4096;
export const XCRS_SIZE = 392;
export const VCPU_EVENTS_SIZE = 64;
/** struct kvm_vcpu_events.flags @20: which optional parts KVM_SET_VCPU_EVENTS is to take. */
export const VCPU_EVENTS_FLAGS = 20;
export const VCPUEVENT_VALID = { NMI_PENDING: 1, SIPI_VECTOR: 2 } as const;
export const PIT_STATE2_SIZE = 112;
export const CLOCK_DATA_SIZE = 48;
/** KVM_MP_STATE_* values 0..8 (runnable … AP reset hold); x86 uses 0..4. */
export const MP_STATE_MAX = 8;
