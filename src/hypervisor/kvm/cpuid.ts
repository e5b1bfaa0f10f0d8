/**
 * The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, normalised per vCPU (APIC ID and topology, hypervisor
 * bit, TSC-deadline timer) and optionally with named features masked off (`--cpu-features -x2apic,-cx16`).
 */
import { UserError } from "../../util/errors.js";
import { CPUID_FLAG_SIGNIFICANT_INDEX } from "./abi.js";
import type { CpuidEntry } from "./kvm.js";

type Register = "eax" | "ebx" | "ecx" | "edx";

interface FeatureBit {
  leaf: number;
  subleaf: number;
  register: Register;
  bit: number;
}

/** Features that can be masked by name (a subset; names as in Linux's /proc/cpuinfo). */
export const CPU_FEATURES: Record<string, FeatureBit[]> = {
  sse3: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 0 }],
  pclmulqdq: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 1 }],
  monitor: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 3 }],
  ssse3: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 9 }],
  fma: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 12 }],
  cx16: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 13 }],
  pdcm: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 15 }],
  pcid: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 17 }],
  "sse4.1": [{ leaf: 1, subleaf: 0, register: "ecx", bit: 19 }],
  "sse4.2": [{ leaf: 1, subleaf: 0, register: "ecx", bit: 20 }],
  x2apic: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 21 }],
  movbe: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 22 }],
  popcnt: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 23 }],
  "tsc-deadline": [{ leaf: 1, subleaf: 0, register: "ecx", bit: 24 }],
  aes: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 25 }],
  xsave: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 26 }],
  avx: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 28 }],
  f16c: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 29 }],
  rdrand: [{ leaf: 1, subleaf: 0, register: "ecx", bit: 30 }],
  mtrr: [{ leaf: 1, subleaf: 0, register: "edx", bit: 12 }],
  fsgsbase: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 0 }],
  bmi1: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 3 }],
  avx2: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 5 }],
  smep: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 7 }],
  bmi2: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 8 }],
  erms: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 9 }],
  invpcid: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 10 }],
  avx512f: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 16 }],
  rdseed: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 18 }],
  smap: [{ leaf: 7, subleaf: 0, register: "ebx", bit: 20 }],
  umip: [{ leaf: 7, subleaf: 0, register: "ecx", bit: 2 }],
  pku: [{ leaf: 7, subleaf: 0, register: "ecx", bit: 3 }],
  la57: [{ leaf: 7, subleaf: 0, register: "ecx", bit: 16 }],
  rdpid: [{ leaf: 7, subleaf: 0, register: "ecx", bit: 22 }],
  "arch-capabilities": [{ leaf: 7, subleaf: 0, register: "edx", bit: 29 }],
  "spec-ctrl": [{ leaf: 7, subleaf: 0, register: "edx", bit: 26 }],
  pdpe1gb: [{ leaf: 0x80000001, subleaf: 0, register: "edx", bit: 26 }],
  rdtscp: [{ leaf: 0x80000001, subleaf: 0, register: "edx", bit: 27 }],
  /** kvm-clock, both the old and the new MSR sets. */
  kvmclock: [
    { leaf: 0x40000001, subleaf: 0, register: "eax", bit: 0 },
    { leaf: 0x40000001, subleaf: 0, register: "eax", bit: 3 },
  ],
  "kvm-pv-eoi": [{ leaf: 0x40000001, subleaf: 0, register: "eax", bit: 6 }],
};

/** Parses `-name,-name` into feature names to remove; unknown names and other syntax are user errors. */
export function parseCpuFeatures(text: string): string[] {
  const removed: string[] = [];
  for (const item of text.split(",")) {
    const name = item.trim();
    if (name === "") continue;
    if (!name.startsWith("-")) {
      throw new UserError(`--cpu-features: '${name}': only removals are supported, e.g. -x2apic,-cx16`);
    }
    const feature = name.slice(1).toLowerCase();
    if (!(feature in CPU_FEATURES)) {
      throw new UserError(
        `--cpu-features: unknown feature '${feature}' (known: ${Object.keys(CPU_FEATURES).join(" ")})`,
      );
    }
    removed.push(feature);
  }
  return removed;
}

export interface CpuidOptions {
  /** This vCPU's APIC ID (= its index). */
  apicId: number;
  cpus: number;
  /** Features to clear (names from CPU_FEATURES). */
  remove?: readonly string[];
  /** The host's KVM can emulate the LAPIC TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER). */
  tscDeadline?: boolean;
}

function find(entries: CpuidEntry[], leaf: number, subleaf = 0): CpuidEntry | undefined {
  return entries.find((e) => e.function === leaf && e.index === subleaf);
}

function log2Ceil(n: number): number {
  let shift = 0;
  while (1 << shift < n) shift++;
  return shift;
}

/**
 * One vCPU's CPUID from the host-supported table (which is not modified): its APIC ID in leaf 1 EBX[31:24],
 * leaf 0xB and leaf 0x8000001E; a single socket of `cpus` cores with one thread each; the hypervisor bit;
 * no PDCM (the perf-capabilities MSR is not offered); TSC-deadline if KVM emulates it; then the removals.
 */
export function normalizeCpuid(supported: readonly CpuidEntry[], options: CpuidOptions): CpuidEntry[] {
  const entries = supported.map((e) => ({ ...e }));
  const { apicId, cpus } = options;
  const coreShift = log2Ceil(cpus);

  const leaf1 = find(entries, 1);
  if (leaf1 !== undefined) {
    // EBX: [31:24] initial APIC ID, [23:16] addressable logical processors, [15:8] CLFLUSH line / 8.
    leaf1.ebx = ((apicId << 24) | (Math.min(1 << coreShift, 255) << 16) | (leaf1.ebx & 0xffff)) >>> 0;
    leaf1.ecx |= 1 << 31; // hypervisor
    leaf1.ecx &= ~(1 << 15); // PDCM
    if (options.tscDeadline) leaf1.ecx |= 1 << 24;
    else leaf1.ecx &= ~(1 << 24);
    if (cpus > 1) leaf1.edx |= 1 << 28; // HTT: the EBX[23:16] count is valid
    leaf1.ecx >>>= 0;
    leaf1.edx >>>= 0;
  }

  // Leaf 0xB (extended topology), rebuilt whole when the CPU has it (KVM may list only subleaf 0):
  // level 0 = SMT (one thread per core), level 1 = core (`cpus` per package), level 2 ends the list.
  const maxBasic = find(entries, 0)?.eax ?? 0;
  if (maxBasic >= 0xb) {
    const rest = entries.filter((e) => e.function !== 0xb);
    entries.length = 0;
    entries.push(...rest);
    const topology = (index: number, eax: number, ebx: number, type: number): CpuidEntry => ({
      function: 0xb,
      index,
      flags: CPUID_FLAG_SIGNIFICANT_INDEX,
      eax,
      ebx,
      ecx: ((type << 8) | index) >>> 0,
      edx: apicId,
    });
    entries.push(topology(0, 0, 1, 1), topology(1, coreShift, cpus, 2), topology(2, 0, 0, 0));
  }

  // AMD: leaf 0x8000001E EAX = extended APIC ID; 0x80000008 ECX = cores per package - 1 and ID width.
  const amdIds = find(entries, 0x8000001e);
  if (amdIds !== undefined) {
    amdIds.eax = apicId;
    amdIds.ebx &= ~0xff00; // one thread per compute unit
    amdIds.ebx = ((amdIds.ebx & ~0xff) | apicId) >>> 0;
    amdIds.ecx &= ~0x7ff; // node 0, one node per processor
    amdIds.ecx >>>= 0;
  }
  const amdSize = find(entries, 0x80000008);
  if (amdSize !== undefined) {
    amdSize.ecx = ((amdSize.ecx & ~0xf0ff) | (coreShift << 12) | (cpus - 1)) >>> 0;
  }

  for (const name of options.remove ?? []) {
    for (const bit of CPU_FEATURES[name] ?? []) {
      const e = find(entries, bit.leaf, bit.subleaf);
      if (e !== undefined) e[bit.register] = (e[bit.register] & ~(1 << bit.bit)) >>> 0;
    }
  }
  return entries;
}

/** Whether a feature is present in a CPUID table (for tests and `--cpu-features` reports). */
export function hasFeature(entries: readonly CpuidEntry[], name: string): boolean {
  const bits = CPU_FEATURES[name];
  if (bits === undefined) throw new RangeError(`unknown feature ${name}`);
  return bits.every((bit) => {
    const e = find(entries as CpuidEntry[], bit.leaf, bit.subleaf);
    return e !== undefined && ((e[bit.register] >>> bit.bit) & 1) === 1;
  });
}
