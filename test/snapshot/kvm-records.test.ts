/**
 * The x86 snapshot records without KVM: the vCPU and VM KVM records (src/hypervisor/kvm/state-records.ts)
 * and the i8042's round-trip through JSON; a bad field is a TypeError naming it; and fuzzed records never
 * throw anything else (nor a record KVM would be handed half-checked).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  kvmVmFromRecord,
  kvmVmRecord,
  vcpuFromRecord,
  vcpuRecord,
} from "../../src/hypervisor/kvm/state-records.js";
import type { VcpuStateBytes, VmStateBytes } from "../../src/hypervisor/kvm/vcpu-state.js";
import { I8042 } from "../../src/machine/x86-microvm/i8042.js";
import { describe, test } from "../support/test.js";

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

function chip(id: number): Uint8Array {
  const b = bytes(520, id);
  new DataView(b.buffer).setUint32(0, id, true);
  return b;
}

const vcpu = (): VcpuStateBytes => ({
  regs: bytes(144, 1),
  sregs: bytes(312, 2),
  xsave: bytes(4096, 3),
  fpu: null,
  xcrs: bytes(392, 4),
  lapic: bytes(1024, 5),
  events: bytes(64, 6),
  mpState: 3,
  msrs: [
    { index: 0x10, value: 0xffff_ffff_ffff_fff0n },
    { index: 0x4b564d01, value: 0x1234n },
  ],
});

const vm = (): VmStateBytes => ({
  picMaster: chip(0),
  picSlave: chip(1),
  ioapic: chip(2),
  pit: bytes(112, 7),
  clock: 123_456_789_012n,
});

const json = <T>(v: T): T => JSON.parse(JSON.stringify(v));

describe("KVM snapshot records", () => {
  test("a vCPU and a VM record round-trip through JSON byte for byte", () => {
    assert.deepEqual(vcpuFromRecord("vcpu0", json(vcpuRecord(vcpu()))), vcpu());
    assert.deepEqual(kvmVmFromRecord("kvm", json(kvmVmRecord(vm()))), vm());
    const fpuOnly = { ...vcpu(), xsave: null, xcrs: null, events: null, fpu: bytes(416, 9) };
    assert.deepEqual(vcpuFromRecord("vcpu1", json(vcpuRecord(fpuOnly))), fpuOnly);
  });

  test("a bad field is a TypeError naming the record and the field", () => {
    const cases: [string, (r: Record<string, unknown>) => void, RegExp][] = [
      ["lapic", (r) => (r.lapic = "AAAA"), /vcpu0 snapshot: lapic must be base64 of 1024 bytes/],
      ["sregs", (r) => (r.sregs = "!!!!"), /sregs must be base64 of 312 bytes/],
      [
        "regs.rax",
        (r) => ((r.regs as Record<string, unknown>).rax = "0x1g"),
        /regs\.rax must be a 64-bit hex/,
      ],
      ["regs.rip", (r) => delete (r.regs as Record<string, unknown>).rip, /regs\.rip must be/],
      ["mpState", (r) => (r.mpState = 99), /mpState must be an integer 0\.\.8/],
      ["msrs", (r) => (r.msrs = [[1, 2]]), /msrs\[0\] value must be a 64-bit hex/],
      ["msrs index", (r) => (r.msrs = [[-1, "0x0"]]), /msrs\[0\] index must be a u32/],
      ["xsave+fpu", (r) => (r.fpu = r.xsave), /fpu must be base64 of 416 bytes/],
      ["neither", (r) => (r.xsave = null), /xsave must be present exactly when fpu is not/],
      ["version", (r) => (r.version = 2), /unsupported version 2/],
    ];
    for (const [what, change, message] of cases) {
      const r = json(vcpuRecord(vcpu())) as unknown as Record<string, unknown>;
      change(r);
      assert.throws(
        () => vcpuFromRecord("vcpu0", r),
        (e: unknown) => e instanceof TypeError && message.test(e.message),
        what,
      );
    }
    const swapped = json(kvmVmRecord(vm())) as unknown as Record<string, unknown>;
    [swapped.picSlave, swapped.picMaster] = [swapped.picMaster, swapped.picSlave];
    assert.throws(() => kvmVmFromRecord("kvm", swapped), /picMaster must be the state of irqchip 0/);
    const clock = { ...json(kvmVmRecord(vm())), clock: "-1" };
    assert.throws(() => kvmVmFromRecord("kvm", clock), /clock must be a u64/);
  });

  test("fuzzed records are refused with a TypeError or accepted whole", () => {
    const good = json(vcpuRecord(vcpu())) as unknown as Record<string, unknown>;
    const keys = Object.keys(good);
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.jsonValue(), (key, value) => {
        try {
          const out = vcpuFromRecord("vcpu0", { ...good, [key]: value });
          assert.equal(out.lapic.length, 1024);
          assert.equal(out.regs.length, 144);
        } catch (e) {
          if (!(e instanceof TypeError)) throw e;
        }
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          kvmVmFromRecord("kvm", value);
        } catch (e) {
          if (!(e instanceof TypeError)) throw e;
        }
      }),
    );
  });

  test("the i8042 round-trips, and a bad record changes nothing", () => {
    const lines: boolean[] = [];
    const a = new I8042({ set: (l) => lines.push(l) }, () => {});
    a.write(4, 1, 0x60); // write CTR: parameter follows
    a.pressCtrlAltDel();
    const saved = json(a.snapshot());
    assert.equal(saved.pendingCommand, 0x60);
    const b = new I8042({ set: () => {} }, () => {});
    b.restore(saved);
    assert.deepEqual(b.snapshot(), saved);
    assert.throws(() => b.restore({ ...saved, keyboard: [0x99] }), /i8042 snapshot: keyboard must be/);
    assert.throws(() => b.restore({ ...saved, pendingCommand: 0x20 }), /pendingCommand must be/);
    assert.throws(() => b.restore({ ...saved, ctr: 256 }), /ctr must be an integer 0\.\.255/);
    assert.deepEqual(b.snapshot(), saved);
  });
});
