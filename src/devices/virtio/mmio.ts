import type { GuestMemory, InterruptLine, MmioDevice } from "../device.js";
import type { VirtioDevice, VirtioHost } from "./device.js";
import { QueueSlot, type QueueState, type RingFormat, type Virtqueue } from "./queue.js";
import { Feature, featureMask, featureWord, featureWords, Interrupt, Status } from "./spec.js";

/** Register offsets of the virtio-mmio transport, version 2 (virtio 1.2 §4.2.2). */
export const MmioReg = {
  MAGIC: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_SIZE_MAX: 0x034,
  QUEUE_SIZE: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  QUEUE_RESET: 0x0c0,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

export const VIRTIO_MMIO_MAGIC = 0x7472_6976;
/** Our vendor ID: "VIRE" little-endian (drivers do not look at it). */
export const VIRTIO_MMIO_VENDOR = 0x4552_4956;
/** The register window each virtio-mmio device occupies. */
export const VIRTIO_MMIO_SIZE = 0x1000;

/** Transport feature bits every device offers. */
const TRANSPORT_FEATURES = [
  Feature.VERSION_1,
  Feature.RING_INDIRECT_DESC,
  Feature.RING_EVENT_IDX,
  Feature.RING_RESET,
];

/**
 * Ring formats a transport offers: "packed" offers VIRTIO_F_RING_PACKED as well (the driver still
 * chooses; split is always there), "split" does not.
 */
export const DEFAULT_VIRTIO_RING: RingFormat = "packed";

export interface VirtioMmioOptions {
  /** "packed" (the default) offers VIRTIO_F_RING_PACKED unless the device opts out; "split" does not. */
  ring?: RingFormat;
}

/** The transport's state as plain data (see `snapshot`). */
export interface VirtioMmioState {
  version: 1;
  deviceId: number;
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: number[];
  strayFeatures: boolean;
  queueSel: number;
  interruptStatus: number;
  configGeneration: number;
  queues: QueueState[];
  device: unknown;
}

/**
 * A virtio device behind the virtio-mmio transport, version 2 only ("modern"): identification,
 * feature negotiation (FEATURES_OK is refused unless the driver accepted VERSION_1 and only offered
 * bits), queue setup through QueueSel, notification, the interrupt status/ack pair driving one
 * level-triggered line, device status with reset, ConfigGeneration, QueueReset, no shared memory
 * regions, and the device's config space from 0x100. Queues are split or packed rings: the format is
 * fixed when the driver sets FEATURES_OK (packed if it accepted VIRTIO_F_RING_PACKED). Control registers take aligned 32-bit accesses
 * only (anything else is a bus error); the config space takes 1/2/4/8-byte accesses.
 *
 * Whatever the driver writes, the device stays up: a broken queue or a request the device cannot fail
 * sets DEVICE_NEEDS_RESET, raises a configuration change interrupt (once DRIVER_OK is set) and stops
 * that queue until the driver resets the device or the queue.
 */
export class VirtioMmio implements MmioDevice, VirtioHost {
  readonly name: string;
  /** Offered features, 32-bit words. */
  readonly deviceFeatures: readonly number[];
  /** The reason of the last DEVICE_NEEDS_RESET, for diagnostics (null after reset). */
  lastFault: string | null = null;
  /** The driver's queue notifications taken, and the interrupts raised (the line going up). */
  readonly counters = { notifications: 0, interrupts: 0 };
  /** The queues in use (each slot's current format). */
  private readonly queues: Virtqueue[];
  private readonly slots: QueueSlot[];
  private readonly driverFeatures = [0, 0];
  /** The driver set bits in a feature word beyond 63 (none is offered): FEATURES_OK is refused. */
  private strayFeatures = false;
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private lineLevel = false;

  constructor(
    readonly device: VirtioDevice,
    readonly memory: GuestMemory,
    private readonly line: InterruptLine,
    options: VirtioMmioOptions = {},
  ) {
    this.name = `virtio-mmio(${device.name})`;
    const packed = (options.ring ?? DEFAULT_VIRTIO_RING) === "packed" && device.packedRing !== false;
    const words = featureWords(...TRANSPORT_FEATURES, ...(packed ? [Feature.RING_PACKED] : []));
    device.features.forEach((w, i) => {
      if (i < 2) words[i] = ((words[i] as number) | w) >>> 0;
    });
    this.deviceFeatures = words;
    this.slots = device.queueSizes.map((max, i) => {
      const slot = new QueueSlot(memory, i, max);
      slot.current.onFault = (queue, reason) => this.deviceError(`queue ${queue.index}: ${reason}`);
      return slot;
    });
    this.queues = this.slots.map((slot) => slot.current);
    device.attach(this);
    this.line.set(false);
  }

  // --- VirtioHost ---

  queue(index: number): Virtqueue {
    const q = this.queues[index];
    if (q === undefined) throw new RangeError(`${this.device.name} has no queue ${index}`);
    return q;
  }

  hasFeature(bit: number): boolean {
    const w = this.driverFeatures[featureWord(bit)];
    return w !== undefined && (w & featureMask(bit)) !== 0;
  }

  get active(): boolean {
    return (this.status & Status.DRIVER_OK) !== 0;
  }

  signalUsed(index: number): void {
    const q = this.queues[index];
    if (q !== undefined && this.active && q.needsInterrupt()) this.raise(Interrupt.USED_BUFFER);
  }

  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.active) this.raise(Interrupt.CONFIG_CHANGE);
  }

  fail(index: number, reason: string): void {
    const q = this.queues[index];
    if (q !== undefined && q.fault === null) q.fail(reason);
    else this.deviceError(`queue ${index}: ${reason}`);
  }

  // --- registers ---

  read(offset: number, size: number, out: Uint32Array): boolean {
    out[1] = 0;
    if (offset >= MmioReg.CONFIG) return this.readConfig(offset - MmioReg.CONFIG, size, out);
    if (size !== 4 || (offset & 3) !== 0 || offset < 0) return false;
    out[0] = this.readRegister(offset);
    return true;
  }

  write(offset: number, size: number, lo: number, hi = 0): boolean {
    if (offset >= MmioReg.CONFIG) return this.writeConfig(offset - MmioReg.CONFIG, size, lo, hi);
    if (size !== 4 || (offset & 3) !== 0 || offset < 0) return false;
    this.writeRegister(offset, lo >>> 0);
    return true;
  }

  private readRegister(offset: number): number {
    const q = this.queues[this.queueSel];
    switch (offset) {
      case MmioReg.MAGIC:
        return VIRTIO_MMIO_MAGIC;
      case MmioReg.VERSION:
        return 2;
      case MmioReg.DEVICE_ID:
        return this.device.deviceId;
      case MmioReg.VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
      case MmioReg.DEVICE_FEATURES:
        return this.deviceFeatures[this.deviceFeaturesSel] ?? 0;
      case MmioReg.QUEUE_SIZE_MAX:
        return q?.maxSize ?? 0;
      case MmioReg.QUEUE_SIZE:
        return q?.size ?? 0;
      case MmioReg.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case MmioReg.INTERRUPT_STATUS:
        return this.interruptStatus;
      case MmioReg.STATUS:
        return this.status;
      case MmioReg.QUEUE_DESC_LOW:
        return q?.descLo ?? 0;
      case MmioReg.QUEUE_DESC_HIGH:
        return q?.descHi ?? 0;
      case MmioReg.QUEUE_DRIVER_LOW:
        return q?.driverLo ?? 0;
      case MmioReg.QUEUE_DRIVER_HIGH:
        return q?.driverHi ?? 0;
      case MmioReg.QUEUE_DEVICE_LOW:
        return q?.deviceLo ?? 0;
      case MmioReg.QUEUE_DEVICE_HIGH:
        return q?.deviceHi ?? 0;
      // No shared memory regions: every SHMSel reads length -1 and base ~0.
      case MmioReg.SHM_LEN_LOW:
      case MmioReg.SHM_LEN_HIGH:
      case MmioReg.SHM_BASE_LOW:
      case MmioReg.SHM_BASE_HIGH:
        return 0xffff_ffff;
      // Queue resets complete at once.
      case MmioReg.QUEUE_RESET:
        return 0;
      case MmioReg.CONFIG_GENERATION:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  private writeRegister(offset: number, value: number): void {
    const q = this.queues[this.queueSel];
    // Queue registers are frozen while the queue is enabled (§4.2.2: the driver must not write them).
    const setup = q !== undefined && !q.ready ? q : undefined;
    switch (offset) {
      case MmioReg.DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = value;
        return;
      case MmioReg.DRIVER_FEATURES:
        if ((this.status & Status.FEATURES_OK) !== 0) return;
        if (this.driverFeaturesSel < this.driverFeatures.length)
          this.driverFeatures[this.driverFeaturesSel] = value;
        else if (value !== 0) this.strayFeatures = true;
        return;
      case MmioReg.DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = value;
        return;
      case MmioReg.QUEUE_SEL:
        this.queueSel = value;
        return;
      case MmioReg.QUEUE_SIZE:
        if (setup) setup.size = value;
        return;
      case MmioReg.QUEUE_READY:
        if (q !== undefined) this.setQueueReady(q.index, (value & 1) === 1);
        return;
      case MmioReg.QUEUE_NOTIFY:
        this.notify(value & 0xffff);
        return;
      case MmioReg.INTERRUPT_ACK:
        this.interruptStatus &= ~value;
        this.updateLine();
        return;
      case MmioReg.STATUS:
        this.writeStatus(value & 0xff);
        return;
      case MmioReg.QUEUE_DESC_LOW:
        if (setup) setup.descLo = value;
        return;
      case MmioReg.QUEUE_DESC_HIGH:
        if (setup) setup.descHi = value;
        return;
      case MmioReg.QUEUE_DRIVER_LOW:
        if (setup) setup.driverLo = value;
        return;
      case MmioReg.QUEUE_DRIVER_HIGH:
        if (setup) setup.driverHi = value;
        return;
      case MmioReg.QUEUE_DEVICE_LOW:
        if (setup) setup.deviceLo = value;
        return;
      case MmioReg.QUEUE_DEVICE_HIGH:
        if (setup) setup.deviceHi = value;
        return;
      case MmioReg.QUEUE_RESET:
        if (q !== undefined && value === 1 && this.hasFeature(Feature.RING_RESET)) {
          q.reset();
          this.syncRingFeatures(q);
          this.device.queueReset?.(q.index);
        }
        return;
      default:
        // Read-only and unknown registers (legacy GuestPageSize, QueueAlign, QueuePFN, SHMSel) ignore writes.
        return;
    }
  }

  private readConfig(offset: number, size: number, out: Uint32Array): boolean {
    if (!configAccess(size)) return false;
    const dev = this.device;
    if (offset + size > dev.configSize) {
      out[0] = 0;
      return true;
    }
    if (size === 8) {
      out[0] = dev.readConfig(offset, 4);
      out[1] = dev.readConfig(offset + 4, 4);
    } else out[0] = dev.readConfig(offset, size);
    return true;
  }

  private writeConfig(offset: number, size: number, lo: number, hi: number): boolean {
    if (!configAccess(size)) return false;
    const dev = this.device;
    if (offset + size > dev.configSize) return true;
    if (size === 8) {
      dev.writeConfig(offset, 4, lo >>> 0);
      dev.writeConfig(offset + 4, 4, hi >>> 0);
    } else dev.writeConfig(offset, size, size === 4 ? lo >>> 0 : lo & ((1 << (8 * size)) - 1));
    return true;
  }

  private setQueueReady(index: number, ready: boolean): void {
    const q = this.queues[index] as Virtqueue;
    if (ready === q.ready) return;
    if (!ready) {
      q.disable();
      return;
    }
    // Set up as the driver's features say (final at FEATURES_OK, which a conforming driver set first).
    this.selectRings(this.ringFormat(this.driverFeatures));
    const current = this.queues[index] as Virtqueue;
    this.syncRingFeatures(current);
    if (current.enable() && this.active) this.device.notify(index);
  }

  private notify(index: number): void {
    const q = this.queues[index];
    this.counters.notifications++;
    if (q?.usable && this.active) this.device.notify(index);
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    // The driver only adds bits; DEVICE_NEEDS_RESET is the device's and survives until reset.
    let next = old | (value & ~Status.DEVICE_NEEDS_RESET);
    const added = next & ~old;
    if ((added & Status.FEATURES_OK) !== 0 && !this.featuresAcceptable()) next &= ~Status.FEATURES_OK;
    if ((added & Status.DRIVER_OK) !== 0 && (next & Status.FEATURES_OK) === 0) next &= ~Status.DRIVER_OK;
    this.status = next;
    // Features are final: the queues take the negotiated ring format.
    if ((next & ~old & Status.FEATURES_OK) !== 0) this.selectRings(this.ringFormat(this.driverFeatures));
    if ((next & ~old & Status.DRIVER_OK) !== 0) {
      for (const q of this.queues) this.syncRingFeatures(q);
      this.device.activate();
    }
  }

  /** The driver's feature set can be accepted: only offered bits, VERSION_1 included (modern only). */
  private featuresAcceptable(): boolean {
    if (this.strayFeatures) return false;
    for (let w = 0; w < this.driverFeatures.length; w++) {
      if (((this.driverFeatures[w] as number) & ~(this.deviceFeatures[w] ?? 0)) !== 0) return false;
    }
    return this.hasFeature(Feature.VERSION_1);
  }

  private syncRingFeatures(q: Virtqueue): void {
    q.eventIdx = this.hasFeature(Feature.RING_EVENT_IDX);
    q.indirect = this.hasFeature(Feature.RING_INDIRECT_DESC);
  }

  /** The ring format driver feature words call for: packed if they include an offered RING_PACKED. */
  private ringFormat(words: readonly number[]): RingFormat {
    const w = featureWord(Feature.RING_PACKED);
    const offered = (this.deviceFeatures[w] ?? 0) & (words[w] ?? 0);
    return (offered & featureMask(Feature.RING_PACKED)) !== 0 ? "packed" : "split";
  }

  private selectRings(format: RingFormat): void {
    this.slots.forEach((slot, i) => {
      this.queues[i] = slot.select(format);
    });
  }

  /** Device reset: status 0, features, selectors, interrupts and every queue back to reset values. */
  reset(): void {
    this.status = 0;
    this.driverFeatures.fill(0);
    this.strayFeatures = false;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.interruptStatus = 0;
    this.lastFault = null;
    for (const q of this.queues) q.reset();
    this.selectRings("split");
    this.device.reset();
    this.updateLine();
  }

  private deviceError(reason: string): void {
    this.lastFault = reason;
    const wasSet = (this.status & Status.DEVICE_NEEDS_RESET) !== 0;
    this.status |= Status.DEVICE_NEEDS_RESET;
    if (!wasSet && this.active) this.raise(Interrupt.CONFIG_CHANGE);
  }

  private raise(bits: number): void {
    this.interruptStatus |= bits;
    this.updateLine();
  }

  private updateLine(): void {
    const level = this.interruptStatus !== 0;
    if (level !== this.lineLevel) {
      this.lineLevel = level;
      if (level) this.counters.interrupts++;
      this.line.set(level);
    }
  }

  // --- snapshots ---

  snapshot(): VirtioMmioState {
    return {
      version: 1,
      deviceId: this.device.deviceId,
      status: this.status,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      driverFeatures: this.driverFeatures.slice(),
      strayFeatures: this.strayFeatures,
      queueSel: this.queueSel,
      interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration,
      queues: this.queues.map((q) => q.snapshot()),
      device: this.device.snapshot(),
    };
  }

  /**
   * Restores a `snapshot()` of the same kind of device, with guest RAM already restored (held chains
   * are walked again from it). Throws (a TypeError/RangeError) if the state is malformed: before
   * changing anything for the transport's and queues' part, from the device's own restore for its part.
   */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || Array.isArray(state)) {
      throw new TypeError("virtio-mmio snapshot: not an object");
    }
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-mmio snapshot: unsupported version");
    if (s.deviceId !== this.device.deviceId)
      throw new RangeError("virtio-mmio snapshot: another device type");
    const u32 = (key: string): number => {
      const v = s[key];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
        throw new RangeError(`virtio-mmio snapshot: ${key} must be a 32-bit integer`);
      }
      return v;
    };
    const status = u32("status");
    const interruptStatus = u32("interruptStatus");
    if (status > 0xff || interruptStatus > 3) throw new RangeError("virtio-mmio snapshot: bad status bits");
    const features = s.driverFeatures;
    if (
      !Array.isArray(features) ||
      features.length !== 2 ||
      !features.every((w) => typeof w === "number" && Number.isInteger(w) && w >= 0 && w <= 0xffff_ffff)
    ) {
      throw new RangeError("virtio-mmio snapshot: driverFeatures must be two 32-bit words");
    }
    if (typeof s.strayFeatures !== "boolean")
      throw new TypeError("virtio-mmio snapshot: strayFeatures must be a boolean");
    const queues = s.queues;
    if (!Array.isArray(queues) || queues.length !== this.queues.length) {
      throw new RangeError("virtio-mmio snapshot: wrong number of queues");
    }
    const fields = {
      deviceFeaturesSel: u32("deviceFeaturesSel"),
      driverFeaturesSel: u32("driverFeaturesSel"),
      queueSel: u32("queueSel"),
      configGeneration: u32("configGeneration"),
    };
    // The queues' format is their states' (all alike); it must be what the features allow, and once
    // FEATURES_OK is set, what they call for.
    const formats = new Set(
      queues.map((q) => ((q as { format?: unknown })?.format === "packed" ? "packed" : "split")),
    );
    const format: RingFormat = formats.has("packed") ? "packed" : "split";
    const negotiated = this.ringFormat(features as number[]);
    if (
      formats.size > 1 ||
      (format === "packed" && negotiated !== "packed") ||
      ((status & Status.FEATURES_OK) !== 0 && format !== negotiated)
    ) {
      throw new RangeError("virtio-mmio snapshot: queue ring formats do not match the features");
    }
    // Check every queue state before changing anything: restore into scratch queues first.
    this.slots.forEach((slot, i) => {
      slot.scratch(format).restore(queues[i]);
    });
    this.status = status;
    this.driverFeatures[0] = features[0] as number;
    this.driverFeatures[1] = features[1] as number;
    this.strayFeatures = s.strayFeatures;
    this.deviceFeaturesSel = fields.deviceFeaturesSel;
    this.driverFeaturesSel = fields.driverFeaturesSel;
    this.queueSel = fields.queueSel;
    this.configGeneration = fields.configGeneration;
    this.interruptStatus = interruptStatus;
    this.lastFault = null;
    this.selectRings(format);
    this.queues.forEach((q, i) => {
      this.syncRingFeatures(q);
      const onFault = q.onFault;
      q.onFault = () => {};
      q.restore(queues[i]);
      q.onFault = onFault;
      if (q.fault !== null) {
        this.lastFault = `queue ${i}: ${q.fault}`;
        this.status |= Status.DEVICE_NEEDS_RESET;
      }
    });
    this.device.restore(s.device);
    this.lineLevel = interruptStatus !== 0;
    this.line.set(this.lineLevel);
  }
}

function configAccess(size: number): boolean {
  return size === 1 || size === 2 || size === 4 || size === 8;
}
