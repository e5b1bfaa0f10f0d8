import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import type { DescriptorChain } from "../queue.js";
import { DeviceId, featureWords } from "../spec.js";
import { BALLOON_PAGE, type PageReclaimer } from "./reclaimer.js";

/** Feature bits (virtio 1.2 §5.5.3). Only STATS_VQ is offered. */
export const BalloonFeature = {
  MUST_TELL_HOST: 0,
  STATS_VQ: 1,
  DEFLATE_ON_OOM: 2,
  FREE_PAGE_HINT: 3,
  PAGE_POISON: 4,
  PAGE_REPORTING: 5,
} as const;

/** Config layout (struct virtio_balloon_config up to `actual`; the rest needs features not offered). */
export const BalloonConfig = {
  NUM_PAGES: 0,
  ACTUAL: 4,
  SIZE: 8,
} as const;

/** Queue indexes (statsq exists with STATS_VQ; the later queues need features not offered). */
export const BalloonQueue = {
  INFLATE: 0,
  DEFLATE: 1,
  STATS: 2,
} as const;

/**
 * Statistics tags (§5.5.6.3: 0..9; Linux 6.12 added 10..15) and the names `stats()` gives them.
 * Sizes are in bytes, the rest are counts.
 */
export const BALLOON_STAT_NAMES = [
  "swapIn",
  "swapOut",
  "majorFaults",
  "minorFaults",
  "freeMemory",
  "totalMemory",
  "availableMemory",
  "diskCaches",
  "hugetlbAllocations",
  "hugetlbFailures",
  "oomKills",
  "allocationStalls",
  "asyncScans",
  "directScans",
  "asyncReclaims",
  "directReclaims",
] as const;

export type BalloonStatName = (typeof BALLOON_STAT_NAMES)[number];

/** The guest's latest memory statistics: the tags it sent (values above 2^53 lose precision). */
export type BalloonStats = { [K in BalloonStatName]?: number } & {
  /** How many statistics buffers the driver has sent (0: none yet). */
  updates: number;
};

/** What the device has done, for the host (--stats, the manager API) and tests. */
export interface BalloonCounters {
  inflateRequests: number;
  deflateRequests: number;
  /** Pages that entered / left the balloon. */
  inflatedPages: number;
  deflatedPages: number;
  /** PFNs ignored: outside guest RAM, or beyond MAX_PFNS_PER_REQUEST in one buffer. */
  ignoredPfns: number;
  /** Host memory the reclaimer reported released. */
  reclaimedBytes: number;
  /**
   * The most pages the balloon held during the run: by the device's count and as the driver reported
   * them in `actual`. A reset (a guest that powers off resets its devices on newer kernels) empties the
   * balloon, so the current figures alone cannot say what happened.
   */
  peakInflatedPages: number;
  peakActual: number;
  /** Device resets by the driver (each empties the balloon). */
  resets: number;
}

/** Counters a version-1 record may lack (they were added later); restore takes them as 0. */
const LATER_COUNTERS: readonly (keyof BalloonCounters)[] = ["peakInflatedPages", "peakActual", "resets"];

/** The balloon's state as plain data. */
export interface VirtioBalloonState {
  version: 1;
  numPages: number;
  actual: number;
  /** Pages in the balloon as [first RAM page index, count] pairs, flattened. */
  inflated: number[];
  stats: Partial<Record<BalloonStatName, number>>;
  statsUpdates: number;
  counters: BalloonCounters;
}

const QUEUE_SIZE = 64;
/** PFNs taken from one inflate/deflate buffer (Linux sends at most 256); the rest are ignored. */
export const MAX_PFNS_PER_REQUEST = 16384;
/** struct virtio_balloon_stat: le16 tag, le64 value, packed. */
const STAT_SIZE = 10;
/** Statistics entries read from one buffer (Linux sends 16 at most). */
const MAX_STATS = 256;
const TWO_32 = 4294967296;

/**
 * virtio-balloon (traditional memory balloon, ID 5): the host sets a target (`num_pages`, 4 KiB
 * pages) and the guest's driver inflates the balloon towards it, giving pages up, or deflates it,
 * taking them back; it reports the number in the balloon in `actual`.
 *
 * - inflateq: arrays of le32 PFNs. Each PFN inside guest RAM enters the balloon and the host memory
 *   behind it goes back to the host through the `PageReclaimer` (before the buffer is used, as the spec
 *   allows); PFNs outside RAM are ignored and counted. A page inflated twice is released once.
 * - deflateq: the guest takes pages back. Nothing to do on the host (without MUST_TELL_HOST the guest
 *   may reuse them before telling us anyway): released pages fault back in as zeros on first touch.
 * - statsq (STATS_VQ): the driver keeps one buffer of tagged u16/u64 statistics posted; the device
 *   reads it and holds it. `requestStats()` returns it to the guest, which answers with a fresh one.
 *
 * DEFLATE_ON_OOM is not offered, so Linux takes inflated pages out of MemTotal and never deflates on
 * its own under memory pressure. Buffers outside RAM or in the wrong direction stop the queue.
 */
export class VirtioBalloon implements VirtioDevice {
  readonly name = "virtio-balloon";
  readonly deviceId = DeviceId.BALLOON;
  readonly features: readonly number[] = featureWords(BalloonFeature.STATS_VQ);
  readonly queueSizes: readonly number[] = [QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE];
  readonly configSize = BalloonConfig.SIZE;
  /**
   * Called each time the driver sets DRIVER_OK (the guest's driver is up): where a host sets a target
   * it wants applied once the guest runs (`vireo run --balloon-target`).
   */
  onActivate: (() => void) | null = null;
  /** Called after each statistics buffer the driver sent (see `requestStats`). */
  onStats: (() => void) | null = null;
  private readonly counts: BalloonCounters = {
    inflateRequests: 0,
    deflateRequests: 0,
    inflatedPages: 0,
    deflatedPages: 0,
    ignoredPfns: 0,
    reclaimedBytes: 0,
    peakInflatedPages: 0,
    peakActual: 0,
    resets: 0,
  };
  private readonly config = new ConfigSpace(BalloonConfig.SIZE);
  private host: VirtioHost | null = null;
  /** First PFN of RAM and the number of whole 4 KiB pages in it. */
  private firstPfn = 0;
  private ramPages = 0;
  /** One bit per RAM page: in the balloon. */
  private inflated = new Uint8Array(0);
  private inflatedCount = 0;
  /** RAM page indexes of one request (reused). */
  private readonly pages = new Uint32Array(MAX_PFNS_PER_REQUEST);
  private readonly scratch = new Uint8Array(4096);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private latest: Partial<Record<BalloonStatName, number>> = {};
  private statsUpdates = 0;
  /** The statistics buffer the device holds (to be returned by requestStats), and its ticket. */
  private statsChain: DescriptorChain | null = null;
  private statsTicket = 0;

  constructor(private readonly reclaimer: PageReclaimer) {}

  attach(host: VirtioHost): void {
    const mem = host.memory;
    if (mem.base % BALLOON_PAGE !== 0) throw new RangeError("virtio-balloon: RAM must start on a 4 KiB page");
    this.host = host;
    this.firstPfn = mem.base / BALLOON_PAGE;
    this.ramPages = Math.floor(mem.size / BALLOON_PAGE);
    this.inflated = new Uint8Array(Math.ceil(this.ramPages / 8));
  }

  // --- host API ---

  /** The host's target: pages (4 KiB) it wants in the balloon. */
  get target(): number {
    return this.config.read(BalloonConfig.NUM_PAGES, 4);
  }

  get targetBytes(): number {
    return this.target * BALLOON_PAGE;
  }

  /** Pages in the balloon as the guest's driver last reported them (`actual`). */
  get actual(): number {
    return this.config.read(BalloonConfig.ACTUAL, 4);
  }

  get actualBytes(): number {
    return this.actual * BALLOON_PAGE;
  }

  /** Pages in the balloon as the device counts them (inflated and not deflated since). */
  get inflatedPages(): number {
    return this.inflatedCount;
  }

  get reclaimerKind(): string {
    return this.reclaimer.kind;
  }

  /** A copy of the device's counters. */
  get counters(): BalloonCounters {
    return { ...this.counts };
  }

  /**
   * Asks the guest to hold `pages` 4 KiB pages in the balloon (0 gives everything back): sets
   * `num_pages` and sends a configuration change interrupt (once the driver is up; a driver that
   * starts later reads the target itself). At most the RAM's pages once attached.
   */
  setTarget(pages: number): void {
    const max = this.host === null ? 0xffff_ffff : this.ramPages;
    if (!Number.isInteger(pages) || pages < 0 || pages > max) {
      throw new RangeError(`virtio-balloon: target ${pages} is not a page count from 0 to ${max}`);
    }
    if (pages === this.target) return;
    this.config.u32(BalloonConfig.NUM_PAGES, pages);
    this.host?.configChanged();
  }

  /** `setTarget` in bytes, rounded up to whole pages. */
  setTargetBytes(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(`virtio-balloon: target ${bytes} is not a byte count`);
    }
    this.setTarget(Math.ceil(bytes / BALLOON_PAGE));
  }

  /** The guest's latest statistics (empty, with updates 0, until the driver sent a buffer). */
  stats(): BalloonStats {
    return { ...this.latest, updates: this.statsUpdates };
  }

  /**
   * Asks the guest for fresh statistics: returns the statistics buffer the device holds to the driver,
   * which refills it and posts it again (`onStats` runs and `stats().updates` grows when it arrives).
   * False when there is nothing to return: STATS_VQ not negotiated, the driver not up, or a request
   * still unanswered.
   */
  requestStats(): boolean {
    const host = this.host;
    const chain = this.statsChain;
    if (host === null || chain === null || !host.active) return false;
    this.statsChain = null;
    const q = host.queue(BalloonQueue.STATS);
    if (!q.holds(chain, this.statsTicket)) return false;
    q.push(chain, 0);
    host.signalUsed(BalloonQueue.STATS);
    return true;
  }

  // --- VirtioDevice ---

  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  /** Only `actual` is the driver's to write (any access size); writes to num_pages are ignored. */
  writeConfig(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at >= BalloonConfig.ACTUAL && at < BalloonConfig.SIZE)
        this.config.u8(at, Math.floor(value / 2 ** (8 * i)) & 0xff);
    }
    // A driver writing `actual` a byte at a time passes through values it never meant: the peak is
    // taken once the write reaches the last byte.
    if (offset + size === BalloonConfig.SIZE && this.actual > this.counts.peakActual)
      this.counts.peakActual = this.actual;
  }

  activate(): void {
    this.notify(BalloonQueue.INFLATE);
    this.notify(BalloonQueue.DEFLATE);
    this.notify(BalloonQueue.STATS);
    this.onActivate?.();
  }

  notify(index: number): void {
    const host = this.host;
    if (host === null) return;
    if (index === BalloonQueue.STATS) {
      if (host.hasFeature(BalloonFeature.STATS_VQ)) this.takeStats();
      return;
    }
    if (index !== BalloonQueue.INFLATE && index !== BalloonQueue.DEFLATE) return;
    const q = host.queue(index);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        host.fail(index, chain.fault);
        break;
      }
      this.pageRequest(chain, index === BalloonQueue.INFLATE);
      q.push(chain, 0);
      used = true;
    }
    if (used) host.signalUsed(index);
  }

  /**
   * Device reset: the guest (re)starts with every page its own, so the balloon is empty and `actual`
   * 0; the host's target stays (a new driver reads it and inflates again).
   */
  reset(): void {
    this.counts.resets++;
    this.config.u32(BalloonConfig.ACTUAL, 0);
    this.inflated.fill(0);
    this.inflatedCount = 0;
    this.statsChain = null;
  }

  queueReset(index: number): void {
    if (index === BalloonQueue.STATS) this.statsChain = null;
  }

  snapshot(): VirtioBalloonState {
    const inflated: number[] = [];
    let start = -1;
    for (let p = 0; p <= this.ramPages; p++) {
      const inside = p < this.ramPages && this.isInflated(p);
      if (inside && start < 0) start = p;
      else if (!inside && start >= 0) {
        inflated.push(start, p - start);
        start = -1;
      }
    }
    return {
      version: 1,
      numPages: this.target,
      actual: this.actual,
      inflated,
      stats: { ...this.latest },
      statsUpdates: this.statsUpdates,
      counters: { ...this.counts },
    };
  }

  /**
   * Restores `snapshot()` after the transport restored the queues and guest RAM: the pages in the
   * balloon are released again, the held statistics buffer is found again, and inflate/deflate
   * buffers still held (none from our own snapshots) are processed.
   */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || Array.isArray(state))
      throw new TypeError("virtio-balloon snapshot: not an object");
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-balloon snapshot: unsupported version");
    const u32 = (v: unknown): v is number =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
    const count = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
    if (!u32(s.numPages) || !u32(s.actual)) throw new RangeError("virtio-balloon snapshot: bad config");
    const runs = s.inflated;
    if (!Array.isArray(runs) || runs.length % 2 !== 0 || !runs.every(count))
      throw new RangeError("virtio-balloon snapshot: bad inflated pages");
    for (let i = 0; i < runs.length; i += 2) {
      if ((runs[i] as number) + (runs[i + 1] as number) > this.ramPages)
        throw new RangeError("virtio-balloon snapshot: inflated pages outside RAM");
    }
    const stats = s.stats;
    if (typeof stats !== "object" || stats === null || Array.isArray(stats))
      throw new TypeError("virtio-balloon snapshot: bad stats");
    const latest: Partial<Record<BalloonStatName, number>> = {};
    for (const [name, value] of Object.entries(stats)) {
      if (!(BALLOON_STAT_NAMES as readonly string[]).includes(name) || typeof value !== "number" || value < 0)
        throw new RangeError(`virtio-balloon snapshot: bad statistic ${name}`);
      latest[name as BalloonStatName] = value;
    }
    if (!count(s.statsUpdates)) throw new RangeError("virtio-balloon snapshot: bad statsUpdates");
    const c = s.counters as Record<string, unknown> | null;
    const names = Object.keys(this.counts) as (keyof BalloonCounters)[];
    const present = (k: keyof BalloonCounters) =>
      count(c?.[k]) || (LATER_COUNTERS.includes(k) && c?.[k] === undefined);
    if (typeof c !== "object" || c === null || !names.every(present))
      throw new RangeError("virtio-balloon snapshot: bad counters");

    this.config.u32(BalloonConfig.NUM_PAGES, s.numPages);
    this.config.u32(BalloonConfig.ACTUAL, s.actual);
    this.latest = latest;
    this.statsUpdates = s.statsUpdates;
    for (const k of names) this.counts[k] = (c[k] as number | undefined) ?? 0;
    this.inflated.fill(0);
    this.inflatedCount = 0;
    for (let i = 0; i < runs.length; i += 2) {
      const first = runs[i] as number;
      const n = runs[i + 1] as number;
      for (let p = first; p < first + n; p++) {
        if (!this.isInflated(p)) {
          this.setInflated(p, true);
          this.inflatedCount++;
        }
      }
      if (n > 0) this.counts.reclaimedBytes += this.reclaimer.reclaim(first * BALLOON_PAGE, n * BALLOON_PAGE);
    }
    this.statsChain = null;
    const host = this.host;
    if (host === null) return;
    const statsq = host.queue(BalloonQueue.STATS);
    for (let head = 0; head < statsq.maxSize; head++) {
      const chain = statsq.heldChain(head);
      if (chain !== null) {
        this.statsChain = chain;
        this.statsTicket = chain.ticket;
        break;
      }
    }
    for (const index of [BalloonQueue.INFLATE, BalloonQueue.DEFLATE]) {
      const q = host.queue(index);
      let used = false;
      for (let head = 0; head < q.maxSize; head++) {
        const chain = q.heldChain(head);
        if (chain === null) continue;
        if (chain.fault === null) this.pageRequest(chain, index === BalloonQueue.INFLATE);
        q.push(chain, 0);
        used = true;
      }
      if (used) host.signalUsed(index);
    }
  }

  // --- requests ---

  /** An inflate or deflate buffer: its valid PFNs enter or leave the balloon. */
  private pageRequest(chain: DescriptorChain, inflate: boolean): void {
    if (inflate) this.counts.inflateRequests++;
    else this.counts.deflateRequests++;
    const n = this.readPages(chain);
    const pages = this.pages;
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < n; i++) {
      const p = pages[i] as number;
      if (i > 0 && p === pages[i - 1]) continue;
      if (this.isInflated(p) === inflate) continue;
      this.setInflated(p, inflate);
      if (!inflate) {
        this.inflatedCount--;
        this.counts.deflatedPages++;
        continue;
      }
      this.inflatedCount++;
      this.counts.inflatedPages++;
      if (this.inflatedCount > this.counts.peakInflatedPages)
        this.counts.peakInflatedPages = this.inflatedCount;
      // Newly inflated pages go to the reclaimer in runs of consecutive pages.
      if (p === runEnd) runEnd++;
      else {
        if (runStart >= 0) this.release(runStart, runEnd);
        runStart = p;
        runEnd = p + 1;
      }
    }
    if (runStart >= 0) this.release(runStart, runEnd);
  }

  /** Hands RAM pages [first, end) to the reclaimer. */
  private release(first: number, end: number): void {
    this.counts.reclaimedBytes += this.reclaimer.reclaim(first * BALLOON_PAGE, (end - first) * BALLOON_PAGE);
  }

  /**
   * Reads the request's PFNs (le32 each; a trailing partial one is ignored), keeps those of whole RAM
   * pages as RAM page indexes in `pages`, sorted, and returns how many.
   */
  private readPages(chain: DescriptorChain): number {
    const total = Math.floor(chain.readableBytes / 4);
    const n = Math.min(total, MAX_PFNS_PER_REQUEST);
    let ignored = total - n;
    let valid = 0;
    const block = this.scratch.length / 4;
    for (let i = 0; i < n; i += block) {
      const k = Math.min(block, n - i);
      chain.readBytes(i * 4, this.scratch, 0, k * 4);
      for (let j = 0; j < k; j++) {
        const page = this.scratchView.getUint32(j * 4, true) - this.firstPfn;
        if (page >= 0 && page < this.ramPages) this.pages[valid++] = page;
        else ignored++;
      }
    }
    this.counts.ignoredPfns += ignored;
    const pages = this.pages.subarray(0, valid);
    pages.sort();
    return valid;
  }

  /** Reads the statistics buffers the driver posted; keeps the last one to return on request. */
  private takeStats(): void {
    const host = this.host as VirtioHost;
    const q = host.queue(BalloonQueue.STATS);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        host.fail(BalloonQueue.STATS, chain.fault);
        break;
      }
      // The driver keeps at most one buffer posted; if it sent another, the older one goes back.
      const older = this.statsChain;
      if (older !== null && q.holds(older, this.statsTicket)) {
        q.push(older, 0);
        used = true;
      }
      this.statsChain = chain;
      this.statsTicket = chain.ticket;
      this.readStats(chain);
    }
    if (used) host.signalUsed(BalloonQueue.STATS);
  }

  /** Parses one statistics buffer: 10-byte entries, unknown tags ignored (§5.5.6.3). */
  private readStats(chain: DescriptorChain): void {
    const entries = Math.min(Math.floor(chain.readableBytes / STAT_SIZE), MAX_STATS);
    const latest: Partial<Record<BalloonStatName, number>> = {};
    const perBlock = Math.floor(this.scratch.length / STAT_SIZE);
    for (let i = 0; i < entries; i += perBlock) {
      const k = Math.min(perBlock, entries - i);
      chain.readBytes(i * STAT_SIZE, this.scratch, 0, k * STAT_SIZE);
      for (let j = 0; j < k; j++) {
        const at = j * STAT_SIZE;
        const name = BALLOON_STAT_NAMES[this.scratchView.getUint16(at, true)];
        if (name === undefined) continue;
        const lo = this.scratchView.getUint32(at + 2, true);
        const hi = this.scratchView.getUint32(at + 6, true);
        latest[name] = hi * TWO_32 + lo;
      }
    }
    this.latest = latest;
    this.statsUpdates++;
    this.onStats?.();
  }

  private isInflated(page: number): boolean {
    return ((this.inflated[page >>> 3] as number) & (1 << (page & 7))) !== 0;
  }

  private setInflated(page: number, on: boolean): void {
    const i = page >>> 3;
    const bit = 1 << (page & 7);
    this.inflated[i] = on ? (this.inflated[i] as number) | bit : (this.inflated[i] as number) & ~bit;
  }
}
