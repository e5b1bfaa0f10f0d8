/**
 * The riscv64 `virt` board's device tree, generated from its memory map (memory-map.ts): every address,
 * size and interrupt number below comes from VIRT_MAP / VIRT_IRQ, so the tree cannot disagree with where
 * the board maps its devices. It is modelled on what QEMU's `-M virt` hands to firmware and kernel, minus
 * what this board does not have (PCIe, flash, fw-cfg, platform bus, PMU node, AIA).
 */
import { MAX_HARTS } from "../../cpu/riscv/state.js";
import { FdtBuilder } from "../fdt/builder.js";
import { PLIC_SOURCES, TIMEBASE_HZ, VIRT_IRQ, VIRT_MAP, VIRTIO_SLOTS } from "./memory-map.js";

export interface VirtTreeConfig {
  /** Harts, 1..8; hart N is /cpus/cpu@N. */
  cpus: number;
  /** RAM at VIRT_MAP.dram.base. */
  memoryBytes: number;
  /** The kernel command line; /chosen has no bootargs when it is empty. */
  bootargs: string;
  /** Physical range of the initial ramdisk (end exclusive), inside RAM. */
  initrd?: { start: number; end: number };
  /** virtio-mmio slots that have a device (0..VIRTIO_SLOTS-1); nodes are emitted in slot order. */
  virtioSlots: number[];
  /** Lower-case ISA extension names, any order, e.g. ["i","m","a","f","d","c","zicsr","zifencei","sstc"]. */
  isaExtensions: string[];
  mmuType: "riscv,sv39" | "riscv,sv48";
  /** Entropy for /chosen/rng-seed (Linux seeds its RNG from it early). Omitted when not given. */
  rngSeed?: Uint8Array;
  /** Free bytes after the blob for firmware that grows the tree in place (see FinishOptions.extraSpace). */
  extraSpace?: number;
}

/** The 16550's input clock (1.8432 MHz x 2), as on QEMU's virt board. */
const UART_CLOCK_HZ = 3_686_400;
/** Words the test finisher (sifive,test0) takes for power off and reboot; see devices/test-finisher. */
const FINISHER_POWEROFF = 0x5555;
const FINISHER_REBOOT = 0x7777;

/** Local interrupt numbers on a hart's riscv,cpu-intc: the mip bit of each source. */
const IRQ_M_SOFT = 3;
const IRQ_M_TIMER = 7;
const IRQ_S_EXT = 9;
const IRQ_M_EXT = 11;

/** Single-letter extensions in canonical order (unprivileged spec, "ISA Extension Naming Conventions"). */
const CANONICAL_ORDER = "imafdqlcbkjtpvh";
/** The single letters Linux's riscv,isa binding accepts (rv64imaf?d?q?c?b?k?j?p?v?h?). */
const SINGLE_LETTERS = "imafdqcbkjpvh";
const EXTENSION_NAME = /^[a-z][a-z0-9]*$/;

/** Sort key of an extension: single letters first, then Z (by category, then name), S, X (by name). */
function extensionRank(name: string): [number, number, string] {
  if (name.length === 1) return [0, SINGLE_LETTERS.indexOf(name), ""];
  if (name[0] === "z") {
    const category = CANONICAL_ORDER.indexOf(name[1] as string);
    return [1, category >= 0 ? category : CANONICAL_ORDER.length + (name.charCodeAt(1) - 97), name];
  }
  return [name[0] === "s" ? 2 : 3, 0, name];
}

/**
 * The extensions in the canonical order the ISA manual (and Linux, which refuses or misparses anything
 * else) expects, after checking each name. Throws unless i, m and a are present: Linux will not start on
 * a hart without them.
 */
export function canonicalIsaExtensions(extensions: readonly string[]): string[] {
  const names = extensions.map((e) => e.toLowerCase());
  const seen = new Set<string>();
  for (const name of names) {
    if (!EXTENSION_NAME.test(name)) throw new Error(`ISA extension "${name}" is not a valid name`);
    if (name.length === 1 && !SINGLE_LETTERS.includes(name)) {
      throw new Error(`ISA extension "${name}" is not a single-letter extension Linux accepts`);
    }
    if (name.length > 1 && !"zsx".includes(name[0] as string)) {
      throw new Error(`ISA extension "${name}": multi-letter extensions start with z, s or x`);
    }
    if (seen.has(name)) throw new Error(`ISA extension "${name}" is listed twice`);
    seen.add(name);
  }
  for (const required of ["i", "m", "a"]) {
    if (!seen.has(required))
      throw new Error(`ISA extensions must include "${required}" (Linux needs rv64ima)`);
  }
  return names.sort((x, y) => {
    const [gx, cx, nx] = extensionRank(x);
    const [gy, cy, ny] = extensionRank(y);
    return gx - gy || cx - cy || (nx < ny ? -1 : nx > ny ? 1 : 0);
  });
}

/** The riscv,isa string, e.g. "rv64imafdc_zicntr_zicsr_zifencei_sstc". */
export function riscvIsaString(extensions: readonly string[]): string {
  const sorted = canonicalIsaExtensions(extensions);
  const single = sorted.filter((e) => e.length === 1).join("");
  const multi = sorted.filter((e) => e.length > 1);
  return `rv64${single}${multi.map((e) => `_${e}`).join("")}`;
}

/** "name@<base in hex>", the unit-address form the spec requires (lower case, no leading zeros). */
function unitName(name: string, base: number): string {
  return `${name}@${base.toString(16)}`;
}

/** Paths of the nodes other code (the console, tests) needs to find. */
export const VIRT_TREE_PATHS = {
  uart0: `/soc/${unitName("serial", VIRT_MAP.uart0.base)}`,
  memory: `/${unitName("memory", VIRT_MAP.dram.base)}`,
} as const;

function virtioBase(slot: number): number {
  return VIRT_MAP.virtio.base + slot * VIRT_MAP.virtio.size;
}

function checkConfig(config: VirtTreeConfig): void {
  const { cpus, memoryBytes, initrd, virtioSlots } = config;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_HARTS) {
    throw new Error(`device tree: ${cpus} CPUs (1..${MAX_HARTS} are supported)`);
  }
  const ramEnd = VIRT_MAP.dram.base + memoryBytes;
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes <= 0 || !Number.isSafeInteger(ramEnd)) {
    throw new Error(`device tree: memory size ${memoryBytes} is not a positive byte count`);
  }
  if (initrd !== undefined) {
    const { start, end } = initrd;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end) {
      throw new Error(`device tree: initrd range ${start}..${end} is not a range`);
    }
    if (start < VIRT_MAP.dram.base || end > ramEnd) {
      throw new Error(`device tree: initrd 0x${start.toString(16)}..0x${end.toString(16)} is not inside RAM`);
    }
  }
  const seen = new Set<number>();
  for (const slot of virtioSlots) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= VIRTIO_SLOTS) {
      throw new Error(`device tree: virtio slot ${slot} (0..${VIRTIO_SLOTS - 1} exist)`);
    }
    if (seen.has(slot)) throw new Error(`device tree: virtio slot ${slot} listed twice`);
    seen.add(slot);
  }
  if (config.mmuType !== "riscv,sv39" && config.mmuType !== "riscv,sv48") {
    throw new Error(`device tree: mmu-type "${config.mmuType}"`);
  }
}

/** The board's device tree blob for this configuration (deterministic unless rngSeed is given). */
export function buildVirtDeviceTree(config: VirtTreeConfig): Uint8Array {
  checkConfig(config);
  const isaExtensions = canonicalIsaExtensions(config.isaExtensions);
  const harts = Array.from({ length: config.cpus }, (_, i) => i);
  const fdt = new FdtBuilder();
  const cpuPhandle = harts.map((h) => fdt.allocPhandle(`cpu${h}`));
  const intcPhandle = harts.map((h) => fdt.allocPhandle(`intc${h}`));
  const plic = fdt.allocPhandle("plic");
  const test = fdt.allocPhandle("test");

  fdt.beginNode("");
  fdt.propU32("#address-cells", 2);
  fdt.propU32("#size-cells", 2);
  fdt.propString("compatible", "riscv-virtio");
  fdt.propString("model", "riscv-virtio,qemu");

  fdt.beginNode("chosen");
  if (config.bootargs !== "") fdt.propString("bootargs", config.bootargs);
  fdt.propString("stdout-path", VIRT_TREE_PATHS.uart0);
  if (config.initrd !== undefined) {
    fdt.propU64("linux,initrd-start", config.initrd.start);
    fdt.propU64("linux,initrd-end", config.initrd.end);
  }
  if (config.rngSeed !== undefined) fdt.propBytes("rng-seed", config.rngSeed);
  fdt.endNode();

  fdt.beginNode("aliases");
  fdt.propString("serial0", VIRT_TREE_PATHS.uart0);
  fdt.endNode();

  fdt.beginNode(unitName("memory", VIRT_MAP.dram.base));
  fdt.propString("device_type", "memory");
  fdt.propU64("reg", VIRT_MAP.dram.base, config.memoryBytes);
  fdt.endNode();

  fdt.beginNode("cpus");
  fdt.propU32("#address-cells", 1);
  fdt.propU32("#size-cells", 0);
  fdt.propU32("timebase-frequency", TIMEBASE_HZ);
  for (const hart of harts) {
    fdt.beginNode(unitName("cpu", hart));
    fdt.propString("device_type", "cpu");
    fdt.propU32("reg", hart);
    fdt.propString("status", "okay");
    fdt.propString("compatible", "riscv");
    fdt.propString("riscv,isa", riscvIsaString(isaExtensions));
    fdt.propString("riscv,isa-base", "rv64i");
    fdt.propStrings("riscv,isa-extensions", isaExtensions);
    fdt.propString("mmu-type", config.mmuType);
    fdt.propPhandle(cpuPhandle[hart] as number);
    fdt.beginNode("interrupt-controller");
    fdt.propString("compatible", "riscv,cpu-intc");
    fdt.propU32("#address-cells", 0);
    fdt.propU32("#interrupt-cells", 1);
    fdt.propEmpty("interrupt-controller");
    fdt.propPhandle(intcPhandle[hart] as number);
    fdt.endNode();
    fdt.endNode();
  }
  fdt.beginNode("cpu-map");
  fdt.beginNode("cluster0");
  for (const hart of harts) {
    fdt.beginNode(`core${hart}`);
    fdt.propU32("cpu", cpuPhandle[hart] as number);
    fdt.endNode();
  }
  fdt.endNode();
  fdt.endNode();
  fdt.endNode();

  // Outside /soc, as on QEMU: they have no registers, and children of a simple-bus must have them.
  for (const [name, value] of [
    ["poweroff", FINISHER_POWEROFF],
    ["reboot", FINISHER_REBOOT],
  ] as const) {
    fdt.beginNode(name);
    fdt.propString("compatible", `syscon-${name}`);
    fdt.propU32("regmap", test);
    fdt.propU32("offset", 0);
    fdt.propU32("value", value);
    fdt.endNode();
  }

  fdt.beginNode("soc");
  fdt.propU32("#address-cells", 2);
  fdt.propU32("#size-cells", 2);
  fdt.propString("compatible", "simple-bus");
  fdt.propEmpty("ranges");
  const devices: { name: string; base: number; write: () => void }[] = [
    {
      name: "test",
      base: VIRT_MAP.testFinisher.base,
      write: () => {
        fdt.propStrings("compatible", ["sifive,test1", "sifive,test0", "syscon"]);
        fdt.propU64("reg", VIRT_MAP.testFinisher.base, VIRT_MAP.testFinisher.size);
        fdt.propPhandle(test);
      },
    },
    {
      name: "rtc",
      base: VIRT_MAP.rtc.base,
      write: () => {
        fdt.propString("compatible", "google,goldfish-rtc");
        fdt.propU64("reg", VIRT_MAP.rtc.base, VIRT_MAP.rtc.size);
        fdt.propU32("interrupt-parent", plic);
        fdt.propU32("interrupts", VIRT_IRQ.RTC);
      },
    },
    {
      name: "clint",
      base: VIRT_MAP.clint.base,
      write: () => {
        fdt.propStrings("compatible", ["sifive,clint0", "riscv,clint0"]);
        fdt.propU64("reg", VIRT_MAP.clint.base, VIRT_MAP.clint.size);
        fdt.propCells(
          "interrupts-extended",
          harts.flatMap((h) => [intcPhandle[h] as number, IRQ_M_SOFT, intcPhandle[h] as number, IRQ_M_TIMER]),
        );
      },
    },
    {
      name: "plic",
      base: VIRT_MAP.plic.base,
      write: () => {
        fdt.propStrings("compatible", ["sifive,plic-1.0.0", "riscv,plic0"]);
        fdt.propU64("reg", VIRT_MAP.plic.base, VIRT_MAP.plic.size);
        fdt.propU32("#address-cells", 0);
        fdt.propU32("#interrupt-cells", 1);
        fdt.propEmpty("interrupt-controller");
        fdt.propU32("riscv,ndev", PLIC_SOURCES - 1);
        // Context 2N is hart N's M-mode external interrupt, 2N+1 its S-mode one.
        fdt.propCells(
          "interrupts-extended",
          harts.flatMap((h) => [intcPhandle[h] as number, IRQ_M_EXT, intcPhandle[h] as number, IRQ_S_EXT]),
        );
        fdt.propPhandle(plic);
      },
    },
    {
      name: "serial",
      base: VIRT_MAP.uart0.base,
      write: () => {
        fdt.propString("compatible", "ns16550a");
        fdt.propU64("reg", VIRT_MAP.uart0.base, VIRT_MAP.uart0.size);
        fdt.propU32("clock-frequency", UART_CLOCK_HZ);
        fdt.propU32("interrupt-parent", plic);
        fdt.propU32("interrupts", VIRT_IRQ.UART0);
      },
    },
    ...[...config.virtioSlots]
      .sort((a, b) => a - b)
      .map((slot) => ({
        name: "virtio_mmio",
        base: virtioBase(slot),
        write: () => {
          fdt.propString("compatible", "virtio,mmio");
          fdt.propU64("reg", virtioBase(slot), VIRT_MAP.virtio.size);
          fdt.propU32("interrupt-parent", plic);
          fdt.propU32("interrupts", VIRT_IRQ.VIRTIO_FIRST + slot);
        },
      })),
  ];
  for (const device of devices.sort((a, b) => a.base - b.base)) {
    fdt.beginNode(unitName(device.name, device.base));
    device.write();
    fdt.endNode();
  }
  fdt.endNode();

  fdt.endNode();
  return fdt.finish({ bootCpuId: 0, extraSpace: config.extraSpace ?? 0 });
}
