/**
 * x86-64 vCPU register state as plain data, and its encoding to/from the kvm_regs / kvm_sregs / kvm_fpu
 * byte layouts. No FFI here: these are pure functions over byte arrays.
 */
import { FPU, FPU_SIZE, REG_NAMES, REGS_SIZE, type RegName, SEGMENT, SREGS, SREGS_SIZE } from "./abi.js";

export type Regs = Record<RegName, bigint>;

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

const SEGMENT_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;
type SegmentName = (typeof SEGMENT_NAMES)[number];

export type Sregs = Record<SegmentName, Segment> & {
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** The pending-interrupt bitmap (4 × u64 after apic_base), kept as raw bytes. */
  interruptBitmap: Uint8Array;
};

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeRegs(bytes: Uint8Array): Regs {
  const v = dataView(bytes);
  const regs = {} as Regs;
  REG_NAMES.forEach((name, i) => {
    regs[name] = v.getBigUint64(i * 8, true);
  });
  return regs;
}

export function encodeRegs(regs: Regs): Uint8Array {
  const bytes = new Uint8Array(REGS_SIZE);
  const v = dataView(bytes);
  REG_NAMES.forEach((name, i) => {
    v.setBigUint64(i * 8, BigInt.asUintN(64, regs[name]), true);
  });
  return bytes;
}

/** All-zero registers with the architectural rflags bit 1 set. */
export function emptyRegs(): Regs {
  const regs = {} as Regs;
  for (const name of REG_NAMES) regs[name] = 0n;
  regs.rflags = 2n;
  return regs;
}

function decodeSegment(v: DataView, at: number): Segment {
  return {
    base: v.getBigUint64(at + SEGMENT.base, true),
    limit: v.getUint32(at + SEGMENT.limit, true),
    selector: v.getUint16(at + SEGMENT.selector, true),
    type: v.getUint8(at + SEGMENT.type),
    present: v.getUint8(at + SEGMENT.present),
    dpl: v.getUint8(at + SEGMENT.dpl),
    db: v.getUint8(at + SEGMENT.db),
    s: v.getUint8(at + SEGMENT.s),
    l: v.getUint8(at + SEGMENT.l),
    g: v.getUint8(at + SEGMENT.g),
    avl: v.getUint8(at + SEGMENT.avl),
    unusable: v.getUint8(at + SEGMENT.unusable),
  };
}

function encodeSegment(v: DataView, at: number, s: Segment): void {
  v.setBigUint64(at + SEGMENT.base, BigInt.asUintN(64, s.base), true);
  v.setUint32(at + SEGMENT.limit, s.limit >>> 0, true);
  v.setUint16(at + SEGMENT.selector, s.selector, true);
  v.setUint8(at + SEGMENT.type, s.type);
  v.setUint8(at + SEGMENT.present, s.present);
  v.setUint8(at + SEGMENT.dpl, s.dpl);
  v.setUint8(at + SEGMENT.db, s.db);
  v.setUint8(at + SEGMENT.s, s.s);
  v.setUint8(at + SEGMENT.l, s.l);
  v.setUint8(at + SEGMENT.g, s.g);
  v.setUint8(at + SEGMENT.avl, s.avl);
  v.setUint8(at + SEGMENT.unusable, s.unusable);
}

export function decodeSregs(bytes: Uint8Array): Sregs {
  const v = dataView(bytes);
  const table = (at: number): DescriptorTable => ({
    base: v.getBigUint64(at, true),
    limit: v.getUint16(at + 8, true),
  });
  const sregs = {
    gdt: table(SREGS.gdt),
    idt: table(SREGS.idt),
    cr0: v.getBigUint64(SREGS.cr0, true),
    cr2: v.getBigUint64(SREGS.cr2, true),
    cr3: v.getBigUint64(SREGS.cr3, true),
    cr4: v.getBigUint64(SREGS.cr4, true),
    cr8: v.getBigUint64(SREGS.cr8, true),
    efer: v.getBigUint64(SREGS.efer, true),
    apicBase: v.getBigUint64(SREGS.apicBase, true),
    interruptBitmap: bytes.slice(SREGS.apicBase + 8, SREGS_SIZE),
  } as Sregs;
  for (const name of SEGMENT_NAMES) sregs[name] = decodeSegment(v, SREGS[name]);
  return sregs;
}

export function encodeSregs(sregs: Sregs): Uint8Array {
  const bytes = new Uint8Array(SREGS_SIZE);
  const v = dataView(bytes);
  for (const name of SEGMENT_NAMES) encodeSegment(v, SREGS[name], sregs[name]);
  for (const name of ["gdt", "idt"] as const) {
    v.setBigUint64(SREGS[name], BigInt.asUintN(64, sregs[name].base), true);
    v.setUint16(SREGS[name] + 8, sregs[name].limit, true);
  }
  for (const name of ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"] as const) {
    v.setBigUint64(SREGS[name], BigInt.asUintN(64, sregs[name]), true);
  }
  bytes.set(sregs.interruptBitmap.subarray(0, SREGS_SIZE - SREGS.apicBase - 8), SREGS.apicBase + 8);
  return bytes;
}

/** The x87/SSE state after FNINIT and a default MXCSR (all exceptions masked). */
export function defaultFpu(): Uint8Array {
  const bytes = new Uint8Array(FPU_SIZE);
  const v = dataView(bytes);
  v.setUint16(FPU.fcw, 0x37f, true);
  v.setUint32(FPU.mxcsr, 0x1f80, true);
  return bytes;
}

const hex = (n: bigint | number, width = 16) => `0x${n.toString(16).padStart(width, "0")}`;

function segmentText(name: string, s: Segment): string {
  const flags = `type=${s.type} s=${s.s} dpl=${s.dpl} p=${s.present} db=${s.db} l=${s.l} g=${s.g}`;
  return `${name.padEnd(3)} sel=${hex(s.selector, 4)} base=${hex(s.base)} limit=${hex(s.limit, 8)} ${flags}`;
}

/** A register dump for a guest that died: general registers, control registers, segments. */
export function formatRegisterDump(regs: Regs, sregs: Sregs): string {
  const lines: string[] = [];
  for (let i = 0; i < REG_NAMES.length; i += 3) {
    lines.push(
      REG_NAMES.slice(i, i + 3)
        .map((n) => `${n.padStart(6)}=${hex(regs[n])}`)
        .join(" "),
    );
  }
  lines.push(
    `   cr0=${hex(sregs.cr0)}    cr2=${hex(sregs.cr2)}    cr3=${hex(sregs.cr3)}`,
    `   cr4=${hex(sregs.cr4)}   efer=${hex(sregs.efer)}    cr8=${hex(sregs.cr8)}`,
    `   gdt=${hex(sregs.gdt.base)}/${hex(sregs.gdt.limit, 4)}  idt=${hex(sregs.idt.base)}/${hex(sregs.idt.limit, 4)}`,
  );
  for (const name of SEGMENT_NAMES) lines.push(segmentText(name, sregs[name]));
  return lines.join("\n");
}
