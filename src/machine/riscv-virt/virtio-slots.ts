import type { GuestMemory } from "../../devices/device.js";
import type { Plic } from "../../devices/plic/plic.js";
import type { VirtioDevice } from "../../devices/virtio/device.js";
import { VirtioMmio } from "../../devices/virtio/mmio.js";
import type { RingFormat } from "../../devices/virtio/queue.js";
import type { DeviceBus } from "../mmio-bus.js";
import { VIRT_IRQ, VIRT_MAP, VIRTIO_SLOTS } from "./memory-map.js";

/**
 * The virt board's eight virtio-mmio slots: slot i is the 4 KiB window at VIRT_MAP.virtio.base +
 * i * 0x1000 and raises PLIC source VIRT_IRQ.VIRTIO_FIRST + i. Devices are attached before boot; the
 * device tree lists the slots in use (`used()`), and Linux probes them in address order, so the first
 * block device attached becomes /dev/vda.
 */
export class VirtioSlots {
  private readonly slots: (VirtioMmio | null)[] = new Array(VIRTIO_SLOTS).fill(null);

  constructor(
    private readonly bus: DeviceBus,
    private readonly plic: Plic,
    /** The guest RAM the devices see. */
    readonly memory: GuestMemory,
    /** Ring formats the transports offer (see VirtioMmioOptions; undefined: the transport's default). */
    private readonly ring: RingFormat | undefined,
    /** Called when a device raises its interrupt (the board ends the slice and wakes the engine). */
    private readonly onInterrupt: () => void,
  ) {}

  /** Puts `device` in the first free slot (or in `slot`) and returns its transport. */
  attach(device: VirtioDevice, slot?: number): VirtioMmio {
    const index = slot ?? this.slots.indexOf(null);
    if (index < 0) throw new RangeError(`all ${VIRTIO_SLOTS} virtio slots are in use`);
    if (!Number.isInteger(index) || index >= VIRTIO_SLOTS) {
      throw new RangeError(`virtio slot ${index} does not exist (0..${VIRTIO_SLOTS - 1})`);
    }
    if (this.slots[index] !== null) throw new RangeError(`virtio slot ${index} is already in use`);
    const input = this.plic.line(VIRT_IRQ.VIRTIO_FIRST + index);
    const line = {
      set: (level: boolean) => {
        input.set(level);
        if (level) this.onInterrupt();
      },
    };
    const transport = new VirtioMmio(
      device,
      this.memory,
      line,
      this.ring === undefined ? {} : { ring: this.ring },
    );
    this.bus.map(VIRT_MAP.virtio.base + index * VIRT_MAP.virtio.size, VIRT_MAP.virtio.size, transport);
    this.slots[index] = transport;
    return transport;
  }

  /** Slots that hold a device, in order (for the device tree). */
  used(): number[] {
    const used: number[] = [];
    this.slots.forEach((t, i) => {
      if (t !== null) used.push(i);
    });
    return used;
  }

  /** The first attached device of class `type` (the host reaches devices such as the balloon with it). */
  find<T extends VirtioDevice>(type: abstract new (...args: never[]) => T): T | null {
    for (const t of this.slots) if (t !== null && t.device instanceof type) return t.device;
    return null;
  }

  /** The transport in `slot`, or null. */
  at(slot: number): VirtioMmio | null {
    return this.slots[slot] ?? null;
  }
}
