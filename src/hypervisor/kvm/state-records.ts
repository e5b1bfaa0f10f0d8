/**
 * Snapshot records of the KVM state (vcpu-state.ts): versioned, and checked field by field on the way
 * back, so a damaged record is a TypeError naming the field rather than an ioctl that fails half-way
 * through a restore or, worse, one KVM takes. General registers and MSRs are written out by name and
 * index (as hex strings: u64 values do not fit a JSON number); the kernel's own structs (sregs, XSAVE,
 * LAPIC page, events, irqchips, PIT) travel as base64 of their exact bytes, checked for their size.
 */
import { RecordReader } from "../../util/record.js";
import {
  FPU_SIZE,
  IRQCHIP_ID,
  IRQCHIP_SIZE,
  LAPIC_SIZE,
  MP_STATE_MAX,
  PIT_STATE2_SIZE,
  REG_NAMES,
  SREGS_SIZE,
  VCPU_EVENTS_SIZE,
  XCRS_SIZE,
  XSAVE_SIZE,
} from "./abi.js";
import type { MsrEntry } from "./kvm.js";
import { decodeRegs, encodeRegs, type Regs } from "./registers.js";
import type { VcpuStateBytes, VmStateBytes } from "./vcpu-state.js";

export interface VcpuRecord {
  version: 1;
  regs: Record<string, string>;
  sregs: string;
  xsave: string | null;
  fpu: string | null;
  xcrs: string | null;
  lapic: string;
  events: string | null;
  mpState: number;
  /** [index, value as hex] pairs. */
  msrs: [number, string][];
}

export interface KvmVmRecord {
  version: 1;
  picMaster: string;
  picSlave: string;
  ioapic: string;
  pit: string;
  /** The kvmclock in nanoseconds, as a decimal string. */
  clock: string;
}

const HEX64 = /^0x[0-9a-f]{1,16}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** XSAVE areas grow with the CPU's features (AMX: 11 KiB); anything past this is not one. */
const XSAVE_MAX = 64 * 1024;
const MSR_MAX = 4096;

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
const hex = (n: bigint) => `0x${n.toString(16)}`;

function field(s: RecordReader, key: string): unknown {
  return s.optional(key, (v) => v);
}

/** `key` as base64 of exactly `size` bytes (or, with a range, a multiple of 4 in it). */
function bytesField(s: RecordReader, key: string, size: number | [number, number]): Uint8Array {
  const v = field(s, key);
  const [min, max] = typeof size === "number" ? [size, size] : size;
  const must = min === max ? `base64 of ${min} bytes` : `base64 of ${min}..${max} bytes`;
  if (typeof v !== "string" || !BASE64.test(v) || v.length % 4 !== 0) s.fail(key, must);
  const bytes = new Uint8Array(Buffer.from(v, "base64"));
  if (bytes.length < min || bytes.length > max || bytes.length % 4 !== 0) s.fail(key, must);
  return bytes;
}

function optionalBytes(s: RecordReader, key: string, size: number | [number, number]): Uint8Array | null {
  return field(s, key) === null ? null : bytesField(s, key, size);
}

function u64(s: RecordReader, key: string, v: unknown): bigint {
  if (typeof v !== "string" || !HEX64.test(v)) s.fail(key, "a 64-bit hex string (0x…)");
  return BigInt(v);
}

export function vcpuRecord(state: VcpuStateBytes): VcpuRecord {
  const regs = decodeRegs(state.regs);
  return {
    version: 1,
    regs: Object.fromEntries(REG_NAMES.map((name) => [name, hex(regs[name])])),
    sregs: base64(state.sregs),
    xsave: state.xsave === null ? null : base64(state.xsave),
    fpu: state.fpu === null ? null : base64(state.fpu),
    xcrs: state.xcrs === null ? null : base64(state.xcrs),
    lapic: base64(state.lapic),
    events: state.events === null ? null : base64(state.events),
    mpState: state.mpState,
    msrs: state.msrs.map((m) => [m.index, hex(m.value)]),
  };
}

/** Checks a vCPU record (`what` names it: "vcpu0") and gives back the bytes the ioctls take. */
export function vcpuFromRecord(what: string, record: unknown): VcpuStateBytes {
  const s: RecordReader = new RecordReader(what, record, 1);
  const regsField = field(s, "regs");
  if (typeof regsField !== "object" || regsField === null || Array.isArray(regsField)) {
    s.fail("regs", "an object of registers");
  }
  const regs = {} as Regs;
  for (const name of REG_NAMES) {
    regs[name] = u64(s, `regs.${name}`, (regsField as Record<string, unknown>)[name]);
  }
  const xsave = optionalBytes(s, "xsave", [XSAVE_SIZE, XSAVE_MAX]);
  const fpu = optionalBytes(s, "fpu", FPU_SIZE);
  if ((xsave === null) === (fpu === null)) s.fail("xsave", "present exactly when fpu is not");
  const rawMsrs = field(s, "msrs");
  if (!Array.isArray(rawMsrs) || rawMsrs.length > MSR_MAX)
    s.fail("msrs", `a list of at most ${MSR_MAX} MSRs`);
  const msrs: MsrEntry[] = rawMsrs.map((m, i) => {
    if (!Array.isArray(m) || m.length !== 2) s.fail(`msrs[${i}]`, "an [index, value] pair");
    const [index, value] = m as [unknown, unknown];
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > 0xffff_ffff) {
      s.fail(`msrs[${i}] index`, "a u32");
    }
    return { index, value: u64(s, `msrs[${i}] value`, value) };
  });
  return {
    regs: encodeRegs(regs),
    sregs: bytesField(s, "sregs", SREGS_SIZE),
    xsave,
    fpu,
    xcrs: optionalBytes(s, "xcrs", XCRS_SIZE),
    lapic: bytesField(s, "lapic", LAPIC_SIZE),
    events: optionalBytes(s, "events", VCPU_EVENTS_SIZE),
    mpState: s.int("mpState", 0, MP_STATE_MAX),
    msrs,
  };
}

export function kvmVmRecord(state: VmStateBytes): KvmVmRecord {
  return {
    version: 1,
    picMaster: base64(state.picMaster),
    picSlave: base64(state.picSlave),
    ioapic: base64(state.ioapic),
    pit: base64(state.pit),
    clock: state.clock.toString(),
  };
}

export function kvmVmFromRecord(what: string, record: unknown): VmStateBytes {
  const s: RecordReader = new RecordReader(what, record, 1);
  const chip = (key: string, id: number) => {
    const bytes = bytesField(s, key, IRQCHIP_SIZE);
    // struct kvm_irqchip starts with its chip id: a section swapped with another is caught here.
    if (new DataView(bytes.buffer).getUint32(0, true) !== id) s.fail(key, `the state of irqchip ${id}`);
    return bytes;
  };
  const clock = field(s, "clock");
  if (typeof clock !== "string" || !/^[0-9]{1,20}$/.test(clock) || BigInt(clock) >= 2n ** 64n) {
    s.fail("clock", "a u64 as a decimal string");
  }
  return {
    picMaster: chip("picMaster", IRQCHIP_ID.PIC_MASTER),
    picSlave: chip("picSlave", IRQCHIP_ID.PIC_SLAVE),
    ioapic: chip("ioapic", IRQCHIP_ID.IOAPIC),
    pit: bytesField(s, "pit", PIT_STATE2_SIZE),
    clock: BigInt(clock),
  };
}
