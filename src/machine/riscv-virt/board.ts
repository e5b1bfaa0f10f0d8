import { RiscvCpu } from "../../cpu/riscv/cpu.js";
import type { Hart } from "../../cpu/riscv/hart.js";
import { type ByteSink, sinkWritable, wakingSink } from "../../devices/byte-sink.js";
import { Clint } from "../../devices/clint/clint.js";
import type { Clock } from "../../devices/device.js";
import { GoldfishRtc } from "../../devices/goldfish-rtc/goldfish-rtc.js";
import { type HostClock, platformClock } from "../../devices/host-clock.js";
import { Htif } from "../../devices/htif/htif.js";
import { Plic } from "../../devices/plic/plic.js";
import { TestFinisher } from "../../devices/test-finisher/test-finisher.js";
import { Uart16550 } from "../../devices/uart16550/uart16550.js";
import { VirtioBalloon } from "../../devices/virtio/balloon/virtio-balloon.js";
import type { RingFormat } from "../../devices/virtio/queue.js";
import { VirtioVsock } from "../../devices/virtio/vsock/virtio-vsock.js";
import { UserError } from "../../util/errors.js";
import { RecordReader } from "../../util/record.js";
import type { ElfImage } from "../loader/elf.js";
import { DeviceBus } from "../mmio-bus.js";
import { PLIC_SOURCES, TIMEBASE_HZ, VIRT_IRQ, VIRT_MAP } from "./memory-map.js";
import { SbiFirmware } from "./sbi/firmware.js";
import { VirtioSlots } from "./virtio-slots.js";

/** Where guest output goes (the host terminal, a test's buffer, a web console); it may be bounded. */
export type ConsoleSink = ByteSink;

export interface VirtOptions {
  memory: number;
  cpus: number;
  console: ConsoleSink;
  /** Virtqueue formats the virtio devices offer: "packed" (default) adds VIRTIO_F_RING_PACKED. */
  virtioRing?: RingFormat;
  /**
   * Where guest time comes from: mtime counts its monotonic milliseconds from the board's creation at
   * TIMEBASE_HZ, the RTC reads its wall clock. Default: platformClock (VMs get their host's).
   */
  clock?: HostClock;
  /** mtime's ticks themselves, instead of the clock's (a lockstep test gives two boards the same time). */
  guestTicks?: Clock;
}

/** What ended the guest, once it asked to stop. */
export interface GuestExit {
  code: number;
  reason: "exit" | "poweroff" | "reboot" | "failure";
}

/**
 * The board's own state as plain data (see `snapshot`): guest time, what the guest asked for, host input
 * not yet taken, and how it was booted (built-in SBI, HTIF mailboxes). The SBI keeps no state of its own
 * (the harts' HSM state is theirs).
 */
export interface VirtBoardState {
  version: 1;
  /** mtime's clock (ticks) when the snapshot was taken: restored guest time goes on from there. */
  ticks: number;
  exit: GuestExit | null;
  pendingInput: number[];
  builtinSbi: boolean;
  htif: { tohost: number; fromhost: number | null } | null;
  hypercalls: [string, number][];
}

const EXIT_REASONS: readonly GuestExit["reason"][] = ["exit", "poweroff", "reboot", "failure"];

/** mip bit numbers of the interrupt lines the board drives. */
const MSIP_BIT = 3;
const MTIP_BIT = 7;
const SEIP_BIT = 9;
const MEIP_BIT = 11;

/**
 * The riscv64 `virt` board: harts, RAM at 0x8000_0000 and the devices of VIRT_MAP (CLINT, PLIC, 16550
 * UART, goldfish RTC, test finisher, virtio-mmio slots), wired together; the built-in SBI for
 * firmware-free boots.
 * It decides what a guest request to stop means; it does not run anything (engines do).
 */
export class VirtBoard {
  readonly cpu: RiscvCpu;
  readonly clint: Clint;
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  /** The eight virtio-mmio slots; attach devices before booting. */
  readonly virtio: VirtioSlots;
  readonly clock: Clock;
  readonly sbi: SbiFirmware;
  /** Hypercalls by SBI extension name, for --stats. */
  readonly hypercalls = new Map<string, number>();
  /** Set when the guest asked to stop (HTIF, test finisher, SBI SRST); the engine ends the run. */
  exit: GuestExit | null = null;
  /**
   * Called when a device raised an interrupt, possibly from a host callback (a disk read finishing)
   * while every hart sleeps in WFI: the engine sets it to wake up.
   */
  onDeviceInterrupt: () => void = () => {};
  /** Host input not yet taken by the guest (the UART FIFO holds 16 bytes). */
  private readonly pendingInput: number[] = [];
  /** Added to the clock's ticks: a restored guest's time goes on from its snapshot. */
  private tickOffset = 0;
  private readonly rawTicks: () => number;
  private htif: Htif | null = null;

  constructor(readonly options: VirtOptions) {
    const host = options.clock ?? platformClock;
    const start = host.monotonicMs();
    const ticks = options.guestTicks ?? {
      ticks: () => Math.floor((host.monotonicMs() - start) * (TIMEBASE_HZ / 1000)),
    };
    this.rawTicks = () => ticks.ticks();
    this.clock = { ticks: () => ticks.ticks() + this.tickOffset };
    const bus = new DeviceBus();
    this.cpu = new RiscvCpu({
      ramBase: VIRT_MAP.dram.base,
      ramSize: options.memory,
      harts: options.cpus,
      bus,
      clock: this.clock,
    });
    const harts = this.cpu.harts;
    const line = (h: Hart, bit: number) => ({ set: (level: boolean) => h.csr.setInterruptLine(bit, level) });
    this.clint = new Clint(
      this.clock,
      harts.map((h) => ({ software: line(h, MSIP_BIT), timer: line(h, MTIP_BIT) })),
    );
    this.plic = new Plic({
      sources: PLIC_SOURCES,
      contexts: 2 * harts.length,
      lines: harts.flatMap((h) => [line(h, MEIP_BIT), line(h, SEIP_BIT)]),
    });
    // When a full console drains, the UART's THR-empty interrupt may be what a sleeping hart waits for.
    const uartSink = wakingSink(options.console, () => this.wakeForDevice());
    this.uart = new Uart16550(this.plic.line(VIRT_IRQ.UART0), uartSink);
    this.rtc = new GoldfishRtc({ nowNanos: () => host.wallNanos() }, this.plic.line(VIRT_IRQ.RTC));
    const finisher = new TestFinisher((request) => {
      if (request.kind === "reset") this.requestExit({ code: 0, reason: "reboot" });
      else this.requestExit({ code: request.code, reason: request.code === 0 ? "poweroff" : "failure" });
    });
    bus.map(VIRT_MAP.testFinisher.base, VIRT_MAP.testFinisher.size, finisher);
    bus.map(VIRT_MAP.rtc.base, VIRT_MAP.rtc.size, this.rtc);
    bus.map(VIRT_MAP.clint.base, VIRT_MAP.clint.size, this.clint);
    bus.map(VIRT_MAP.plic.base, VIRT_MAP.plic.size, this.plic);
    bus.map(VIRT_MAP.uart0.base, VIRT_MAP.uart0.size, this.uart);
    this.virtio = new VirtioSlots(bus, this.plic, this.cpu.ram, options.virtioRing, () =>
      this.wakeForDevice(),
    );
    this.sbi = new SbiFirmware({
      harts,
      ram: this.cpu.ram,
      consoleWrite: (byte) => options.console.write(byte),
      consoleWritable: () => sinkWritable(options.console),
      consoleRead: () => this.pendingInput.shift() ?? -1,
      systemReset: (type, reason) => {
        if (type === 0)
          this.requestExit({ code: reason === 0 ? 0 : 1, reason: reason === 0 ? "poweroff" : "failure" });
        else this.requestExit({ code: 0, reason: "reboot" });
      },
      countCall: (name) => this.hypercalls.set(name, (this.hypercalls.get(name) ?? 0) + 1),
      yieldHart: () => {
        this.cpu.attention.endSlice = true;
      },
    });
  }

  /** The exit code once the guest asked to stop, else null. */
  get exitCode(): number | null {
    return this.exit?.code ?? null;
  }

  /**
   * The virtio-balloon device if one is attached: how the host takes memory back from the guest
   * (`setTarget`) and reads its memory statistics.
   */
  get balloon(): VirtioBalloon | null {
    return this.virtio.find(VirtioBalloon);
  }

  /** The virtio-vsock device if one is attached: how the host opens streams to the guest (`connect`). */
  get vsock(): VirtioVsock | null {
    return this.virtio.find(VirtioVsock);
  }

  /** Bytes typed on the host console; they reach the guest as UART input. */
  consoleInput(bytes: Uint8Array): void {
    for (const b of bytes) this.pendingInput.push(b);
    this.feedUart();
  }

  /** Between slices: bring time-driven device state up to date and hand over queued input. */
  tick(): void {
    this.clint.update();
    this.rtc.update();
    if (this.pendingInput.length > 0) this.feedUart();
  }

  /** Guest time (ticks) of the next device timer event, for idle sleeps. */
  nextDeadline(): number {
    return this.clint.nextDeadline();
  }

  /** Answers S-mode ECALLs with the built-in SBI instead of trapping to (absent) M-mode firmware. */
  useBuiltinSbi(): void {
    this.cpu.system.ecallHandler = (h) => this.sbi.handle(h);
  }

  /**
   * Copies an ELF's segments into RAM (each must fit entirely), points every hart at its entry in
   * M-mode, and attaches HTIF when the image has a `tohost` symbol.
   */
  loadElf(image: ElfImage, fileName: string): void {
    for (const seg of image.segments) {
      if (seg.memSize === 0) continue;
      this.copyToRam(seg.paddr, seg.data, seg.memSize, `${fileName}: segment`);
    }
    this.startAll(image.entry);
    const tohost = image.symbols.get("tohost");
    if (tohost !== undefined) this.attachHtif(tohost, image.symbols.get("fromhost") ?? null, fileName);
  }

  /** Loads a raw binary at the start of RAM and starts there. */
  loadRaw(bytes: Uint8Array, fileName: string): void {
    this.copyToRam(VIRT_MAP.dram.base, bytes, bytes.length, fileName);
    this.startAll(VIRT_MAP.dram.base);
  }

  /** Copies `data` to guest physical `paddr` and zero-fills up to `size`; the range must be RAM. */
  copyToRam(paddr: number, data: Uint8Array, size: number, what: string): void {
    const ram = this.cpu.ram;
    if (!ram.contains(paddr, size)) {
      throw new UserError(
        `${what} at 0x${paddr.toString(16)} (${size} bytes) lies outside RAM ` +
          `0x${ram.base.toString(16)}..0x${(ram.base + ram.size).toString(16)}`,
      );
    }
    const at = paddr - ram.base;
    ram.bytes.set(data, at);
    ram.bytes.fill(0, at + data.length, at + size);
    ram.written(paddr, size);
  }

  /** Every hart at `entry` in M-mode (bare-metal programs and M-mode firmware). */
  startAll(entry: number): void {
    for (const h of this.cpu.harts) h.reset((entry % 2 ** 32) | 0, Math.floor(entry / 2 ** 32) | 0);
  }

  snapshot(): VirtBoardState {
    return {
      version: 1,
      ticks: this.clock.ticks(),
      exit: this.exit === null ? null : { ...this.exit },
      pendingInput: this.pendingInput.slice(),
      builtinSbi: this.cpu.system.ecallHandler !== null,
      htif: this.htif === null ? null : { tohost: this.htif.tohost, fromhost: this.htif.fromhost },
      hypercalls: [...this.hypercalls.entries()],
    };
  }

  /**
   * Restores a `snapshot()` into a board freshly built from the same spec (nothing loaded yet); throws
   * a TypeError naming the field, changing nothing, when the record is malformed.
   */
  restore(state: unknown): void {
    const s = new RecordReader("board", state, 1);
    const ticks = s.count("ticks");
    const exit = s.optional("exit", (v) => {
      const e = new RecordReader("board exit", { ...(v as object), version: 1 }, 1);
      const reason = (v as { reason?: unknown }).reason;
      if (!EXIT_REASONS.includes(reason as GuestExit["reason"])) e.fail("reason", EXIT_REASONS.join("/"));
      return { code: e.i32("code"), reason: reason as GuestExit["reason"] };
    });
    const input = s.list("pendingInput", 1 << 20, 0, 0xff);
    const builtinSbi = s.bool("builtinSbi");
    const htif = s.optional("htif", (v) => {
      const h = new RecordReader("board htif", { ...(v as object), version: 1 }, 1);
      const tohost = h.count("tohost");
      const fromhost = (v as { fromhost?: unknown }).fromhost === null ? null : h.count("fromhost");
      const ram = this.cpu.ram;
      if (!ram.contains(tohost, 8) || (fromhost !== null && !ram.contains(fromhost, 8))) {
        h.fail("tohost", "a RAM address");
      }
      return { tohost, fromhost };
    });
    const hypercalls = (state as { hypercalls?: unknown }).hypercalls;
    if (
      !Array.isArray(hypercalls) ||
      !hypercalls.every(
        (e) =>
          Array.isArray(e) &&
          e.length === 2 &&
          typeof e[0] === "string" &&
          Number.isSafeInteger(e[1]) &&
          (e[1] as number) >= 0,
      )
    ) {
      s.fail("hypercalls", "[name, count] pairs");
    }
    if (this.htif !== null && htif !== null) s.fail("htif", "null on a board that has HTIF already");
    this.tickOffset = ticks - this.rawTicks();
    this.exit = exit;
    this.pendingInput.splice(0, this.pendingInput.length, ...input);
    if (builtinSbi) this.useBuiltinSbi();
    if (htif !== null) this.attachHtif(htif.tohost, htif.fromhost, "snapshot");
    this.hypercalls.clear();
    for (const [name, count] of hypercalls as [string, number][]) this.hypercalls.set(name, count);
  }

  /** A device raised an interrupt: deliver it now rather than at the end of the slice, and wake the engine. */
  private wakeForDevice(): void {
    this.cpu.attention.endSlice = true;
    this.onDeviceInterrupt();
  }

  private requestExit(exit: GuestExit): void {
    this.exit ??= exit;
    this.cpu.attention.endSlice = true;
  }

  private feedUart(): void {
    const room = Math.min(this.uart.canReceive(), this.pendingInput.length);
    if (room <= 0) return;
    this.uart.receive(Uint8Array.from(this.pendingInput.splice(0, room)));
  }

  private attachHtif(tohost: number, fromhost: number | null, fileName: string): void {
    const ram = this.cpu.ram;
    if (!ram.contains(tohost, 8) || (fromhost !== null && !ram.contains(fromhost, 8))) {
      throw new UserError(`${fileName}: tohost/fromhost symbols lie outside RAM`);
    }
    const htif = new Htif(ram, tohost, fromhost, {
      exit: (code) => this.requestExit({ code, reason: code === 0 ? "exit" : "failure" }),
      putchar: (byte) => this.options.console.write(byte),
    });
    this.cpu.watchStores(tohost, (paddr, size) => htif.onStore(paddr, size));
    this.htif = htif;
  }
}
