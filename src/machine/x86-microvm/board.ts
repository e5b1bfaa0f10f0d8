/**
 * The x86 microVM board on KVM, built through hypervisor/kvm/: RAM with the 3–4 GiB hole, the in-kernel
 * PIC/IOAPIC/LAPIC and PIT, a 16550 UART as COM1 and an i8042 for resets, eight virtio-mmio slots
 * (ioeventfd doorbells, irqfd interrupts, declared in the DSDT and on the command line), and vCPUs set up
 * the way Linux's 64-bit boot protocol expects.
 *
 * Order matters to KVM: TSS address, irqchip and PIT before any vCPU; CPUID before MSRs (KVM only accepts
 * MSRs the CPUID announces); the LAPIC's LINT pins after the irqchip exists.
 *
 * The board does not run its vCPUs: an engine takes it (engines/kvm/engine.ts, `new KvmEngine(board)`),
 * forwards the exits of `forwardedPorts` and of MMIO to `portIo`/`mmio`, and sets `onGuestEvent`, which
 * the i8042 reset and the ACPI sleep port call.
 */
import type { GuestMemory, InterruptLine } from "../../devices/device.js";
import { type ByteSink, Uart16550 } from "../../devices/uart16550/uart16550.js";
import type { RingFormat } from "../../devices/virtio/queue.js";
import { CAP, IRQCHIP_ID, LAPIC, PIC_STATE } from "../../hypervisor/kvm/abi.js";
import { normalizeCpuid } from "../../hypervisor/kvm/cpuid.js";
import { IrqfdLine } from "../../hypervisor/kvm/eventfd.js";
import { GuestRam } from "../../hypervisor/kvm/guest-ram.js";
import { Kvm, type MsrEntry, type Vcpu, type Vm } from "../../hypervisor/kvm/kvm.js";
import { defaultFpu } from "../../hypervisor/kvm/registers.js";
import { UserError } from "../../util/errors.js";
import { DeviceBus } from "../mmio-bus.js";
import { ACPI_SLEEP_PORT, AcpiSleepPort, buildAcpiTables } from "./acpi.js";
import { entryRegs, type LinuxBootInfo, loadLinux, longModeSregs, writeLongModeTables } from "./boot.js";
import type { BzImage } from "./bzimage.js";
import { I8042 } from "./i8042.js";
import { COM1, I8042 as I8042_PORTS, LAYOUT, MiB, ramRegions } from "./memory-map.js";
import { loadPvh, type PvhBootInfo, type PvhKernel, pvhRegs, pvhSregs } from "./pvh.js";
import { X86VirtioSlots } from "./virtio-slots.js";

export interface X86BoardOptions {
  memory: number;
  cpus: number;
  console: ByteSink;
  /** CPU features to hide from the guest (names from hypervisor/kvm/cpuid.ts). */
  removeCpuFeatures?: readonly string[];
  /** The KVM device (default /dev/kvm). */
  device?: string;
  /** Virtqueue formats the virtio devices offer: "packed" (default) adds VIRTIO_F_RING_PACKED. */
  virtioRing?: RingFormat;
}

/** MSRs every vCPU starts with (as Firecracker): syscall/sysenter zeroed, TSC 0, fast strings, WB MTRRs. */
const BOOT_MSRS: MsrEntry[] = [
  { index: 0x174, value: 0n }, // IA32_SYSENTER_CS
  { index: 0x175, value: 0n }, // IA32_SYSENTER_ESP
  { index: 0x176, value: 0n }, // IA32_SYSENTER_EIP
  { index: 0xc0000081, value: 0n }, // STAR
  { index: 0xc0000082, value: 0n }, // LSTAR
  { index: 0xc0000083, value: 0n }, // CSTAR
  { index: 0xc0000084, value: 0n }, // SYSCALL_MASK
  { index: 0xc0000102, value: 0n }, // KERNEL_GS_BASE
  { index: 0x10, value: 0n }, // TSC
  { index: 0x1a0, value: 1n }, // MISC_ENABLE: fast strings
  { index: 0x2ff, value: 0x806n }, // MTRRdefType: enabled, default write-back
];

export const MIN_MEMORY = 4 * MiB;

/**
 * Leaves the in-kernel 8259 pair as firmware does (vector bases 0x08/0x70, every input masked but the
 * cascade). KVM creates them zeroed: unmasked, vector base 0. GSIs below 16 also drive the 8259s, and
 * LINT0 is ExtINT, so a guest that never programs the 8259s (Linux with hardware-reduced ACPI, our test
 * guests) would otherwise take a virtio or COM1 interrupt a second time as vector 4–12, an exception
 * vector. A guest that uses the 8259s initialises them itself (ICW1 resets this state).
 */
function maskLegacyPics(vm: Vm): void {
  for (const [id, base, imr] of [
    [IRQCHIP_ID.PIC_MASTER, 0x08, 0xfb],
    [IRQCHIP_ID.PIC_SLAVE, 0x70, 0xff],
  ] as const) {
    const chip = vm.getIrqchip(id);
    chip[PIC_STATE.imr] = imr;
    chip[PIC_STATE.irqBase] = base;
    vm.setIrqchip(chip);
  }
}

/** A level-triggered line into the in-kernel irqchip; KVM is told only about changes. */
class KvmIrqLine implements InterruptLine {
  private level = false;
  constructor(
    private readonly vm: Vm,
    private readonly gsi: number,
  ) {}
  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    this.vm.irqLine(this.gsi, level);
  }
}

/** A port range whose accesses the board's devices answer. */
export interface PortRange {
  start: number;
  count: number;
}

export class X86MicroVm {
  readonly uart: Uart16550;
  readonly i8042: I8042;
  readonly portBus = new DeviceBus();
  readonly mmioBus = new DeviceBus();
  /** The virtio-mmio slots; attach devices before loading the kernel (the DSDT lists them). */
  readonly virtio: X86VirtioSlots;
  /** Whether virtio interrupts go through irqfd + resample (else KVM_IRQ_LINE). */
  readonly irqfdResample: boolean;
  /** MSRs KVM refused at boot (index list), for diagnostics. */
  readonly rejectedMsrs: number[] = [];
  /** The ports of COM1, the i8042 and the ACPI sleep port; every other port is answered where it exits. */
  readonly forwardedPorts: readonly PortRange[] = [
    { start: COM1.port, count: COM1.size },
    { start: I8042_PORTS.dataPort, count: 1 },
    { start: I8042_PORTS.commandPort, count: 1 },
    { start: ACPI_SLEEP_PORT, count: 1 },
  ];
  /** The guest asked to power off or reboot; the engine running the board replaces this. */
  onGuestEvent: (event: "poweroff" | "reboot") => void = () => {};
  private readonly pendingInput: number[] = [];
  private readonly scratch = new Uint32Array(2);
  private closed = false;

  private constructor(
    readonly kvm: Kvm,
    readonly vm: Vm,
    readonly ram: GuestRam,
    readonly vcpus: readonly Vcpu[],
    readonly options: X86BoardOptions,
  ) {
    this.uart = new Uart16550(new KvmIrqLine(vm, COM1.irq), options.console);
    this.i8042 = new I8042(new KvmIrqLine(vm, I8042_PORTS.irq), () => this.onGuestEvent("reboot"));
    this.portBus.map(COM1.port, COM1.size, this.uart);
    this.portBus.map(I8042_PORTS.dataPort, 5, this.i8042);
    this.portBus.map(ACPI_SLEEP_PORT, 1, new AcpiSleepPort(() => this.onGuestEvent("poweroff")));
    this.irqfdResample = kvm.checkExtension(CAP.IRQFD_RESAMPLE) > 0;
    // Devices reach the RAM below the MMIO hole (region 0, one view: it is at most 3 GiB).
    const lowRam = ram.memoryAt(0) as GuestMemory;
    this.virtio = new X86VirtioSlots(
      vm,
      this.mmioBus,
      lowRam,
      (gsi) => (this.irqfdResample ? new IrqfdLine(vm, gsi) : new KvmIrqLine(vm, gsi)),
      options.virtioRing,
    );
  }

  /** Opens KVM and builds the VM: memory, interrupt controllers, vCPUs with CPUID, MSRs and LAPIC set up. */
  static create(options: X86BoardOptions): X86MicroVm {
    const { memory, cpus } = options;
    if (memory < MIN_MEMORY || memory % 4096 !== 0) {
      throw new UserError("--memory must be at least 4M and a multiple of 4K");
    }
    const kvm = Kvm.open(options.device);
    let vm: Vm | null = null;
    let ram: GuestRam | null = null;
    try {
      const max = kvm.maxVcpus();
      if (cpus > max) throw new UserError(`--cpus ${cpus}: this host's KVM allows at most ${max}`);
      vm = kvm.createVm();
      vm.setTssAddress(LAYOUT.tss);
      vm.createIrqchip();
      maskLegacyPics(vm);
      vm.createPit2();
      ram = new GuestRam(ramRegions(memory));
      ram.register(vm);
      const vcpus: Vcpu[] = [];
      for (let i = 0; i < cpus; i++) vcpus.push(vm.createVcpu(i));
      const board = new X86MicroVm(kvm, vm, ram, vcpus, options);
      board.setUpVcpus();
      return board;
    } catch (e) {
      vm?.close();
      ram?.release();
      kvm.close();
      throw e;
    }
  }

  private setUpVcpus(): void {
    const supported = this.kvm.supportedCpuid();
    const tscDeadline = this.kvm.checkExtension(CAP.TSC_DEADLINE_TIMER) > 0;
    for (const vcpu of this.vcpus) {
      vcpu.setCpuid(
        normalizeCpuid(supported, {
          apicId: vcpu.id,
          cpus: this.vcpus.length,
          remove: this.options.removeCpuFeatures ?? [],
          tscDeadline,
        }),
      );
      this.setBootMsrs(vcpu);
      const lapic = vcpu.getLapic();
      const v = new DataView(lapic.buffer);
      // LINT0 = ExtINT (the PIC's output), LINT1 = NMI, as a BIOS leaves them.
      v.setUint32(LAPIC.lvtLint0, (v.getUint32(LAPIC.lvtLint0, true) & ~0x700) | 0x700, true);
      v.setUint32(LAPIC.lvtLint1, (v.getUint32(LAPIC.lvtLint1, true) & ~0x700) | 0x400, true);
      vcpu.setLapic(lapic);
      vcpu.setFpu(defaultFpu());
    }
  }

  /** Sets the boot MSRs, skipping (and remembering) any this host's KVM rejects. */
  private setBootMsrs(vcpu: Vcpu): void {
    let list = BOOT_MSRS;
    while (list.length > 0) {
      const n = vcpu.setMsrs(list);
      if (n >= list.length) break;
      const rejected = list[n] as MsrEntry;
      if (!this.rejectedMsrs.includes(rejected.index)) this.rejectedMsrs.push(rejected.index);
      list = list.slice(n + 1);
    }
  }

  /**
   * Loads a bzImage (with optional initrd and command line) through the 64-bit boot protocol and points
   * the boot vCPU at its entry; the others wait for INIT/SIPI from the guest.
   */
  loadLinux(image: BzImage, initrd: Uint8Array | null, cmdline: string): LinuxBootInfo {
    const rsdp = this.buildAcpiTables();
    const info = loadLinux(this.ram, {
      image,
      initrd,
      cmdline: this.kernelCommandLine(cmdline),
      regions: this.ram.regions,
      rsdp,
    });
    this.enterLongMode(info.entry);
    return info;
  }

  /**
   * Loads an uncompressed ELF kernel through its PVH entry: 32-bit protected mode, paging off,
   * %ebx = hvm_start_info.
   */
  loadPvh(kernel: PvhKernel, initrd: Uint8Array | null, cmdline: string): PvhBootInfo {
    const rsdp = this.buildAcpiTables();
    const info = loadPvh(this.ram, {
      kernel,
      initrd,
      cmdline: this.kernelCommandLine(cmdline),
      regions: this.ram.regions,
      rsdp,
    });
    writeLongModeTables(this.ram);
    const bsp = this.vcpus[0] as Vcpu;
    bsp.setSregs(pvhSregs(bsp.getSregs()));
    bsp.setRegs(pvhRegs(bsp.getRegs(), info.entry, info.startInfo));
    return info;
  }

  /** Writes the ACPI tables (CPUs, and the virtio devices attached so far) and returns the RSDP's address. */
  buildAcpiTables(): number {
    return buildAcpiTables(this.ram, { cpus: this.vcpus.length, virtio: this.virtio.acpiDevices() });
  }

  /** `cmdline` with the virtio devices appended as `virtio_mmio.device=` parameters. */
  kernelCommandLine(cmdline: string): string {
    const devices = this.virtio.commandLine();
    return devices === "" ? cmdline : cmdline === "" ? devices : `${cmdline} ${devices}`;
  }

  /** Starts the boot vCPU in long mode at `entry` with the boot GDT, page tables and stack. */
  enterLongMode(entry: number): void {
    writeLongModeTables(this.ram);
    const bsp = this.vcpus[0] as Vcpu;
    bsp.setSregs(longModeSregs(bsp.getSregs()));
    bsp.setRegs(entryRegs(bsp.getRegs(), entry));
  }

  /** Host keyboard input for the console UART; what does not fit waits for the guest to read. */
  consoleInput(bytes: Uint8Array): void {
    for (const b of bytes) this.pendingInput.push(b);
    this.feedUart();
  }

  private feedUart(): void {
    const room = Math.min(this.uart.canReceive(), this.pendingInput.length);
    if (room > 0) this.uart.receive(Uint8Array.from(this.pendingInput.splice(0, room)));
  }

  portIo(_vcpu: number, port: number, write: boolean, data: Uint8Array): void {
    const size = data.length;
    if (write) {
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = value * 256 + (data[i] as number);
      this.portBus.write(port, size, value >>> 0, 0);
    } else {
      const out = this.scratch;
      if (this.portBus.read(port, size, out)) {
        const value = out[0] as number;
        for (let i = 0; i < size; i++) data[i] = (value >>> (8 * i)) & 0xff;
      } else {
        data.fill(0xff);
      }
    }
    if (this.pendingInput.length > 0 && port >= COM1.port && port < COM1.port + COM1.size) this.feedUart();
  }

  mmio(_vcpu: number, address: number, write: boolean, data: Uint8Array): void {
    const size = data.length;
    if (write) {
      let lo = 0;
      let hi = 0;
      for (let i = Math.min(size, 4) - 1; i >= 0; i--) lo = lo * 256 + (data[i] as number);
      for (let i = size - 1; i >= 4; i--) hi = hi * 256 + (data[i] as number);
      this.mmioBus.write(address, size, lo >>> 0, hi >>> 0);
    } else {
      const out = this.scratch;
      if (this.mmioBus.read(address, size, out)) {
        for (let i = 0; i < size; i++) {
          data[i] = ((i < 4 ? (out[0] as number) : (out[1] as number)) >>> (8 * (i % 4))) & 0xff;
        }
      } else {
        data.fill(0xff);
      }
    }
  }

  /** Releases the VM, its fds and its RAM. Only once no engine runs it (no vCPU thread left). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.virtio.close();
    this.vm.close();
    this.kvm.close();
    this.ram.release();
  }
}
