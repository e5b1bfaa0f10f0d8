import type { GuestMemory } from "../device.js";
import { ChainPool, type DescriptorChain } from "./chain.js";
import { PackedQueue, type PackedQueueState } from "./packed-queue.js";
import { SplitQueue, type SplitQueueState } from "./split-queue.js";

/**
 * Virtqueues as devices and transports see them. Two ring formats implement one interface: split
 * (`split-queue.ts`, §2.7, always available) and packed (`packed-queue.ts`, §2.8, when the driver
 * accepts VIRTIO_F_RING_PACKED). A `QueueSlot` is one queue index of a transport: it holds both (the
 * packed one made on first use, sharing the chain records) and selects the one the negotiated features
 * call for. Devices only ever use `pop`, `push`, `holds`, `heldChain`, `maxSize` and `inFlight`, and see
 * the same DescriptorChain records with either format.
 */

export { address64, ChainFault, ChainPool, DescriptorChain } from "./chain.js";
export { PackedQueue, type PackedQueueState } from "./packed-queue.js";
export { QueueFault } from "./queue-base.js";
export { SplitQueue, type SplitQueueState } from "./split-queue.js";

export type RingFormat = "split" | "packed";

/** A queue's state as plain data: packed states carry `format: "packed"`. */
export type QueueState = SplitQueueState | PackedQueueState;

export interface Virtqueue {
  readonly format: RingFormat;
  readonly memory: GuestMemory;
  readonly index: number;
  /** QueueSizeMax; also the longest chain (in buffers) the device accepts. */
  readonly maxSize: number;
  /** Registers (valid while not ready; the driver must not change them while ready). */
  size: number;
  descLo: number;
  descHi: number;
  driverLo: number;
  driverHi: number;
  deviceLo: number;
  deviceHi: number;
  /** QueueReady as the driver last wrote it. */
  ready: boolean;
  /** Negotiated ring features (the transport sets them). */
  eventIdx: boolean;
  indirect: boolean;
  /** Why the queue stopped (a QueueFault, or a device's own reason), or null. */
  fault: string | null;
  /** Called once when the queue stops with a fault. */
  onFault: (queue: Virtqueue, reason: string) => void;
  /** Number of chains popped and not yet pushed. */
  readonly inFlight: number;
  /** Ready, set up correctly and not stopped. */
  readonly usable: boolean;
  /** True while `chain` (as popped with `ticket`) is still held: it may be completed. */
  holds(chain: DescriptorChain, ticket: number): boolean;
  /** QueueReady = 1: checks size and areas; false (and a fault) when they are invalid. */
  enable(): boolean;
  /** QueueReady = 0: lets go of the rings and every chain held. */
  disable(): void;
  /** Queue reset: registers back to their reset values. */
  reset(): void;
  /** Stops the queue with `reason` (the transport sets DEVICE_NEEDS_RESET). */
  fail(reason: string): false;
  /** The next available chain, or null. */
  pop(): DescriptorChain | null;
  /** Returns a held chain as used with `written` bytes; false if it is no longer held. */
  push(chain: DescriptorChain, written: number): boolean;
  /** Whether the buffers used since the last call warrant an interrupt (driver's suppression). */
  needsInterrupt(): boolean;
  /**
   * Asks the driver to notify when it next makes a buffer available, even though the ring still holds
   * some (with EVENT_IDX a driver otherwise notifies only past the point the device last found empty).
   */
  notifyOnNext(): void;
  /** The held chain of a head (split) or buffer ID (packed), or null. */
  heldChain(head: number): DescriptorChain | null;
  snapshot(): QueueState;
  /** Restores `snapshot()` of the same format; throws (changing nothing) if it is malformed. */
  restore(state: unknown): void;
}

/**
 * One queue index of a transport. `current` is the split queue until `select("packed")`; switching
 * moves the registers over (a driver that set the queue up before FEATURES_OK keeps its setup, ready
 * included) and lets go of everything the other format held.
 */
export class QueueSlot {
  private readonly pool: ChainPool;
  private readonly split: SplitQueue;
  private packed: PackedQueue | null = null;
  current: Virtqueue;

  constructor(
    private readonly memory: GuestMemory,
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.pool = new ChainPool(memory, maxSize);
    this.split = new SplitQueue(memory, index, maxSize, this.pool);
    this.current = this.split;
  }

  /** A fresh queue of `format` for this slot, sharing nothing (to check a snapshot before restoring). */
  scratch(format: RingFormat): Virtqueue {
    return format === "packed"
      ? new PackedQueue(this.memory, this.index, this.maxSize)
      : new SplitQueue(this.memory, this.index, this.maxSize);
  }

  select(format: RingFormat): Virtqueue {
    const from = this.current;
    if (from.format === format) return from;
    if (format === "packed" && this.packed === null) {
      this.packed = new PackedQueue(this.memory, this.index, this.maxSize, this.pool);
    }
    const to: Virtqueue = format === "packed" ? (this.packed as PackedQueue) : this.split;
    const wasReady = from.ready;
    to.reset();
    to.size = from.size;
    to.descLo = from.descLo;
    to.descHi = from.descHi;
    to.driverLo = from.driverLo;
    to.driverHi = from.driverHi;
    to.deviceLo = from.deviceLo;
    to.deviceHi = from.deviceHi;
    to.eventIdx = from.eventIdx;
    to.indirect = from.indirect;
    to.onFault = from.onFault;
    from.reset();
    this.current = to;
    if (wasReady) to.enable();
    return to;
  }
}
