/**
 * The x86 microVM board's pure parts, without KVM: bzImage parsing, boot_params, page tables and GDT,
 * long-mode register state, e820, ACPI tables, CPUID normalisation and the i8042.
 */
import assert from "node:assert/strict";
import { hasFeature, normalizeCpuid, parseCpuFeatures } from "../../src/hypervisor/kvm/cpuid.js";
import type { CpuidEntry } from "../../src/hypervisor/kvm/kvm.js";
import { decodeSregs, emptyRegs } from "../../src/hypervisor/kvm/registers.js";
import { buildAcpiTables } from "../../src/machine/x86-microvm/acpi.js";
import {
  E820_RAM,
  E820_RESERVED,
  e820Map,
  entryRegs,
  loadLinux,
  longModeSregs,
  type PhysicalMemory,
  writeLongModeTables,
} from "../../src/machine/x86-microvm/boot.js";
import { parseBzImage } from "../../src/machine/x86-microvm/bzimage.js";
import { I8042 } from "../../src/machine/x86-microvm/i8042.js";
import { GiB, MiB, ramRegions } from "../../src/machine/x86-microvm/memory-map.js";
import { loadPvh, parsePvhKernel, pvhSregs } from "../../src/machine/x86-microvm/pvh.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test } from "../support/test.js";

class FakeRam implements PhysicalMemory {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  contains(paddr: number, length: number): boolean {
    return paddr >= 0 && paddr + length <= this.bytes.length;
  }
  write(paddr: number, data: Uint8Array): void {
    assert.ok(this.contains(paddr, data.length), `write at 0x${paddr.toString(16)}`);
    this.bytes.set(data, paddr);
  }
  fill(paddr: number, length: number, value = 0): void {
    this.bytes.fill(value, paddr, paddr + length);
  }
  u64(at: number): bigint {
    return this.view.getBigUint64(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  text(at: number): string {
    let s = "";
    while (this.bytes[at] !== 0) s += String.fromCharCode(this.bytes[at++] as number);
    return s;
  }
}

/** A minimal bzImage: setup header (protocol 2.15, one setup sector) and a body of `body` bytes. */
function bzImage(body: number, edit: (v: DataView, b: Uint8Array) => void = () => {}): Uint8Array {
  const b = new Uint8Array(1024 + body);
  const v = new DataView(b.buffer);
  b[0x1f1] = 1;
  v.setUint16(0x1fe, 0xaa55, true);
  b[0x200] = 0xeb;
  b[0x201] = 0x66;
  b.set([0x48, 0x64, 0x72, 0x53], 0x202);
  v.setUint16(0x206, 0x020f, true);
  b[0x211] = 0x01;
  v.setUint32(0x22c, 0x7fffffff, true);
  b[0x234] = 1;
  v.setUint16(0x236, 1, true);
  v.setUint32(0x238, 2047, true);
  v.setUint32(0x260, 0x300000, true);
  b.fill(0xcc, 1024);
  b[1024] = 0x11;
  edit(v, b);
  return b;
}

describe("bzImage", () => {
  test("header fields, body offset and load address", () => {
    const image = parseBzImage(bzImage(8192), "k");
    assert.equal(image.version, 0x020f);
    assert.equal(image.setupSects, 1);
    assert.equal(image.kernel.length, 8192);
    assert.equal(image.kernel[0], 0x11);
    assert.equal(image.loadAddress, 0x100000);
    assert.equal(image.initSize, 0x300000);
    assert.equal(image.cmdlineSize, 2047);
    assert.equal(image.setupHeader.length, 0x268 - 0x1f1);
  });

  test("setup_sects 0 means 4", () => {
    const image = parseBzImage(
      bzImage(8192, (_v, b) => {
        b[0x1f1] = 0;
      }),
      "k",
    );
    assert.equal(image.setupSects, 4);
    assert.equal(image.kernel.length, 8192 + 1024 - 5 * 512);
  });

  test("rejections are user errors", () => {
    const bad = (edit: (v: DataView, b: Uint8Array) => void, pattern: RegExp) =>
      assert.throws(
        () => parseBzImage(bzImage(4096, edit), "k"),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    bad((_v, b) => b.fill(0, 0x202, 0x206), /not an x86 Linux bzImage/);
    bad((v) => v.setUint16(0x206, 0x0204, true), /too old/);
    bad((_v, b) => {
      b[0x211] = 0;
    }, /zImage/);
    bad((v) => v.setUint16(0x236, 0, true), /XLF_KERNEL_64/);
  });
});

describe("memory layout and e820", () => {
  test("RAM regions around the 3-4 GiB hole", () => {
    assert.deepEqual(ramRegions(512 * MiB), [{ base: 0, size: 512 * MiB }]);
    assert.deepEqual(ramRegions(3 * GiB), [{ base: 0, size: 3 * GiB }]);
    assert.deepEqual(ramRegions(5 * GiB), [
      { base: 0, size: 3 * GiB },
      { base: 4 * GiB, size: 2 * GiB },
    ]);
  });

  test("e820: low RAM, the EBDA/BIOS hole, RAM from 1 MiB and from 4 GiB", () => {
    assert.deepEqual(e820Map(ramRegions(5 * GiB)), [
      { base: 0, size: 0x9fc00, type: E820_RAM },
      { base: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
      { base: 0x100000, size: 3 * GiB - 0x100000, type: E820_RAM },
      { base: 4 * GiB, size: 2 * GiB, type: E820_RAM },
    ]);
  });
});

describe("Linux boot", () => {
  test("boot_params, command line, kernel and initrd placement", () => {
    const ram = new FakeRam(64 * MiB);
    const image = parseBzImage(bzImage(8192), "k");
    const initrd = new Uint8Array(10000).fill(0x5a);
    const info = loadLinux(ram, {
      image,
      initrd,
      cmdline: "console=ttyS0 panic=1",
      regions: ramRegions(64 * MiB),
      rsdp: 0xe0000,
    });
    assert.equal(info.entry, 0x100200);
    assert.equal(ram.bytes[0x100000], 0x11);
    const zp = 0x7000;
    assert.equal(ram.u32(zp + 0x202), 0x53726448); // "HdrS" copied with the setup header
    assert.equal(ram.bytes[zp + 0x210], 0xff); // type_of_loader
    assert.equal(ram.u32(zp + 0x228), 0x20000); // cmd_line_ptr
    assert.equal(ram.text(0x20000), "console=ttyS0 panic=1");
    const initrdAt = ram.u32(zp + 0x218);
    assert.equal(initrdAt, info.initrdAddress);
    assert.equal(initrdAt % 4096, 0);
    assert.ok(initrdAt + 10000 <= 64 * MiB && initrdAt + 10000 > 64 * MiB - 8192, "near the top of RAM");
    assert.equal(ram.u32(zp + 0x21c), 10000);
    assert.equal(ram.bytes[initrdAt], 0x5a);
    assert.equal(ram.u64(zp + 0x070), 0xe0000n); // acpi_rsdp_addr
    assert.equal(ram.bytes[zp + 0x1e8], 3); // e820 entries
    assert.equal(ram.u64(zp + 0x2d0 + 2 * 20), 0x100000n);
    assert.equal(ram.u64(zp + 0x2d0 + 2 * 20 + 8), BigInt(63 * MiB));
    assert.equal(ram.u32(zp + 0x2d0 + 2 * 20 + 16), E820_RAM);
  });

  test("the initrd respects initrd_addr_max", () => {
    const ram = new FakeRam(64 * MiB);
    const image = parseBzImage(
      bzImage(4096, (v) => v.setUint32(0x22c, 32 * MiB - 1, true)),
      "k",
    );
    const info = loadLinux(ram, {
      image,
      initrd: new Uint8Array(5000),
      cmdline: "",
      regions: ramRegions(64 * MiB),
    });
    assert.ok((info.initrdAddress ?? 0) + 5000 <= 32 * MiB);
  });

  test("too little memory, too long a command line", () => {
    const image = parseBzImage(
      bzImage(4096, (v) => v.setUint32(0x260, 60 * MiB, true)),
      "k",
    );
    assert.throws(
      () =>
        loadLinux(new FakeRam(32 * MiB), { image, initrd: null, cmdline: "", regions: ramRegions(32 * MiB) }),
      /use at least 65M/,
    );
    const small = parseBzImage(
      bzImage(4096, (v) => v.setUint32(0x238, 10, true)),
      "k",
    );
    assert.throws(
      () =>
        loadLinux(new FakeRam(32 * MiB), {
          image: small,
          initrd: null,
          cmdline: "x".repeat(11),
          regions: ramRegions(32 * MiB),
        }),
      /accepts 10/,
    );
  });

  test("GDT and identity page tables", () => {
    const ram = new FakeRam(1 * MiB);
    writeLongModeTables(ram);
    assert.equal(ram.u64(0x500 + 0x10), 0x00af9b000000ffffn); // 64-bit code at __BOOT_CS
    assert.equal(ram.u64(0x500 + 0x18), 0x00cf93000000ffffn); // data at __BOOT_DS
    assert.equal(ram.u64(0x9000), 0xa003n); // PML4[0] -> PDPT
    for (let i = 0; i < 4; i++) assert.equal(ram.u64(0xa000 + 8 * i), BigInt(0xb003 + i * 0x1000));
    assert.equal(ram.u64(0xb000), 0x83n);
    assert.equal(ram.u64(0xb000 + 8), 0x200083n);
    assert.equal(ram.u64(0xb000 + 2047 * 8), 0xffe00083n); // the last 2 MiB below 4 GiB
  });

  test("long-mode sregs and entry regs", () => {
    const sregs = longModeSregs(decodeSregs(new Uint8Array(312)));
    assert.equal(sregs.cs.selector, 0x10);
    assert.equal(sregs.cs.l, 1);
    assert.equal(sregs.cs.db, 0);
    assert.equal(sregs.ds.selector, 0x18);
    assert.equal(sregs.ss.db, 1);
    assert.equal(sregs.tr.type, 11);
    assert.equal(sregs.cr0 & 0x80000001n, 0x80000001n);
    assert.equal(sregs.cr3, 0x9000n);
    assert.equal(sregs.cr4, 0x20n);
    assert.equal(sregs.efer, 0x500n);
    assert.deepEqual(sregs.gdt, { base: 0x500n, limit: 47 });
    const regs = entryRegs(emptyRegs(), 0x100200);
    assert.equal(regs.rip, 0x100200n);
    assert.equal(regs.rsi, 0x7000n);
    assert.equal(regs.rflags, 2n);
  });
});

describe("ACPI tables", () => {
  const ram = new FakeRam(1 * MiB);
  const rsdp = buildAcpiTables(ram, { cpus: 3 });
  const sum = (at: number, length: number) =>
    ram.bytes.subarray(at, at + length).reduce((s, b) => (s + b) & 0xff, 0);
  const sig = (at: number) => String.fromCharCode(...ram.bytes.subarray(at, at + 4));
  const tables = () => {
    const xsdt = Number(ram.u64(rsdp + 24));
    const n = (ram.u32(xsdt + 4) - 36) / 8;
    return Array.from({ length: n }, (_, i) => Number(ram.u64(xsdt + 36 + 8 * i)));
  };

  test("RSDP: signature, revision 2, both checksums", () => {
    assert.equal(rsdp, 0xe0000);
    assert.equal(String.fromCharCode(...ram.bytes.subarray(rsdp, rsdp + 8)), "RSD PTR ");
    assert.equal(ram.bytes[rsdp + 15], 2);
    assert.equal(sum(rsdp, 20), 0);
    assert.equal(sum(rsdp, 36), 0);
  });

  test("XSDT lists FACP and APIC; every table checksums to 0", () => {
    const xsdt = Number(ram.u64(rsdp + 24));
    assert.equal(sig(xsdt), "XSDT");
    assert.deepEqual(tables().map(sig), ["FACP", "APIC"]);
    for (const at of [xsdt, ...tables()]) assert.equal(sum(at, ram.u32(at + 4)), 0, sig(at));
  });

  test("FADT: hardware-reduced, DSDT with \\_S5, reset register = i8042 0xfe", () => {
    const fadt = tables()[0] as number;
    assert.equal(ram.u32(fadt + 4), 276);
    assert.ok((ram.u32(fadt + 112) & (1 << 20)) !== 0);
    const dsdt = Number(ram.u64(fadt + 140));
    assert.equal(sig(dsdt), "DSDT");
    assert.equal(sum(dsdt, ram.u32(dsdt + 4)), 0);
    assert.ok(Buffer.from(ram.bytes.subarray(dsdt, dsdt + ram.u32(dsdt + 4))).includes("_S5_"));
    assert.equal(ram.bytes[fadt + 116], 1); // reset register in I/O space
    assert.equal(ram.u64(fadt + 120), 0x64n);
    assert.equal(ram.bytes[fadt + 128], 0xfe);
    assert.equal(ram.u64(fadt + 244 + 4), 0x3c0n); // sleep control register
  });

  test("MADT: one enabled local APIC per CPU, then the IOAPIC", () => {
    const madt = tables()[1] as number;
    const end = madt + ram.u32(madt + 4);
    assert.equal(ram.u32(madt + 36), 0xfee00000);
    const entries: number[][] = [];
    for (let at = madt + 44; at < end; at += ram.bytes[at + 1] as number) {
      entries.push(Array.from(ram.bytes.subarray(at, at + (ram.bytes[at + 1] as number))));
    }
    assert.deepEqual(entries.slice(0, 3), [
      [0, 8, 0, 0, 1, 0, 0, 0],
      [0, 8, 1, 1, 1, 0, 0, 0],
      [0, 8, 2, 2, 1, 0, 0, 0],
    ]);
    assert.deepEqual(entries[3], [1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]);
  });
});

describe("CPUID", () => {
  const supported: CpuidEntry[] = [
    { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0, ecx: 0, edx: 0 },
    {
      function: 1,
      index: 0,
      flags: 0,
      eax: 0xa00f11,
      ebx: 0x00000800,
      ecx: 0x76f8320b | (1 << 15),
      edx: 0x178bfbff,
    },
    { function: 7, index: 0, flags: 1, eax: 0, ebx: 0x219c91a9, ecx: 0, edx: 1 << 29 },
    { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 0x100, edx: 7 },
  ];

  test("APIC ID, topology, hypervisor bit, no PDCM", () => {
    const c = normalizeCpuid(supported, { apicId: 2, cpus: 3, tscDeadline: true });
    const leaf = (f: number, i = 0) => c.find((e) => e.function === f && e.index === i) as CpuidEntry;
    assert.equal(leaf(1).ebx >>> 24, 2);
    assert.equal((leaf(1).ebx >>> 16) & 0xff, 4);
    assert.equal(leaf(1).ebx & 0xffff, 0x0800);
    assert.ok(hasFeature(c, "tsc-deadline"));
    assert.equal(leaf(1).ecx >>> 31, 1);
    assert.ok(!hasFeature(c, "pdcm"));
    assert.equal(leaf(0xb, 0).edx, 2);
    assert.equal(leaf(0xb, 0).ebx, 1);
    assert.equal(leaf(0xb, 1).ebx, 3);
    assert.equal(leaf(0xb, 1).eax, 2);
    assert.equal(leaf(0xb, 1).ecx, 0x201);
    assert.equal(leaf(0xb, 1).edx, 2);
    assert.equal(leaf(0xb, 2).ecx, 0x002, "level 2 is invalid: the end of the list");
    assert.equal(supported[1]?.ebx, 0x800, "the host table is not modified");
  });

  test("--cpu-features removals", () => {
    assert.deepEqual(parseCpuFeatures("-x2apic,-cx16"), ["x2apic", "cx16"]);
    const c = normalizeCpuid(supported, {
      apicId: 0,
      cpus: 1,
      remove: ["x2apic", "cx16", "arch-capabilities"],
    });
    assert.ok(hasFeature(normalizeCpuid(supported, { apicId: 0, cpus: 1 }), "x2apic"));
    assert.ok(!hasFeature(c, "x2apic"));
    assert.ok(!hasFeature(c, "cx16"));
    assert.ok(!hasFeature(c, "arch-capabilities"));
    assert.ok(hasFeature(c, "sse3"));
    assert.throws(() => parseCpuFeatures("x2apic"), /only removals/);
    assert.throws(() => parseCpuFeatures("-bogus"), /unknown feature 'bogus'/);
  });
});

describe("i8042", () => {
  function controller() {
    const events: string[] = [];
    const dev = new I8042({ set: (l) => events.push(l ? "irq+" : "irq-") }, () => events.push("reset"));
    const out = new Uint32Array(2);
    const read = (offset: number) => {
      assert.ok(dev.read(offset, 1, out));
      return out[0];
    };
    return { dev, events, read };
  }

  test("0xfe on the command port resets", () => {
    const { dev, events } = controller();
    dev.write(4, 1, 0xfe, 0);
    assert.deepEqual(events, ["reset"]);
  });

  test("controller commands are answered, so a probing driver does not time out", () => {
    const { dev, read } = controller();
    assert.equal((read(4) ?? 0) & 1, 0, "output buffer empty");
    dev.write(4, 1, 0xaa, 0);
    assert.equal((read(4) ?? 0) & 1, 1);
    assert.equal(read(0), 0x55);
    dev.write(4, 1, 0x60, 0);
    dev.write(0, 1, 0x30, 0);
    dev.write(4, 1, 0x20, 0);
    assert.equal(read(0), 0x30);
    dev.write(0, 1, 0xff, 0); // keyboard reset: ACK, then self-test passed
    assert.equal(read(0), 0xfa);
    assert.equal(read(0), 0xaa);
    assert.equal((read(4) ?? 0) & 1, 0);
  });
});

describe("PVH", () => {
  /** An x86-64 ELF with one PT_LOAD at `paddr` and a PT_NOTE holding the Xen PHYS32_ENTRY note. */
  function elf(paddr: number, entry: number | null): Uint8Array {
    const b = new Uint8Array(0x1000);
    const v = new DataView(b.buffer);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
    v.setUint16(16, 2, true);
    v.setUint16(18, 62, true);
    v.setBigUint64(32, 64n, true); // e_phoff
    v.setUint16(54, 56, true);
    v.setUint16(56, 2, true);
    // PT_LOAD: 0x100 bytes at file 0x800, memsz 0x2000
    v.setUint32(64, 1, true);
    v.setBigUint64(64 + 8, 0x800n, true);
    v.setBigUint64(64 + 24, BigInt(paddr), true);
    v.setBigUint64(64 + 32, 0x100n, true);
    v.setBigUint64(64 + 40, 0x2000n, true);
    b.fill(0xab, 0x800, 0x900);
    // PT_NOTE at 0x400: a GNU note first, then Xen's
    v.setUint32(120, 4, true);
    v.setBigUint64(120 + 8, 0x400n, true);
    v.setBigUint64(120 + 32, 0x30n, true);
    v.setUint32(0x400, 4, true);
    v.setUint32(0x404, 4, true);
    v.setUint32(0x408, 3, true);
    b.set([0x47, 0x4e, 0x55, 0], 0x40c);
    v.setUint32(0x414, 4, true);
    v.setUint32(0x418, 4, true);
    v.setUint32(0x41c, entry === null ? 17 : 18, true);
    b.set([0x58, 0x65, 0x6e, 0], 0x420);
    v.setUint32(0x424, entry ?? 0, true);
    return b;
  }

  test("segments, entry note, and the hvm_start_info written for it", () => {
    const kernel = parsePvhKernel(elf(0x200000, 0x200040), "vmlinux");
    assert.equal(kernel.entry, 0x200040);
    assert.equal(kernel.end, 0x202000);
    const ram = new FakeRam(16 * MiB);
    ram.fill(0x201000, 16, 0xee);
    const info = loadPvh(ram, {
      kernel,
      initrd: new Uint8Array(100).fill(7),
      cmdline: "root=/dev/vda",
      regions: ramRegions(16 * MiB),
      rsdp: 0xe0000,
    });
    assert.equal(ram.bytes[0x200000], 0xab);
    assert.equal(ram.bytes[0x201000], 0, "bss cleared");
    const si = info.startInfo;
    assert.equal(ram.u32(si), 0x336ec578);
    assert.equal(ram.u32(si + 4), 1);
    assert.equal(ram.u32(si + 12), 1); // one module: the initrd
    const mod = Number(ram.u64(si + 16));
    assert.equal(Number(ram.u64(mod)), info.initrdAddress);
    assert.equal(ram.u64(mod + 8), 100n);
    assert.equal(ram.text(Number(ram.u64(si + 24))), "root=/dev/vda");
    assert.equal(ram.u64(si + 32), 0xe0000n);
    assert.equal(ram.u32(si + 48), 3);
    const memmap = Number(ram.u64(si + 40));
    assert.equal(ram.u64(memmap + 2 * 24), 0x100000n);
    assert.equal(ram.u32(memmap + 2 * 24 + 16), E820_RAM);
    const sregs = pvhSregs(decodeSregs(new Uint8Array(312)));
    assert.equal(sregs.cs.db, 1);
    assert.equal(sregs.cs.l, 0);
    assert.equal(sregs.cr0 & 0x80000001n, 1n);
    assert.equal(sregs.efer, 0n);
  });

  test("an ELF without the PVH note is refused", () => {
    assert.throws(() => parsePvhKernel(elf(0x200000, null), "vmlinux"), /no PVH entry point/);
  });
});
