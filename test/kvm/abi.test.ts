/** The KVM ABI constants against values printed from linux/kvm.h (x86-64) by a C program. */
import assert from "node:assert/strict";
import { IOCTL } from "../../src/hypervisor/kvm/abi.js";
import {
  decodeRegs,
  decodeSregs,
  emptyRegs,
  encodeRegs,
  encodeSregs,
} from "../../src/hypervisor/kvm/registers.js";
import { describe, test } from "../support/test.js";

const FROM_KVM_H: Record<string, number> = {
  GET_API_VERSION: 0xae00,
  CREATE_VM: 0xae01,
  GET_MSR_INDEX_LIST: 0xc004ae02,
  CHECK_EXTENSION: 0xae03,
  GET_VCPU_MMAP_SIZE: 0xae04,
  GET_SUPPORTED_CPUID: 0xc008ae05,
  CREATE_VCPU: 0xae41,
  SET_USER_MEMORY_REGION: 0x4020ae46,
  SET_TSS_ADDR: 0xae47,
  SET_IDENTITY_MAP_ADDR: 0x4008ae48,
  CREATE_IRQCHIP: 0xae60,
  IRQ_LINE: 0x4008ae61,
  GET_IRQCHIP: 0xc208ae62,
  SET_IRQCHIP: 0x8208ae63,
  IRQFD: 0x4020ae76,
  CREATE_PIT2: 0x4040ae77,
  IOEVENTFD: 0x4040ae79,
  SET_CLOCK: 0x4030ae7b,
  GET_CLOCK: 0x8030ae7c,
  RUN: 0xae80,
  GET_REGS: 0x8090ae81,
  SET_REGS: 0x4090ae82,
  GET_SREGS: 0x8138ae83,
  SET_SREGS: 0x4138ae84,
  GET_MSRS: 0xc008ae88,
  SET_MSRS: 0x4008ae89,
  GET_FPU: 0x81a0ae8c,
  SET_FPU: 0x41a0ae8d,
  GET_LAPIC: 0x8400ae8e,
  SET_LAPIC: 0x4400ae8f,
  SET_CPUID2: 0x4008ae90,
  GET_MP_STATE: 0x8004ae98,
  SET_MP_STATE: 0x4004ae99,
  GET_VCPU_EVENTS: 0x8040ae9f,
  SET_VCPU_EVENTS: 0x4040aea0,
  GET_PIT2: 0x8070ae9f,
  SET_PIT2: 0x4070aea0,
  GET_XSAVE: 0x9000aea4,
  SET_XSAVE: 0x5000aea5,
  GET_XCRS: 0x8188aea6,
  SET_XCRS: 0x4188aea7,
  GET_XSAVE2: 0x9000aecf,
  GET_DIRTY_LOG: 0x4010ae42,
};

describe("KVM ABI", () => {
  test("ioctl numbers match linux/kvm.h", () => {
    assert.deepEqual({ ...IOCTL }, FROM_KVM_H);
  });

  test("kvm_regs round-trips, 64-bit values intact", () => {
    const regs = emptyRegs();
    regs.rip = 0xffff_ffff_8100_0000n;
    regs.rsi = 0x7000n;
    regs.r15 = 0x0123_4567_89ab_cdefn;
    const bytes = encodeRegs(regs);
    assert.equal(bytes.length, 144);
    assert.equal(new DataView(bytes.buffer).getBigUint64(128, true), 0xffff_ffff_8100_0000n);
    assert.equal(new DataView(bytes.buffer).getBigUint64(32, true), 0x7000n);
    assert.deepEqual(decodeRegs(bytes), regs);
  });

  test("kvm_sregs round-trips; fields at their kvm.h offsets", () => {
    const bytes = new Uint8Array(312);
    const v = new DataView(bytes.buffer);
    v.setUint16(12, 0x10, true); // cs.selector
    bytes[19] = 1; // cs.l
    v.setBigUint64(192, 0x500n, true); // gdt.base
    v.setUint16(200, 0x27, true); // gdt.limit
    v.setBigUint64(224, 0x80000031n, true); // cr0
    v.setBigUint64(240, 0x9000n, true); // cr3
    v.setBigUint64(264, 0x500n, true); // efer
    bytes[311] = 0xaa; // interrupt bitmap tail
    const sregs = decodeSregs(bytes);
    assert.equal(sregs.cs.selector, 0x10);
    assert.equal(sregs.cs.l, 1);
    assert.deepEqual(sregs.gdt, { base: 0x500n, limit: 0x27 });
    assert.equal(sregs.cr0, 0x80000031n);
    assert.equal(sregs.cr3, 0x9000n);
    assert.equal(sregs.efer, 0x500n);
    assert.deepEqual(encodeSregs(sregs), bytes);
  });
});
