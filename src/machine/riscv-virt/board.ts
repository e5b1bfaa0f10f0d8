import { RiscvCpu } from "../../cpu/riscv/cpu.js";
import { Clint } from "../../devices/clint/clint.js";
import type { Clock } from "../../devices/device.js";
import { Htif } from "../../devices/htif/htif.js";
import { TestFinisher } from "../../devices/test-finisher/test-finisher.js";
import { UserError } from "../../util/errors.js";
import type { ElfImage } from "../loader/elf.js";
import { DeviceBus } from "../mmio-bus.js";
import { TIMEBASE_HZ, VIRT_MAP } from "./memory-map.js";

/** Where guest output goes (the host terminal, a test's buffer, a web console). */
export interface ConsoleSink {
  write(byte: number): void;
}

export interface VirtOptions {
  memory: number;
  cpus: number;
  console: ConsoleSink;
}

/** Machine-level interrupt bits in mip. */
const MSIP_BIT = 3;
const MTIP_BIT = 7;

/**
 * The riscv64 `virt` board: harts, RAM at 0x8000_0000 and the devices of VIRT_MAP, wired together.
 * It decides what a guest request to stop means; it does not run anything (engines do).
 */
export class VirtBoard {
  readonly cpu: RiscvCpu;
  readonly clint: Clint;
  readonly clock: Clock;
  /** Set when the guest asked to stop (HTIF exit, test finisher); the engine ends the run. */
  exitCode: number | null = null;

  constructor(readonly options: VirtOptions) {
    const start = performance.now();
    this.clock = { ticks: () => Math.floor((performance.now() - start) * (TIMEBASE_HZ / 1000)) };
    const bus = new DeviceBus();
    this.cpu = new RiscvCpu({
      ramBase: VIRT_MAP.dram.base,
      ramSize: options.memory,
      harts: options.cpus,
      bus,
      clock: this.clock,
    });
    this.clint = new Clint(
      this.clock,
      this.cpu.harts.map((h) => ({
        software: { set: (level: boolean) => h.csr.setInterruptLine(MSIP_BIT, level) },
        timer: { set: (level: boolean) => h.csr.setInterruptLine(MTIP_BIT, level) },
      })),
    );
    bus.map(VIRT_MAP.clint.base, VIRT_MAP.clint.size, this.clint);
    const finisher = new TestFinisher((request) => {
      this.exitCode = request.kind === "exit" ? request.code : 0;
    });
    bus.map(VIRT_MAP.testFinisher.base, VIRT_MAP.testFinisher.size, finisher);
  }

  /** Between slices: bring time-driven device state (timer lines) up to date. */
  tick(): void {
    this.clint.update();
  }

  /** Guest time (ticks) of the next device timer event, for idle sleeps. */
  nextDeadline(): number {
    return this.clint.nextDeadline();
  }

  /**
   * Copies an ELF's segments into RAM (each must fit entirely), points every hart at its entry in
   * M-mode, and attaches HTIF when the image has a `tohost` symbol.
   */
  loadElf(image: ElfImage, fileName: string): void {
    const ram = this.cpu.ram;
    for (const seg of image.segments) {
      if (seg.memSize === 0) continue;
      if (!ram.contains(seg.paddr, seg.memSize)) {
        throw new UserError(
          `${fileName}: segment at 0x${seg.paddr.toString(16)} (${seg.memSize} bytes) lies outside RAM ` +
            `0x${ram.base.toString(16)}..0x${(ram.base + ram.size).toString(16)}`,
        );
      }
      const at = seg.paddr - ram.base;
      ram.bytes.set(seg.data, at);
      ram.bytes.fill(0, at + seg.data.length, at + seg.memSize);
    }
    this.startAt(image.entry);
    const tohost = image.symbols.get("tohost");
    if (tohost !== undefined) this.attachHtif(tohost, image.symbols.get("fromhost") ?? null, fileName);
  }

  /** Loads a raw binary at the start of RAM and starts there. */
  loadRaw(bytes: Uint8Array, fileName: string): void {
    const ram = this.cpu.ram;
    if (bytes.length > ram.size) throw new UserError(`${fileName}: ${bytes.length} bytes do not fit in RAM`);
    ram.bytes.set(bytes, 0);
    this.startAt(ram.base);
  }

  private startAt(entry: number): void {
    for (const h of this.cpu.harts) h.reset((entry % 2 ** 32) | 0, Math.floor(entry / 2 ** 32) | 0);
  }

  private attachHtif(tohost: number, fromhost: number | null, fileName: string): void {
    const ram = this.cpu.ram;
    if (!ram.contains(tohost, 8) || (fromhost !== null && !ram.contains(fromhost, 8))) {
      throw new UserError(`${fileName}: tohost/fromhost symbols lie outside RAM`);
    }
    const htif = new Htif(ram, tohost, fromhost, {
      exit: (code) => {
        this.exitCode = code;
      },
      putchar: (byte) => this.options.console.write(byte),
    });
    this.cpu.watchStores(tohost, (paddr, size) => htif.onStore(paddr, size));
  }
}
