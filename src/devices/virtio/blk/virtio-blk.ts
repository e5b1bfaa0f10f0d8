import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import type { DescriptorChain } from "../queue.js";
import { DeviceId, featureWords } from "../spec.js";
import type { BlockBackend } from "./backend.js";

/** Feature bits (virtio 1.2 §5.2.3). */
export const BlkFeature = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

/** Request types (§5.2.6). */
export const BlkRequest = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** Request status byte. */
export const BlkStatus = {
  OK: 0,
  IOERR: 1,
  UNSUPP: 2,
} as const;

/** Config space offsets (struct virtio_blk_config) up to the secure-erase fields. */
export const BlkConfig = {
  CAPACITY: 0x00,
  SIZE_MAX: 0x08,
  SEG_MAX: 0x0c,
  BLK_SIZE: 0x14,
  NUM_QUEUES: 0x22,
  MAX_DISCARD_SECTORS: 0x24,
  MAX_DISCARD_SEG: 0x28,
  DISCARD_SECTOR_ALIGNMENT: 0x2c,
  MAX_WRITE_ZEROES_SECTORS: 0x30,
  MAX_WRITE_ZEROES_SEG: 0x34,
  WRITE_ZEROES_MAY_UNMAP: 0x38,
  SIZE: 0x48,
} as const;

export const SECTOR = 512;
/** Request header: le32 type, le32 reserved (ioprio), le64 sector. */
const HEADER = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
const RANGE = 16;
const RANGE_UNMAP = 1;
/** The device ID string of GET_ID. */
export const ID_BYTES = 20;
export const BLK_QUEUE_SIZE = 128;
/** Data segments per request: a chain also needs the header and the status byte. */
export const BLK_SEG_MAX = BLK_QUEUE_SIZE - 2;
/** Per-range limit of DISCARD / WRITE_ZEROES: 32 MiB, so one request never holds the disk for long. */
export const BLK_MAX_ZERO_SECTORS = 65536;
export const BLK_MAX_ZERO_SEGS = 8;

const TWO_32 = 4294967296;

export interface VirtioBlkOptions {
  /** The serial number GET_ID returns: printable ASCII, at most 20 bytes. */
  serial?: string;
}

/** The block device's own state (its requests in flight are the queue's held chains). */
export interface VirtioBlkState {
  version: 1;
}

/** True for a promise-like result (the backend finishes later). */
function isPending(r: unknown): r is Promise<unknown> {
  return typeof (r as { then?: unknown } | undefined)?.then === "function";
}

/**
 * virtio-blk (ID 2) over a BlockBackend, one request queue. Offers SEG_MAX, BLK_SIZE (512), FLUSH,
 * and, when the backend can write and supports them, DISCARD and WRITE_ZEROES; RO for read-only
 * backends. Requests: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES; other types get UNSUPP.
 *
 * A request is read as a byte stream regardless of how the driver split it: a 16-byte header at the
 * start of the readable part, the status byte at the end of the writable part. Out-of-range sectors,
 * lengths that are not whole sectors, writes to a read-only disk, malformed ranges and any backend
 * failure complete the request with IOERR; a request whose buffers are invalid (outside RAM, wrong
 * direction order) is failed with IOERR when its status byte is usable, else the queue is stopped
 * (DEVICE_NEEDS_RESET). Backends may finish asynchronously: requests then complete out of order on
 * the backend's callbacks. FLUSH completes after every write issued before it has finished and the
 * backend flushed; without negotiated FLUSH every write is flushed before it completes (write-through,
 * as §5.2.6.4 requires).
 */
export class VirtioBlk implements VirtioDevice {
  readonly name = "virtio-blk";
  readonly deviceId = DeviceId.BLOCK;
  readonly features: readonly number[];
  readonly queueSizes: readonly number[] = [BLK_QUEUE_SIZE];
  readonly configSize = BlkConfig.SIZE;
  /** Disk size in sectors. */
  readonly capacity: number;
  private readonly config = new ConfigSpace(BlkConfig.SIZE);
  private readonly serial = new Uint8Array(ID_BYTES);
  private host!: VirtioHost;
  /** Guest-contiguous runs of the request being issued (reused). */
  private readonly runOffset = new Float64Array(BLK_QUEUE_SIZE);
  private readonly runLength = new Float64Array(BLK_QUEUE_SIZE);
  /** Writes (OUT, DISCARD, WRITE_ZEROES) that finish later, and a promise of them all finishing. */
  private writesInFlight = 0;
  private writeBarrier: Promise<unknown> | null = null;

  constructor(
    readonly backend: BlockBackend,
    options: VirtioBlkOptions = {},
  ) {
    const serial = options.serial ?? "";
    if (serial.length > ID_BYTES || !/^[\x20-\x7e]*$/.test(serial)) {
      throw new RangeError(`virtio-blk serial "${serial}": at most ${ID_BYTES} printable ASCII characters`);
    }
    for (let i = 0; i < serial.length; i++) this.serial[i] = serial.charCodeAt(i);
    if (!Number.isSafeInteger(backend.sizeBytes) || backend.sizeBytes < 0) {
      throw new RangeError("virtio-blk: backend size is not a byte count");
    }
    this.capacity = Math.floor(backend.sizeBytes / SECTOR);
    const bits: number[] = [BlkFeature.SEG_MAX, BlkFeature.BLK_SIZE, BlkFeature.FLUSH];
    if (backend.readOnly) bits.push(BlkFeature.RO);
    else {
      if (backend.discard) bits.push(BlkFeature.DISCARD);
      if (backend.writeZeroes) bits.push(BlkFeature.WRITE_ZEROES);
    }
    this.features = featureWords(...bits);
    const c = this.config;
    c.u64(BlkConfig.CAPACITY, this.capacity);
    c.u32(BlkConfig.SEG_MAX, BLK_SEG_MAX);
    c.u32(BlkConfig.BLK_SIZE, SECTOR);
    c.u16(BlkConfig.NUM_QUEUES, 1);
    c.u32(BlkConfig.MAX_DISCARD_SECTORS, BLK_MAX_ZERO_SECTORS);
    c.u32(BlkConfig.MAX_DISCARD_SEG, BLK_MAX_ZERO_SEGS);
    c.u32(BlkConfig.DISCARD_SECTOR_ALIGNMENT, 8);
    c.u32(BlkConfig.MAX_WRITE_ZEROES_SECTORS, BLK_MAX_ZERO_SECTORS);
    c.u32(BlkConfig.MAX_WRITE_ZEROES_SEG, BLK_MAX_ZERO_SEGS);
  }

  attach(host: VirtioHost): void {
    this.host = host;
  }

  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  /** Nothing is writable without CONFIG_WCE. */
  writeConfig(): void {}

  activate(): void {
    this.notify(0);
  }

  notify(index: number): void {
    const q = this.host.queue(index);
    let completed = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (this.start(chain)) completed = true;
    }
    if (completed) this.host.signalUsed(index);
  }

  reset(): void {
    // Requests still in flight finish into the void: their chains are no longer held.
  }

  snapshot(): VirtioBlkState {
    return { version: 1 };
  }

  /** Requests that were in flight (the queue's held chains) are issued again, as QEMU does. */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || (state as { version?: unknown }).version !== 1) {
      throw new TypeError("virtio-blk snapshot: unsupported version");
    }
    const q = this.host.queue(0);
    let completed = false;
    for (let head = 0; head < q.maxSize; head++) {
      const chain = q.heldChain(head);
      if (chain !== null && this.start(chain)) completed = true;
    }
    if (completed) this.host.signalUsed(0);
  }

  /** Starts a popped request; true if it completed at once (the caller signals), false if later. */
  private start(chain: DescriptorChain): boolean {
    const statusAt = chain.lastWritableByte();
    if (statusAt < 0) {
      // No status byte to report through: the driver broke the protocol.
      this.host.fail(0, "a block request without a device-writable status byte");
      return false;
    }
    const ticket = chain.ticket;
    const valid = chain.fault === null && chain.readableBytes >= HEADER;
    const type = valid ? chain.readU32(0) : -1;
    let result: number | Promise<number>;
    try {
      result = valid ? this.execute(chain, type) : BlkStatus.IOERR;
    } catch {
      result = BlkStatus.IOERR;
    }
    if (!isPending(result)) return this.finish(chain, ticket, type, statusAt, result);
    result.then(
      (status) => this.complete(chain, ticket, type, statusAt, status),
      () => this.complete(chain, ticket, type, statusAt, BlkStatus.IOERR),
    );
    return false;
  }

  /** A request finished later (backend callback): push it and interrupt. */
  private complete(
    chain: DescriptorChain,
    ticket: number,
    type: number,
    statusAt: number,
    status: number,
  ): void {
    if (this.finish(chain, ticket, type, statusAt, status)) this.host.signalUsed(0);
  }

  /** Writes the status byte and returns the chain; false if the queue let go of it meanwhile. */
  private finish(
    chain: DescriptorChain,
    ticket: number,
    type: number,
    statusAt: number,
    status: number,
  ): boolean {
    const q = this.host.queue(0);
    if (!q.holds(chain, ticket)) return false;
    const mem = this.host.memory;
    mem.bytes[statusAt - mem.base] = status;
    // Used length: the status byte, plus the data of a successful IN or GET_ID.
    let data = 0;
    if (status === BlkStatus.OK && type === BlkRequest.IN) data = chain.writableBytes - 1;
    else if (status === BlkStatus.OK && type === BlkRequest.GET_ID) data = ID_BYTES;
    return q.push(chain, data + 1);
  }

  /** Runs a well-formed request: a status now, or a promise of one. */
  private execute(chain: DescriptorChain, type: number): number | Promise<number> {
    const sectorLo = chain.readU32(8);
    const sectorHi = chain.readU32(12);
    const sector = sectorHi >= 0x20_0000 ? Number.POSITIVE_INFINITY : sectorHi * TWO_32 + sectorLo;
    switch (type) {
      case BlkRequest.IN: {
        const length = chain.writableBytes - 1;
        if (!this.inRange(sector, length)) return BlkStatus.IOERR;
        return this.transfer(false, chain, chain.readable, chain.length, 0, length, sector);
      }
      case BlkRequest.OUT: {
        const length = chain.readableBytes - HEADER;
        if (this.backend.readOnly || !this.inRange(sector, length)) return BlkStatus.IOERR;
        return this.afterWrite(this.transfer(true, chain, 0, chain.readable, HEADER, length, sector));
      }
      case BlkRequest.FLUSH:
        return this.flush();
      case BlkRequest.GET_ID: {
        if (chain.writableBytes - 1 < ID_BYTES) return BlkStatus.IOERR;
        chain.writeBytes(0, this.serial, 0, ID_BYTES);
        return BlkStatus.OK;
      }
      case BlkRequest.DISCARD:
      case BlkRequest.WRITE_ZEROES:
        return this.zeroRanges(chain, type);
      default:
        return BlkStatus.UNSUPP;
    }
  }

  /** Whether [sector, sector + bytes/512) is whole sectors inside the disk. */
  private inRange(sector: number, bytes: number): boolean {
    return bytes % SECTOR === 0 && sector <= this.capacity && bytes / SECTOR <= this.capacity - sector;
  }

  /**
   * Reads the disk into, or writes it from, bytes [offset, offset + length) of segments [first, end),
   * one backend call per guest-contiguous run. Never reports before every call issued has finished.
   */
  private transfer(
    write: boolean,
    chain: DescriptorChain,
    first: number,
    end: number,
    offset: number,
    length: number,
    sector: number,
  ): number | Promise<number> {
    const runs = this.runs(chain, first, end, offset, length);
    const bytes = this.host.memory.bytes;
    let pending: Promise<unknown>[] | null = null;
    let pos = sector * SECTOR;
    for (let i = 0; i < runs; i++) {
      const at = this.runOffset[i] as number;
      const n = this.runLength[i] as number;
      const view = bytes.subarray(at, at + n);
      let r: unknown;
      try {
        r = write ? this.backend.write(pos, view) : this.backend.read(pos, view);
      } catch (e) {
        if (pending === null) return BlkStatus.IOERR;
        pending.push(Promise.reject(e));
        break;
      }
      if (isPending(r)) {
        pending ??= [];
        pending.push(r);
      }
      pos += n;
    }
    return pending === null ? BlkStatus.OK : settle(pending);
  }

  /** DISCARD / WRITE_ZEROES: validate every range first, then process them one after the other. */
  private zeroRanges(chain: DescriptorChain, type: number): number | Promise<number> {
    const discard = type === BlkRequest.DISCARD;
    const backend = this.backend;
    if (backend.readOnly) return BlkStatus.IOERR;
    const op = discard ? backend.discard : backend.writeZeroes;
    if (op === undefined) return BlkStatus.UNSUPP;
    const length = chain.readableBytes - HEADER;
    const count = length / RANGE;
    if (length === 0 || length % RANGE !== 0 || count > BLK_MAX_ZERO_SEGS) return BlkStatus.IOERR;
    const ranges: number[] = [];
    for (let i = 0; i < count; i++) {
      const at = HEADER + i * RANGE;
      const lo = chain.readU32(at);
      const hi = chain.readU32(at + 4);
      const sectors = chain.readU32(at + 8);
      const flags = chain.readU32(at + 12);
      if ((flags & ~RANGE_UNMAP) !== 0 || (discard && (flags & RANGE_UNMAP) !== 0)) return BlkStatus.UNSUPP;
      const sector = hi >= 0x20_0000 ? Number.POSITIVE_INFINITY : hi * TWO_32 + lo;
      if (sectors > BLK_MAX_ZERO_SECTORS || !this.inRange(sector, sectors * SECTOR)) return BlkStatus.IOERR;
      ranges.push(sector * SECTOR, sectors * SECTOR);
    }
    const run = (from: number): number | Promise<number> => {
      for (let i = from; i < ranges.length; i += 2) {
        const r = op.call(backend, ranges[i] as number, ranges[i + 1] as number);
        // The remaining ranges follow once this one has finished.
        if (isPending(r)) return r.then(() => run(i + 2));
      }
      return BlkStatus.OK;
    };
    return this.afterWrite(run(0));
  }

  /**
   * A write-type request's result, flushed first when FLUSH was not negotiated (write-through). Writes
   * that finish later are tracked so that a FLUSH waits for them.
   */
  private afterWrite(result: number | Promise<number>): number | Promise<number> {
    if (!this.host.hasFeature(BlkFeature.FLUSH)) {
      const flushed = (status: number): number | Promise<number> => {
        if (status !== BlkStatus.OK) return status;
        const r = this.backend.flush();
        return isPending(r) ? r.then(() => BlkStatus.OK) : BlkStatus.OK;
      };
      result = isPending(result) ? result.then(flushed) : flushed(result);
    }
    if (isPending(result)) this.trackWrite(result);
    return result;
  }

  /** Adds an unfinished write to the barrier a FLUSH waits on. */
  private trackWrite(write: Promise<unknown>): void {
    const done = write.then(
      () => this.writeDone(),
      () => this.writeDone(),
    );
    this.writesInFlight++;
    this.writeBarrier = this.writeBarrier === null ? done : Promise.all([this.writeBarrier, done]);
  }

  private writeDone(): void {
    if (--this.writesInFlight === 0) this.writeBarrier = null;
  }

  /** FLUSH: once every write issued before it has finished, make them durable. */
  private flush(): number | Promise<number> {
    const barrier = this.writeBarrier;
    if (barrier === null) {
      const r = this.backend.flush();
      return isPending(r) ? r.then(() => BlkStatus.OK) : BlkStatus.OK;
    }
    return barrier.then(() => this.backend.flush()).then(() => BlkStatus.OK);
  }

  /**
   * Splits bytes [offset, offset + length) of segments [first, end) into guest-contiguous runs (RAM
   * offsets in runOffset/runLength); returns how many.
   */
  private runs(chain: DescriptorChain, first: number, end: number, offset: number, length: number): number {
    const base = this.host.memory.base;
    let count = 0;
    let left = length;
    for (let i = first; i < end && left > 0; i++) {
      const size = chain.size(i);
      if (offset >= size) {
        offset -= size;
        continue;
      }
      const n = Math.min(size - offset, left);
      const at = chain.address(i) - base + offset;
      const last = count - 1;
      if (count > 0 && (this.runOffset[last] as number) + (this.runLength[last] as number) === at) {
        this.runLength[last] = (this.runLength[last] as number) + n;
      } else {
        this.runOffset[count] = at;
        this.runLength[count] = n;
        count++;
      }
      left -= n;
      offset = 0;
    }
    return count;
  }
}

/** OK once every operation finished, IOERR if any failed (never before all have finished). */
function settle(pending: Promise<unknown>[]): Promise<number> {
  return Promise.allSettled(pending).then((results) =>
    results.every((r) => r.status === "fulfilled") ? BlkStatus.OK : BlkStatus.IOERR,
  );
}
