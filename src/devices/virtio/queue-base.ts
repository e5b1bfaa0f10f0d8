import type { GuestMemory } from "../device.js";
import { ChainPool, type DescriptorChain, type SegmentStore } from "./chain.js";
import type { QueueState, RingFormat, Virtqueue } from "./queue.js";

/** Why a queue stopped; the transport then sets DEVICE_NEEDS_RESET. */
export const QueueFault = {
  BAD_SIZE: "queue size is not a power of two between 1 and the maximum",
  BAD_RING: "a ring is misaligned or outside guest RAM",
  AVAIL_JUMP: "the available index moved by more than the queue size",
  BAD_HEAD: "an available ring entry names a descriptor beyond the queue size",
  HEAD_IN_USE: "an available ring entry names a chain the device still holds",
  BAD_NEXT: "a descriptor's next index is beyond its table",
  LOOP: "a descriptor chain is longer than its table (a loop)",
  TOO_MANY: "a descriptor chain has more descriptors than the device accepts",
  INDIRECT_OFF: "an indirect descriptor without VIRTIO_F_INDIRECT_DESC",
  INDIRECT_NESTED: "an indirect descriptor inside an indirect table",
  INDIRECT_NEXT: "an indirect descriptor with NEXT set",
  INDIRECT_BAD: "an indirect table is empty, misaligned, oversized or outside guest RAM",
  BAD_RESTORE: "a restored in-flight chain is no longer valid",
  // Packed rings (§2.8).
  PACKED_SIZE: "queue size is not between 1 and the maximum",
  CHAIN_TOO_LONG: "a descriptor chain is longer than the queue size",
  NOT_AVAILABLE: "a chained descriptor is not marked available for the ring wrap counter",
  OVERRUN: "more descriptors are available than the ring holds (wrap counter confusion)",
  BAD_ID: "a buffer ID is beyond the queue size",
  ID_IN_USE: "a buffer ID names a buffer the device still holds",
  INDIRECT_CHAINED: "an indirect descriptor in a chain of descriptors",
} as const;

export type QueueFault = (typeof QueueFault)[keyof typeof QueueFault];

/**
 * What split and packed queues share: the registers the driver programs (size and the three area
 * addresses, as 32-bit halves), the negotiated ring features, the fault state, and the chain records
 * with the bookkeeping of which the device holds. The ring formats add enable/pop/push/needsInterrupt
 * and their snapshots.
 */
export abstract class QueueBase implements Virtqueue {
  abstract readonly format: RingFormat;
  /** Registers (valid while not ready; the driver must not change them while ready). */
  size: number;
  descLo = 0;
  descHi = 0;
  driverLo = 0;
  driverHi = 0;
  deviceLo = 0;
  deviceHi = 0;
  /** QueueReady as the driver last wrote it. */
  ready = false;
  /** Negotiated ring features (the transport sets them). */
  eventIdx = false;
  indirect = false;
  /** Why the queue stopped (a QueueFault, or a device's own reason), or null. */
  fault: string | null = null;
  /** Called once when the queue stops with a fault. */
  onFault: (queue: Virtqueue, reason: string) => void = () => {};

  protected readonly view: DataView;
  protected readonly pool: ChainPool;
  protected readonly store: SegmentStore;
  protected readonly chains: DescriptorChain[];
  protected readonly held: Uint8Array;

  constructor(
    readonly memory: GuestMemory,
    readonly index: number,
    /** QueueSizeMax; also the longest chain (in buffers) accepted. */
    readonly maxSize: number,
    /** Chain records shared with the other format's queue of the same index (see ChainPool). */
    pool?: ChainPool,
  ) {
    const bytes = memory.bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (pool !== undefined && (pool.capacity !== maxSize || pool.store.memory !== memory)) {
      throw new RangeError("a virtqueue chain pool must match the queue's maximum size and memory");
    }
    this.pool = pool ?? new ChainPool(memory, maxSize);
    this.store = this.pool.store;
    this.chains = this.pool.chains;
    this.held = this.pool.held;
    this.size = maxSize;
  }

  /** Number of chains popped and not yet pushed. */
  get inFlight(): number {
    return this.pool.heldCount;
  }

  /** True while `chain` (as popped with `ticket`) is still held: it may be completed. */
  holds(chain: DescriptorChain, ticket: number): boolean {
    return chain.ticket === ticket && this.held[chain.head] === 1 && this.fault === null && this.ready;
  }

  /** Whether the queue can be processed: ready, set up correctly and not stopped. */
  get usable(): boolean {
    return this.ready && this.fault === null;
  }

  abstract enable(): boolean;
  abstract pop(): DescriptorChain | null;
  abstract push(chain: DescriptorChain, written: number): boolean;
  abstract needsInterrupt(): boolean;
  abstract notifyOnNext(): void;
  abstract snapshot(): QueueState;
  abstract restore(state: unknown): void;

  /** QueueReady = 0: the device lets go of the rings and every chain it holds. */
  disable(): void {
    this.ready = false;
    this.startOver();
  }

  /** Queue reset (device reset or QueueReset): registers back to their reset values. */
  reset(): void {
    this.disable();
    this.size = this.maxSize;
    this.descLo = this.descHi = this.driverLo = this.driverHi = this.deviceLo = this.deviceHi = 0;
    this.eventIdx = false;
    this.indirect = false;
  }

  /** Stops the queue (the device found a request it cannot handle, or the rings are broken). */
  fail(reason: string): false {
    if (this.fault === null) {
      this.fault = reason;
      this.onFault(this, reason);
    }
    return false;
  }

  /** The chain a held head refers to (after a restore, devices find their requests with it). */
  heldChain(head: number): DescriptorChain | null {
    return head >= 0 && head < this.maxSize && this.held[head] === 1
      ? (this.chains[head] as DescriptorChain)
      : null;
  }

  /** Back to the start of the rings holding nothing; chains held so far can no longer be pushed. */
  protected startOver(): void {
    this.fault = null;
    this.held.fill(0);
    this.pool.heldCount = 0;
    this.pool.tickets++;
    this.rewind();
  }

  /** Ring positions back to their initial values. */
  protected abstract rewind(): void;

  /** Marks `chain` held by the device under a new ticket. */
  protected take(chain: DescriptorChain): void {
    this.held[chain.head] = 1;
    this.pool.heldCount++;
    chain.ticket = ++this.pool.tickets;
  }

  /** Returns a held chain; false if it is not (or no longer) held or the queue cannot take it. */
  protected release(chain: DescriptorChain): boolean {
    const head = chain.head;
    if (this.held[head] !== 1 || this.chains[head] !== chain) return false;
    this.held[head] = 0;
    this.pool.heldCount--;
    return this.ready && this.fault === null;
  }

  /** Heads of the chains held, in order. */
  protected heldHeads(): number[] {
    const heads: number[] = [];
    for (let head = 0; head < this.maxSize; head++) if (this.held[head] === 1) heads.push(head);
    return heads;
  }
}

export const isU32 = (x: unknown): x is number =>
  typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
export const isU16 = (x: unknown): x is number => isU32(x) && x <= 0xffff;

/** A register pair of a queue snapshot. */
export function pair(s: Record<string, unknown>, key: string): [number, number] {
  const value = s[key];
  if (!Array.isArray(value) || value.length !== 2 || !isU32(value[0]) || !isU32(value[1])) {
    throw new RangeError(`virtqueue snapshot: ${key} must be two 32-bit halves`);
  }
  return [value[0], value[1]];
}

/** A queue snapshot as a record, or a TypeError. */
export function stateRecord(state: unknown): Record<string, unknown> {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new TypeError("virtqueue snapshot: not an object");
  }
  return state as Record<string, unknown>;
}
