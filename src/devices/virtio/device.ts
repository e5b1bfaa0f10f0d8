import type { GuestMemory } from "../device.js";
import type { Virtqueue } from "./queue.js";

/**
 * What a virtio device model is: an ID, its feature bits, a config space, some queues, and what to do
 * when the driver starts it, notifies a queue, or resets it. The transport (virtio-mmio today, others
 * later) owns registers, status, feature negotiation, queue setup and interrupts; a device only sees
 * this interface and the `VirtioHost` the transport hands it.
 */
export interface VirtioDevice {
  readonly name: string;
  /** Virtio device ID (§5): 2 block, 3 console, 4 entropy... */
  readonly deviceId: number;
  /**
   * Device-specific feature bits as 32-bit words (word 0 = bits 0..31, word 1 = bits 32..63). The
   * transport adds VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX, RING_RESET and (unless the board
   * turns packed rings off, or `packedRing` is false) RING_PACKED.
   */
  readonly features: readonly number[];
  /**
   * False keeps this device on split rings (RING_PACKED is not offered). Devices that only use the
   * queue interface work with either format, which is the default.
   */
  readonly packedRing?: boolean;
  /** Maximum size (a power of two) of each queue; the length is the number of queues. */
  readonly queueSizes: readonly number[];
  /** Bytes of device-specific configuration space. */
  readonly configSize: number;
  /** Called once by the transport before anything else. */
  attach(host: VirtioHost): void;
  /** Little-endian read of `size` (1, 2 or 4) bytes at `offset` (inside configSize). */
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver set DRIVER_OK: features are final, ready queues may be used. */
  activate(): void;
  /** The driver made buffers available in queue `index` (only called while that queue is usable). */
  notify(index: number): void;
  /** Device reset (status 0): forget requests and negotiated state; queues are reset by the transport. */
  reset(): void;
  /** One queue was reset (VIRTIO_F_RING_RESET); requests on it are void. */
  queueReset?(index: number): void;
  /** Device state as plain JSON-able data; queues and transport state are saved by the transport. */
  snapshot(): unknown;
  /** Restores `snapshot()`, after the transport restored its queues (held chains are walked again). */
  restore(state: unknown): void;
}

/** What the transport offers a device. */
export interface VirtioHost {
  readonly memory: GuestMemory;
  /**
   * Queue `index`, split or packed as negotiated. The object changes when the driver sets FEATURES_OK
   * or resets the device: look it up when needed rather than keeping it from `attach`.
   */
  queue(index: number): Virtqueue;
  /** Whether the driver accepted feature `bit` (0..63). */
  hasFeature(bit: number): boolean;
  /** DRIVER_OK is set (the device may use its queues and send interrupts). */
  readonly active: boolean;
  /** After pushing used buffers: interrupts the driver unless its notification suppression says not. */
  signalUsed(index: number): void;
  /** The config space changed: new ConfigGeneration and a configuration change interrupt. */
  configChanged(): void;
  /**
   * The device cannot go on with queue `index` (a request it cannot even fail): stops the queue, sets
   * DEVICE_NEEDS_RESET and sends a configuration change interrupt.
   */
  fail(index: number, reason: string): void;
}

/** A little-endian config space backed by bytes (devices keep theirs in one of these). */
export class ConfigSpace {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  get size(): number {
    return this.bytes.length;
  }

  read(offset: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + (this.bytes[offset + i] ?? 0);
    return value;
  }

  u8(offset: number, value: number): void {
    this.view.setUint8(offset, value);
  }

  u16(offset: number, value: number): void {
    this.view.setUint16(offset, value, true);
  }

  u32(offset: number, value: number): void {
    this.view.setUint32(offset, value >>> 0, true);
  }

  /** A 64-bit field from a number (up to 2^53). */
  u64(offset: number, value: number): void {
    this.view.setUint32(offset, value % 4294967296, true);
    this.view.setUint32(offset + 4, Math.floor(value / 4294967296), true);
  }
}
