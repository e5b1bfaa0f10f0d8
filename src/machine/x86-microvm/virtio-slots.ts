/**
 * The x86 microVM board's virtio-mmio slots on KVM: the same transport and device classes as the RISC-V
 * board, with the two hot paths kept inside the kernel.
 *
 * - Doorbells: each queue's QueueNotify write (the queue index, 4 bytes at window + 0x50) is a
 *   KVM_IOEVENTFD with that index as datamatch, so the vCPU never leaves the guest for it; the eventfd
 *   is polled on the main thread's event loop, which drains it and notifies the transport. A write of
 *   any other value still exits and reaches the transport like every other register access
 *   (KVM_EXIT_MMIO, forwarded to the main thread by the vCPU worker).
 * - Interrupts: the transport's level-triggered line drives an irqfd with a resample eventfd
 *   (hypervisor/kvm/eventfd.ts) on GSI firstGsi + slot; without KVM_CAP_IRQFD_RESAMPLE the board passes
 *   a KVM_IRQ_LINE line instead.
 *
 * Devices see guest RAM through `memory`: the RAM below the 3–4 GiB hole (bounds-checked; buffers in
 * RAM above 4 GiB are outside it, so such requests fail as the queue code fails any buffer outside RAM).
 */
import type { GuestMemory, InterruptLine, MmioDevice } from "../../devices/device.js";
import type { VirtioDevice } from "../../devices/virtio/device.js";
import { MmioReg, VirtioMmio } from "../../devices/virtio/mmio.js";
import type { RingFormat } from "../../devices/virtio/queue.js";
import { EventFd } from "../../hypervisor/kvm/eventfd.js";
import type { Vm } from "../../hypervisor/kvm/kvm.js";
import type { DeviceBus } from "../mmio-bus.js";
import type { AcpiVirtioDevice } from "./acpi.js";
import { VIRTIO_MMIO } from "./memory-map.js";

export interface VirtioSlotCounters {
  /** Register accesses that reached the transport as KVM_EXIT_MMIO (reads and writes). */
  mmioExits: number;
  /** Of those, writes to QueueNotify: doorbells no ioeventfd matched (should stay 0). */
  notifyExits: number;
  /** Doorbells that came through the ioeventfds (summed eventfd counts). */
  ioeventfd: number;
  /** Interrupt assertions through the irqfd, and resample notifications (0 with KVM_IRQ_LINE). */
  irqfd: number;
  resamples: number;
}

/** An interrupt line the board hands a slot; `counters` when it is an irqfd. */
export interface SlotInterruptLine extends InterruptLine {
  readonly counters?: { signals: number; resamples: number };
  close?(): void;
}

export interface X86VirtioSlot {
  index: number;
  base: number;
  gsi: number;
  transport: VirtioMmio;
}

interface Slot extends X86VirtioSlot {
  line: SlotInterruptLine;
  doorbells: EventFd[];
  counters: Omit<VirtioSlotCounters, "irqfd" | "resamples">;
}

/** The transport's window as the board's bus sees it: counts the accesses that arrive as exits. */
class CountedWindow implements MmioDevice {
  readonly name: string;
  constructor(
    private readonly slot: Slot,
    private readonly transport: VirtioMmio,
  ) {
    this.name = transport.name;
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    this.slot.counters.mmioExits++;
    return this.transport.read(offset, size, out);
  }

  write(offset: number, size: number, lo: number, hi: number): boolean {
    this.slot.counters.mmioExits++;
    if (offset === MmioReg.QUEUE_NOTIFY) this.slot.counters.notifyExits++;
    return this.transport.write(offset, size, lo, hi);
  }
}

export class X86VirtioSlots {
  private readonly slots: (Slot | null)[] = new Array(VIRTIO_MMIO.slots).fill(null);
  private closed = false;

  constructor(
    private readonly vm: Vm,
    private readonly bus: DeviceBus,
    /** The guest RAM devices see (the region below the MMIO hole). */
    readonly memory: GuestMemory,
    private readonly lineFor: (gsi: number) => SlotInterruptLine,
    /** Ring formats the transports offer (see VirtioMmioOptions; undefined: the transport's default). */
    private readonly ring?: RingFormat,
  ) {}

  /** Puts `device` in the first free slot (or in `slot`) and returns its transport. Before the guest runs. */
  attach(device: VirtioDevice, slot?: number): VirtioMmio {
    if (this.closed) throw new Error("the board is closed");
    const index = slot ?? this.slots.indexOf(null);
    if (index < 0) throw new RangeError(`all ${VIRTIO_MMIO.slots} virtio slots are in use`);
    if (!Number.isInteger(index) || index >= VIRTIO_MMIO.slots) {
      throw new RangeError(`virtio slot ${index} does not exist (0..${VIRTIO_MMIO.slots - 1})`);
    }
    if (this.slots[index] !== null) throw new RangeError(`virtio slot ${index} is already in use`);
    const base = VIRTIO_MMIO.base + index * VIRTIO_MMIO.size;
    const gsi = VIRTIO_MMIO.firstGsi + index;
    const line = this.lineFor(gsi);
    const doorbells: EventFd[] = [];
    try {
      const transport = new VirtioMmio(
        device,
        this.memory,
        line,
        this.ring === undefined ? {} : { ring: this.ring },
      );
      const s: Slot = {
        index,
        base,
        gsi,
        transport,
        line,
        doorbells,
        counters: { mmioExits: 0, notifyExits: 0, ioeventfd: 0 },
      };
      device.queueSizes.forEach((_, queue) => {
        const doorbell = new EventFd();
        doorbells.push(doorbell);
        this.vm.ioeventfd(doorbell.fd, base + MmioReg.QUEUE_NOTIFY, 4, { match: BigInt(queue) });
        doorbell.onSignals((count) => {
          if (this.closed) return;
          s.counters.ioeventfd += count;
          transport.write(MmioReg.QUEUE_NOTIFY, 4, queue, 0);
        });
      });
      this.bus.map(base, VIRTIO_MMIO.size, new CountedWindow(s, transport));
      this.slots[index] = s;
      return transport;
    } catch (e) {
      for (const d of doorbells) d.close();
      line.close?.();
      throw e;
    }
  }

  /** Slots that hold a device, in slot order. */
  used(): X86VirtioSlot[] {
    return this.slots.filter((s): s is Slot => s !== null);
  }

  /** The DSDT's view of the used slots. */
  acpiDevices(): AcpiVirtioDevice[] {
    return this.used().map((s) => ({ base: s.base, size: VIRTIO_MMIO.size, gsi: s.gsi }));
  }

  /**
   * The same devices for kernels built with VIRTIO_MMIO_CMDLINE_DEVICES: `virtio_mmio.device=4K@BASE:GSI`
   * per used slot ("" without devices).
   */
  commandLine(): string {
    return this.used()
      .map((s) => `virtio_mmio.device=${VIRTIO_MMIO.size / 1024}K@0x${s.base.toString(16)}:${s.gsi}`)
      .join(" ");
  }

  /** The first attached device of class `type`. */
  find<T extends VirtioDevice>(type: abstract new (...args: never[]) => T): T | null {
    for (const s of this.slots)
      if (s !== null && s.transport.device instanceof type) return s.transport.device;
    return null;
  }

  /** The transport in `slot`, or null. */
  at(slot: number): VirtioMmio | null {
    return this.slots[slot]?.transport ?? null;
  }

  counters(slot: number): VirtioSlotCounters | null {
    const s = this.slots[slot];
    if (s === null || s === undefined) return null;
    return {
      ...s.counters,
      irqfd: s.line.counters?.signals ?? 0,
      resamples: s.line.counters?.resamples ?? 0,
    };
  }

  /** Stops the event-loop watches and closes the eventfds; only after the vCPUs have stopped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) {
      if (s === null) continue;
      for (const d of s.doorbells) d.close();
      s.line.close?.();
    }
  }
}
