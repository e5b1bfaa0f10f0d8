import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import {
  cellsOf,
  type FdtNode,
  findByPhandle,
  findNode,
  parseFdt,
  readCells,
  readFdt,
  readString,
  readStrings,
  readU32,
  readU64,
  walkFdt,
} from "../../../src/machine/fdt/parser.js";
import {
  buildVirtDeviceTree,
  canonicalIsaExtensions,
  riscvIsaString,
  VIRT_TREE_PATHS,
  type VirtTreeConfig,
} from "../../../src/machine/riscv-virt/device-tree.js";
import {
  PLIC_SOURCES,
  type Region,
  TIMEBASE_HZ,
  VIRT_IRQ,
  VIRT_MAP,
  VIRTIO_SLOTS,
} from "../../../src/machine/riscv-virt/memory-map.js";
import { describe, it } from "../../support/test.js";
import { ISA, virtConfig } from "./virt-config.js";

const hex = (n: number) => n.toString(16);

function node(root: FdtNode, path: string): FdtNode {
  const found = findNode(root, path);
  assert.ok(found, `${path} exists`);
  return found;
}

/** reg with two address and two size cells, as [base, size] numbers. */
function reg(n: FdtNode): [number, number] {
  const [bh, bl, sh, sl] = readCells(n, "reg") as [number, number, number, number];
  return [bh * 2 ** 32 + bl, sh * 2 ** 32 + sl];
}

function regionOf(region: Region): [number, number] {
  return [region.base, region.size];
}

/** Pairs of (phandle, cell) of an interrupts-extended list of one-cell specifiers. */
function pairs(cells: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < cells.length; i += 2) out.push([cells[i] as number, cells[i + 1] as number]);
  return out;
}

describe("virt device tree", () => {
  const root = parseFdt(
    buildVirtDeviceTree(
      virtConfig({
        cpus: 3,
        initrd: { start: 0x8800_0000, end: 0x8812_3456 },
        virtioSlots: [5, 0, 7],
      }),
    ),
  );
  const soc = node(root, "/soc");
  const plic = node(root, `/soc/plic@${hex(VIRT_MAP.plic.base)}`);
  const plicPhandle = readU32(plic, "phandle");

  it("describes the board at the root", () => {
    assert.equal(readU32(root, "#address-cells"), 2);
    assert.equal(readU32(root, "#size-cells"), 2);
    assert.equal(readString(root, "compatible"), "riscv-virtio");
    assert.equal(readString(root, "model"), "riscv-virtio,qemu");
    assert.equal(readFdt(buildVirtDeviceTree(virtConfig())).header.bootCpuId, 0);
  });

  it("has /chosen with bootargs, the console and the initrd", () => {
    const chosen = node(root, "/chosen");
    assert.equal(readString(chosen, "bootargs"), "console=ttyS0 earlycon");
    assert.equal(readString(chosen, "stdout-path"), "/soc/serial@10000000");
    assert.equal(readString(chosen, "stdout-path"), VIRT_TREE_PATHS.uart0);
    assert.ok(findNode(root, readString(chosen, "stdout-path")), "stdout-path names a node");
    assert.equal(readU64(chosen, "linux,initrd-start"), 0x8800_0000);
    assert.equal(readU64(chosen, "linux,initrd-end"), 0x8812_3456);
    assert.equal(readString(node(root, "/aliases"), "serial0"), VIRT_TREE_PATHS.uart0);
  });

  it("leaves out what was not asked for", () => {
    const plain = parseFdt(buildVirtDeviceTree(virtConfig({ bootargs: "" })));
    const chosen = node(plain, "/chosen");
    assert.deepEqual([...chosen.props.keys()], ["stdout-path"]);
    assert.equal(node(plain, "/soc").children.filter((c) => c.name.startsWith("virtio_mmio")).length, 0);
    const seeded = parseFdt(buildVirtDeviceTree(virtConfig({ rngSeed: Uint8Array.from([1, 2, 3, 4]) })));
    assert.deepEqual(node(seeded, "/chosen").props.get("rng-seed"), Uint8Array.from([1, 2, 3, 4]));
  });

  it("describes RAM from VIRT_MAP.dram", () => {
    const memory = node(root, `/memory@${hex(VIRT_MAP.dram.base)}`);
    assert.equal(readString(memory, "device_type"), "memory");
    assert.deepEqual(reg(memory), [VIRT_MAP.dram.base, 512 * 2 ** 20]);
    const big = parseFdt(buildVirtDeviceTree(virtConfig({ memoryBytes: 6 * 2 ** 30 })));
    assert.deepEqual(reg(node(big, VIRT_TREE_PATHS.memory)), [VIRT_MAP.dram.base, 6 * 2 ** 30]);
  });

  it("describes each hart with a canonical ISA, its MMU and its interrupt controller", () => {
    const cpus = node(root, "/cpus");
    assert.equal(readU32(cpus, "#address-cells"), 1);
    assert.equal(readU32(cpus, "#size-cells"), 0);
    assert.equal(readU32(cpus, "timebase-frequency"), TIMEBASE_HZ);
    const harts = cpus.children.filter((c) => c.name.startsWith("cpu@"));
    assert.deepEqual(
      harts.map((h) => h.name),
      ["cpu@0", "cpu@1", "cpu@2"],
    );
    harts.forEach((hart, i) => {
      assert.equal(readString(hart, "device_type"), "cpu");
      assert.equal(readU32(hart, "reg"), i);
      assert.equal(readString(hart, "status"), "okay");
      assert.equal(readString(hart, "compatible"), "riscv");
      assert.equal(readString(hart, "riscv,isa"), "rv64imafdc_zicntr_zicsr_zifencei_zihpm_sstc");
      assert.equal(readString(hart, "riscv,isa-base"), "rv64i");
      assert.deepEqual(readStrings(hart, "riscv,isa-extensions"), ISA);
      assert.equal(readString(hart, "mmu-type"), "riscv,sv39");
      const intc = node(hart, "/interrupt-controller");
      assert.equal(readString(intc, "compatible"), "riscv,cpu-intc");
      assert.equal(readU32(intc, "#interrupt-cells"), 1);
      assert.equal(readU32(intc, "#address-cells"), 0);
      assert.deepEqual(intc.props.get("interrupt-controller"), new Uint8Array(0));
    });
    const sv48 = parseFdt(buildVirtDeviceTree(virtConfig({ mmuType: "riscv,sv48" })));
    assert.equal(readString(node(sv48, "/cpus/cpu@0"), "mmu-type"), "riscv,sv48");
  });

  it("maps every core of cpu-map to its hart", () => {
    const cluster = node(root, "/cpus/cpu-map/cluster0");
    assert.deepEqual(
      cluster.children.map((core) => findByPhandle(root, readU32(core, "cpu"))?.path),
      ["/cpus/cpu@0", "/cpus/cpu@1", "/cpus/cpu@2"],
    );
  });

  it("gives every phandle to one node and resolves every reference", () => {
    const owners = new Map<number, string>();
    for (const { path, node: n } of walkFdt(root)) {
      const value = n.props.get("phandle");
      if (value === undefined) continue;
      const [phandle] = cellsOf(value);
      assert.ok(!owners.has(phandle as number), `phandle ${phandle} is unique`);
      owners.set(phandle as number, path);
    }
    for (const { path, node: n } of walkFdt(root)) {
      for (const name of ["interrupt-parent", "regmap", "cpu"]) {
        if (n.props.has(name)) assert.ok(owners.has(readU32(n, name)), `${path}:${name} resolves`);
      }
      if (n.props.has("interrupts-extended")) {
        for (const [phandle] of pairs(readCells(n, "interrupts-extended"))) {
          const target = owners.get(phandle);
          assert.match(target ?? "", /^\/cpus\/cpu@\d+\/interrupt-controller$/, `${path} targets a hart`);
        }
      }
    }
  });

  it("puts each device at its VIRT_MAP address, in address order", () => {
    const expected: [string, Region][] = [
      ["test", VIRT_MAP.testFinisher],
      ["rtc", VIRT_MAP.rtc],
      ["clint", VIRT_MAP.clint],
      ["plic", VIRT_MAP.plic],
      ["serial", VIRT_MAP.uart0],
    ];
    for (const [name, region] of expected) {
      assert.deepEqual(reg(node(soc, `/${name}@${hex(region.base)}`)), regionOf(region), name);
    }
    assert.equal(readU32(soc, "#address-cells"), 2);
    assert.equal(readU32(soc, "#size-cells"), 2);
    assert.equal(readString(soc, "compatible"), "simple-bus");
    assert.deepEqual(soc.props.get("ranges"), new Uint8Array(0));
    const bases = soc.children.map((c) => reg(c)[0]);
    assert.deepEqual(
      bases,
      [...bases].sort((a, b) => a - b),
    );
    for (const child of soc.children) {
      assert.equal(child.name.split("@")[1], hex(reg(child)[0]), `${child.name} unit address matches reg`);
    }
  });

  it("routes device interrupts to the PLIC with VIRT_IRQ numbers", () => {
    const expected: [string, number][] = [
      [`serial@${hex(VIRT_MAP.uart0.base)}`, VIRT_IRQ.UART0],
      [`rtc@${hex(VIRT_MAP.rtc.base)}`, VIRT_IRQ.RTC],
    ];
    for (const [name, irq] of expected) {
      const n = node(soc, `/${name}`);
      assert.equal(readU32(n, "interrupt-parent"), plicPhandle);
      assert.equal(readU32(n, "interrupts"), irq);
      assert.ok(irq > 0 && irq < PLIC_SOURCES);
    }
    const uart = node(soc, `/serial@${hex(VIRT_MAP.uart0.base)}`);
    assert.equal(readString(uart, "compatible"), "ns16550a");
    assert.equal(readU32(uart, "clock-frequency"), 3_686_400);
    assert.equal(
      readString(node(soc, `/rtc@${hex(VIRT_MAP.rtc.base)}`), "compatible"),
      "google,goldfish-rtc",
    );
  });

  it("has one virtio-mmio node per populated slot, in slot order", () => {
    const virtio = soc.children.filter((c) => c.name.startsWith("virtio_mmio@"));
    assert.deepEqual(
      virtio.map((v) => v.name),
      [0, 5, 7].map((slot) => `virtio_mmio@${hex(VIRT_MAP.virtio.base + slot * VIRT_MAP.virtio.size)}`),
    );
    [0, 5, 7].forEach((slot, i) => {
      const v = virtio[i] as FdtNode;
      assert.equal(readString(v, "compatible"), "virtio,mmio");
      assert.deepEqual(reg(v), [VIRT_MAP.virtio.base + slot * 0x1000, 0x1000]);
      assert.equal(readU32(v, "interrupt-parent"), plicPhandle);
      assert.equal(readU32(v, "interrupts"), VIRT_IRQ.VIRTIO_FIRST + slot);
    });
  });

  it("wires the CLINT to each hart's software and timer interrupts", () => {
    const clint = node(soc, `/clint@${hex(VIRT_MAP.clint.base)}`);
    assert.deepEqual(readStrings(clint, "compatible"), ["sifive,clint0", "riscv,clint0"]);
    const intcs = [0, 1, 2].map((h) => readU32(node(root, `/cpus/cpu@${h}/interrupt-controller`), "phandle"));
    assert.deepEqual(
      pairs(readCells(clint, "interrupts-extended")),
      intcs.flatMap((p) => [
        [p, 3],
        [p, 7],
      ]),
    );
  });

  it("gives the PLIC an M-mode and an S-mode context per hart", () => {
    assert.deepEqual(readStrings(plic, "compatible"), ["sifive,plic-1.0.0", "riscv,plic0"]);
    assert.equal(readU32(plic, "#address-cells"), 0);
    assert.equal(readU32(plic, "#interrupt-cells"), 1);
    assert.ok(plic.props.has("interrupt-controller"));
    assert.equal(readU32(plic, "riscv,ndev"), PLIC_SOURCES - 1);
    const intcs = [0, 1, 2].map((h) => readU32(node(root, `/cpus/cpu@${h}/interrupt-controller`), "phandle"));
    assert.deepEqual(
      pairs(readCells(plic, "interrupts-extended")),
      intcs.flatMap((p) => [
        [p, 11],
        [p, 9],
      ]),
    );
  });

  it("powers off and reboots through the test finisher", () => {
    const test = node(soc, `/test@${hex(VIRT_MAP.testFinisher.base)}`);
    assert.deepEqual(readStrings(test, "compatible"), ["sifive,test1", "sifive,test0", "syscon"]);
    const phandle = readU32(test, "phandle");
    for (const [name, value] of [
      ["poweroff", 0x5555],
      ["reboot", 0x7777],
    ] as const) {
      const n = node(root, `/${name}`);
      assert.equal(readString(n, "compatible"), `syscon-${name}`);
      assert.equal(readU32(n, "regmap"), phandle);
      assert.equal(readU32(n, "offset"), 0);
      assert.equal(readU32(n, "value"), value);
    }
  });

  it("is the same blob for the same configuration", () => {
    assert.deepEqual(buildVirtDeviceTree(virtConfig()), buildVirtDeviceTree(virtConfig()));
  });

  it("reserves extra space when asked", () => {
    const plain = buildVirtDeviceTree(virtConfig());
    const roomy = buildVirtDeviceTree(virtConfig({ extraSpace: 4096 }));
    assert.equal(roomy.length, plain.length + 4096);
    assert.deepEqual(parseFdt(roomy), parseFdt(plain));
  });

  it("builds for every CPU count and slot set", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.subarray([...Array(VIRTIO_SLOTS).keys()]),
        (cpus, slots) => {
          const tree = parseFdt(buildVirtDeviceTree(virtConfig({ cpus, virtioSlots: slots })));
          assert.equal(node(tree, "/cpus").children.length, cpus + 1);
          assert.equal(
            readCells(node(tree, `/soc/plic@${hex(VIRT_MAP.plic.base)}`), "interrupts-extended").length,
            cpus * 4,
          );
          assert.equal(node(tree, "/soc").children.length, 5 + slots.length);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("virt device tree configuration errors", () => {
  const cases: [string, Partial<VirtTreeConfig>, RegExp][] = [
    ["no CPUs", { cpus: 0 }, /0 CPUs/],
    ["nine CPUs", { cpus: 9 }, /9 CPUs/],
    ["no memory", { memoryBytes: 0 }, /memory size 0/],
    ["an initrd outside RAM", { initrd: { start: 0x1000, end: 0x2000 } }, /not inside RAM/],
    ["an initrd past RAM", { initrd: { start: 0x8000_0000, end: 0xa000_0001 } }, /not inside RAM/],
    ["a backwards initrd", { initrd: { start: 0x8800_0000, end: 0x8700_0000 } }, /not a range/],
    ["a slot past the last", { virtioSlots: [VIRTIO_SLOTS] }, /virtio slot 8/],
    ["a slot twice", { virtioSlots: [1, 1] }, /listed twice/],
    ["a hart without atomics", { isaExtensions: ["i", "m", "zicsr"] }, /must include "a"/],
  ];
  for (const [what, overrides, message] of cases) {
    it(`rejects ${what}`, () => assert.throws(() => buildVirtDeviceTree(virtConfig(overrides)), message));
  }
});

describe("riscv,isa", () => {
  it("orders single letters canonically, then Z by category, then S, then X", () => {
    assert.equal(
      riscvIsaString([
        "sstc",
        "zba",
        "xfoo",
        "c",
        "zifencei",
        "a",
        "svinval",
        "m",
        "zicsr",
        "i",
        "zfh",
        "d",
        "f",
      ]),
      "rv64imafdc_zicsr_zifencei_zfh_zba_sstc_svinval_xfoo",
    );
    assert.equal(
      riscvIsaString(["v", "h", "a", "m", "i", "zve64x", "zmmul", "zaamo"]),
      "rv64imavh_zmmul_zaamo_zve64x",
    );
    assert.equal(riscvIsaString(["I", "M", "A"]), "rv64ima");
  });

  it("always matches the pattern of Linux's riscv,isa binding", () => {
    const pattern = /^rv64imaf?d?q?c?b?k?j?p?v?h?(?:_[hsxz][0-9a-z]+)*$/;
    const optional = ["f", "d", "q", "c", "b", "k", "j", "p", "v", "h"];
    const multi = [
      "zicsr",
      "zifencei",
      "zicntr",
      "zihpm",
      "zba",
      "zbb",
      "zfh",
      "zkr",
      "sstc",
      "svpbmt",
      "xabc",
    ];
    fc.assert(
      fc.property(fc.subarray([...optional, ...multi]), fc.boolean(), (extra, reverse) => {
        const list = ["i", "m", "a", ...extra];
        const sorted = canonicalIsaExtensions(reverse ? list.reverse() : list);
        assert.match(riscvIsaString(sorted), pattern);
        assert.deepEqual(
          canonicalIsaExtensions([...sorted].reverse()),
          sorted,
          "order does not depend on input",
        );
      }),
    );
  });

  it("rejects names Linux would not parse", () => {
    assert.throws(() => canonicalIsaExtensions(["i", "m", "a", "g"]), /"g" is not a single-letter/);
    assert.throws(() => canonicalIsaExtensions(["i", "m", "a", "e"]), /"e" is not a single-letter/);
    assert.throws(() => canonicalIsaExtensions(["i", "m", "a", "abc"]), /start with z, s or x/);
    assert.throws(() => canonicalIsaExtensions(["i", "m", "a", "z_x"]), /not a valid name/);
    assert.throws(() => canonicalIsaExtensions(["i", "m", "a", "m"]), /listed twice/);
    assert.throws(() => canonicalIsaExtensions(["m", "a"]), /must include "i"/);
  });
});

describe("device-tree.ts source", () => {
  it("spells no address or size of the memory map (they come from VIRT_MAP)", () => {
    const source = readFileSync("src/machine/riscv-virt/device-tree.ts", "utf8");
    const literals = [...source.matchAll(/\b(0x[0-9a-f_]+|\d[\d_]*)\b/gi)].map((m) =>
      Number((m[1] as string).replaceAll("_", "")),
    );
    for (const [name, region] of Object.entries(VIRT_MAP) as [string, Region][]) {
      for (const value of [region.base, region.size]) {
        if (value < 0x100) continue; // 0 and small numbers are cell counts, not addresses
        assert.ok(
          !literals.includes(value),
          `${name}: 0x${value.toString(16)} written out in device-tree.ts`,
        );
      }
    }
  });
});
