import type { Hart } from "../hart.js";
import { jumpCacheIndex } from "../jump-cache.js";
import type { GuestRam } from "../memory-map.js";
import {
  Access,
  BLOCK_STAMP_SLOTS,
  BLOCK_STAMPS_BASE,
  HartOffset,
  HEAT_ENTRIES,
  JUMP_CACHE_ENTRIES,
  RAM_OFFSET,
  TLB_ENTRIES,
  TLB_TABLE_BYTES,
  TLB_TAGS_BYTES,
} from "../state.js";
import { BlockExit, type BlockFunction, compileBlocks, type TranslatorHost } from "./compile.js";
import { type DecodedInsn, decodeBlock } from "./decode.js";
import { buildDispatch, type Dispatch, SLOT_SHIFT } from "./dispatch.js";
import { ExitReasons, instructionKind } from "./exit-reasons.js";

export interface TranslationOptions {
  /** Entries into a block (counted at block boundaries the interpreter reaches) before it is compiled.
   *  Default 5000: on the Debian boot 64 spent a quarter of the time compiling code that ran a few
   *  thousand instructions in all (first 400 M instructions: 18.8 MIPS at 64, 29 at 1000, 44 at 5000). */
  threshold?: number;
  /** A page whose translations were invalidated this often is left to the interpreter. */
  maxPageInvalidations?: number;
  /**
   * Bytes of wasm the live translations may take (default 64 MiB); past it the least recently entered
   * blocks are evicted (down to three quarters of it) and compiled again if they get hot again.
   */
  maxWasmBytes?: number;
}

export interface TranslationStats {
  /** Blocks compiled, and the guest instructions they hold. */
  blocks: number;
  instructions: number;
  /** Bytes of guest code those instructions take (RVC ones 2, others 4). */
  guestBytes: number;
  /** WebAssembly.Modules built (each holds a batch of blocks) and their total size. */
  modules: number;
  wasmBytes: number;
  /** Blocks thrown away because their page was written (by the guest or a device). */
  invalidations: number;
  compileMs: number;
  /** Instructions retired inside translated code. */
  translatedRetired: number;
  /**
   * Wasm bytes of the blocks not evicted or invalidated (a module's size shared among its blocks; V8
   * frees a module's code once every block of it is gone).
   */
  liveWasmBytes: number;
  /** Blocks evicted, least recently used first, to keep liveWasmBytes under the cap. */
  evictions: number;
}

export interface Block {
  /** Its RAM offset (physical address − RAM base): its key in the block map. */
  pa: number;
  /** Its share of its module's wasm bytes. */
  bytes: number;
  /** The decoded instructions (empty when the interpreter owns the first one). */
  insns: DecodedInsn[];
  pcLo: number;
  pcHi: number;
  length: number;
  /** null: the block's first instruction belongs to the interpreter (system, FPU...). */
  fn: BlockFunction | null;
  /** Its entry in the shared function table (-1 when fn is null). */
  slot: number;
  /** What its first instruction is when the interpreter owns it (the exit map's name for it). */
  stop?: string;
}

/** Runs the interpreter variant that returns after every jump or branch. */
export type InterpretBlock = (hart: number, budget: number) => number;

const PAGE = 4096;
/** A batch is compiled once it holds this many blocks, or its first block has waited this many slices. */
const BATCH_BLOCKS = 64;
const BATCH_SLICES = 32;
const SLICE_STEPS = HartOffset.SLICE_STEPS >> 2;
const CODE_WRITTEN = HartOffset.CODE_WRITTEN >> 2;
const EPOCH = HartOffset.EPOCH >> 2;
const HOT_LIMIT = HartOffset.HOT_LIMIT >> 2;
const INTERP_CALLS = HartOffset.INTERP_CALLS >> 2;
const INTERP_STEPS = HartOffset.INTERP_STEPS >> 2;

/**
 * The translating engine's core: counts entries into blocks by physical address, compiles hot ones to
 * wasm in batches, runs them in place of the interpreter, and throws them away when their page is written.
 * Blocks are keyed by physical pc and checked against the virtual pc they were compiled for (their code
 * folds pc into constants); the fetch TLB gives the physical address, so satp, SFENCE.VMA and privilege
 * changes need nothing here — a flushed TLB entry makes the lookup miss and the interpreter refill it.
 */
export class Translation {
  readonly stats: TranslationStats = {
    blocks: 0,
    instructions: 0,
    guestBytes: 0,
    modules: 0,
    wasmBytes: 0,
    invalidations: 0,
    compileMs: 0,
    translatedRetired: 0,
    liveWasmBytes: 0,
    evictions: 0,
  };
  /** Blocks, heat and pages are keyed by offset into guest RAM (physical address − RAM base). */
  private readonly blocks = new Map<number, Block>();
  /** RAM offset of a page → RAM offsets of the blocks on it. A page in this map is a code page. */
  private readonly pages = new Map<number, number[]>();
  private readonly heat = new Map<number, number>();
  private readonly pending = new Map<number, [number, number]>();
  private readonly pageInvalidations = new Map<number, number>();
  private readonly threshold: number;
  private readonly maxPageInvalidations: number;
  private readonly maxWasmBytes: number;
  private readonly i32: Int32Array;
  /** Per table slot, the epoch its block was last entered in (written by the dispatcher too). */
  private readonly stamps: Int32Array;
  private epoch = 0;
  /** Every compiled block's function, at its slot; the dispatcher calls them from here. */
  private readonly table = new WebAssembly.Table({ element: "anyfunc", initial: 256 });
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private readonly dispatch: Dispatch;

  /** Units (one block, or the interpreter up to a jump) per slice: 1 lets a lockstep test compare each. */
  unitsPerSlice = Number.POSITIVE_INFINITY;
  /** Instructions the last runSlice counted against its budget. */
  sliceSteps = 0;
  /** The block the last unit ran, or null when the interpreter ran it. */
  lastBlock: Block | null = null;
  /** Why the dispatcher handed pcs back to TypeScript, and what the interpreter then ran (`--stats`). */
  readonly exits = new ExitReasons();
  /** The reason the last lookup() found nothing to run. */
  private miss = "";
  /** Whether this slice runs one unit at a time (then every jump ends a unit, and heat is counted here). */
  private unitMode = false;

  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly ram: GuestRam,
    private readonly harts: readonly Hart[],
    private readonly current: () => Hart,
    private readonly host: TranslatorHost,
    private readonly interpret: InterpretBlock,
    options: TranslationOptions = {},
  ) {
    this.threshold = options.threshold ?? 5000;
    this.maxPageInvalidations = options.maxPageInvalidations ?? 32;
    this.maxWasmBytes = options.maxWasmBytes ?? 64 << 20;
    this.i32 = new Int32Array(memory.buffer);
    this.stamps = new Int32Array(memory.buffer, BLOCK_STAMPS_BASE, BLOCK_STAMP_SLOTS);
    this.dispatch = buildDispatch(memory, this.table, interpret);
    for (const h of harts) {
      const start = (h.base + HartOffset.JUMP_CACHE) >> 2;
      this.i32.fill(-1, start, start + JUMP_CACHE_ENTRIES * 4);
    }
  }

  /** i32 index of the block interpreter's heat counter for jump target `pcLo` of hart `h`. */
  private heatSlot(h: Hart, pcLo: number): number {
    return (h.base + HartOffset.HEAT + ((pcLo >>> 1) & (HEAT_ENTRIES - 1)) * 4) >> 2;
  }

  private takeSlot(fn: BlockFunction): number {
    // Every slot taken: the least recently used quarter of the blocks make room.
    if (this.freeSlots.length === 0 && this.nextSlot >= BLOCK_STAMP_SLOTS) this.evict(BLOCK_STAMP_SLOTS / 4);
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot >= this.table.length) this.table.grow(Math.min(this.table.length, BLOCK_STAMP_SLOTS - slot));
    }
    this.table.set(slot, fn);
    this.stamps[slot] = this.epoch;
    return slot;
  }

  /**
   * Evicts the least recently entered blocks: at least `blocks` of them, and until the live wasm fits
   * three quarters of the cap. Only between blocks (no translated code runs while TypeScript does).
   */
  private evict(blocks: number): void {
    const live = [...this.blocks.values()].filter((b) => b.slot >= 0);
    live.sort((a, b) => (this.stamps[a.slot] as number) - (this.stamps[b.slot] as number));
    const target = (this.maxWasmBytes * 3) / 4;
    let evicted = 0;
    for (const block of live) {
      if (evicted >= blocks && this.stats.liveWasmBytes <= target) break;
      this.forget(block);
      evicted++;
    }
    this.stats.evictions += evicted;
  }

  /** Takes a block out of the maps; it must get hot again to be compiled again. */
  private forget(block: Block): void {
    this.drop(block);
    this.blocks.delete(block.pa);
    this.heat.delete(block.pa);
    const page = block.pa - (block.pa % PAGE);
    const pcs = this.pages.get(page);
    if (pcs === undefined) return;
    const rest = pcs.filter((pa) => pa !== block.pa);
    if (rest.length > 0) this.pages.set(page, rest);
    // No code left on the page: stores to it may take the fast path again.
    else this.pages.delete(page);
  }

  /** Where block `pcLo` would sit in a hart's jump cache (i32 index of its first word). */
  private cacheEntry(h: Hart, pcLo: number): number {
    return (h.base + HartOffset.JUMP_CACHE + jumpCacheIndex(pcLo) * 16) >> 2;
  }

  private cache(h: Hart, block: Block, pa: number): void {
    const e = this.cacheEntry(h, block.pcLo);
    this.i32[e] = block.pcLo;
    this.i32[e + 1] = block.pcHi;
    this.i32[e + 2] = pa;
    this.i32[e + 3] = (block.slot << SLOT_SHIFT) | block.length;
  }

  /** Forgets a block: out of every jump cache and the table (its slot is reused). */
  private drop(block: Block): void {
    if (block.slot < 0) return;
    for (const h of this.harts) {
      const e = this.cacheEntry(h, block.pcLo);
      if (this.i32[e + 3] === ((block.slot << SLOT_SHIFT) | block.length)) {
        this.i32[e] = -1;
        this.i32[e + 1] = -1;
      }
    }
    this.table.set(block.slot, null);
    this.freeSlots.push(block.slot);
    block.slot = -1;
    this.stats.liveWasmBytes -= block.bytes;
  }

  /**
   * Forgets every translation and all heat: guest RAM was replaced as a whole (a snapshot restore), so
   * no compiled block can be trusted, and pages that were written often start afresh.
   */
  dropAll(): void {
    for (const block of this.blocks.values()) this.drop(block);
    this.blocks.clear();
    this.pages.clear();
    this.heat.clear();
    this.pending.clear();
    this.pageInvalidations.clear();
    for (const h of this.harts) {
      const start = (h.base + HartOffset.JUMP_CACHE) >> 2;
      this.i32.fill(-1, start, start + JUMP_CACHE_ENTRIES * 4);
      const heat = (h.base + HartOffset.HEAT) >> 2;
      this.i32.fill(0, heat, heat + HEAT_ENTRIES);
    }
  }

  /** Runs up to `budget` instructions of `h`; returns BlockExit.HOST if TypeScript ended the slice. */
  runSlice(h: Hart, budget: number): BlockExit {
    let left = budget;
    let exit: number = BlockExit.NEXT;
    h.state[EPOCH] = ++this.epoch;
    const unitMode = this.unitsPerSlice !== Number.POSITIVE_INFINITY;
    this.unitMode = unitMode;
    // Free-running, the block interpreter counts entries into cold code itself and comes back only for
    // a target that is hot or may be translated (an infinite threshold: never hot).
    h.state[HOT_LIMIT] = unitMode ? 0 : this.threshold >= 2 ** 32 ? -1 : this.threshold | 0;
    for (let unit = 0; left > 0 && unit < this.unitsPerSlice; unit++) {
      // Blocks the jump cache knows run back to back in wasm; TypeScript only sees the misses.
      if (unitMode) this.lastBlock = this.peek(h);
      const ran = this.dispatch(h.base, left, unitMode ? 1 : 0x7fffffff);
      if (ran !== 0) {
        const steps = this.account(h, true);
        left -= steps;
        if (ran < 0) {
          this.exits.count("host", 0);
          exit = BlockExit.HOST;
          break;
        }
        continue;
      }
      let block = this.lookup(h);
      // Threshold 1 (tests): compile on first sight, so even straight-line code runs translated.
      if (block === null && this.threshold <= 1 && this.pending.size > 0) {
        this.compilePending();
        block = this.lookup(h);
      }
      const translated = block !== null && block.length <= left;
      this.lastBlock = translated ? block : null;
      if (translated) this.stamps[(block as Block).slot] = this.epoch;
      exit = translated ? ((block as Block).fn as BlockFunction)(h.base, left) : this.interpret(h.base, left);
      const steps = this.account(h, translated);
      left -= steps;
      if (!translated) this.exits.count(block === null ? this.miss : "budget", steps);
      else this.exits.count("jump-cache-miss", 0);
      if (exit === BlockExit.MISS) {
        // Its first access missed: the interpreter runs from there (it fills the TLB or takes the trap).
        // A block never uses the whole budget before its first instruction, but if it did, the next slice would.
        exit = left > 0 ? this.interpret(h.base, left) : BlockExit.NEXT;
        left -= this.account(h, false);
      }
      if (exit !== BlockExit.NEXT) break;
    }
    this.sliceSteps = budget - left;
    if (this.pending.size > 0 && this.batchReady()) this.compilePending();
    return exit === BlockExit.NEXT ? BlockExit.NEXT : BlockExit.HOST;
  }

  /** Moves the instructions of the last call out of SLICE_STEPS into retired; returns them. */
  private account(h: Hart, translated: boolean): number {
    const steps = h.state[SLICE_STEPS] as number;
    h.retired += steps;
    h.state[SLICE_STEPS] = 0;
    h.state[CODE_WRITTEN] = 0;
    // Cold code the dispatcher handed to the block interpreter itself.
    const interpreted = h.state[INTERP_STEPS] as number;
    const calls = h.state[INTERP_CALLS] as number;
    if (calls !== 0) {
      this.exits.add("cold-in-wasm", calls, interpreted);
      h.state[INTERP_STEPS] = 0;
      h.state[INTERP_CALLS] = 0;
    }
    if (translated) this.stats.translatedRetired += steps - interpreted;
    return steps;
  }

  /** The valid block at the hart's pc, if any, without counting an entry (lockstep reports). */
  private peek(h: Hart): Block | null {
    const pa = this.physicalPc(h);
    if (pa < 0) return null;
    const block = this.blocks.get(pa);
    return block !== undefined && block.pcLo === h.pcLo && block.pcHi === h.pcHi && block.fn !== null
      ? block
      : null;
  }

  /** RAM offset of the hart's pc through its fetch TLB, or -1 on a miss. */
  private physicalPc(h: Hart): number {
    const lo = h.pcLo;
    const set = h.state[HartOffset.FETCH_TLB >> 2] as number;
    const index = (lo >>> 12) & (TLB_ENTRIES - 1);
    const tag = (set + Access.FETCH * TLB_TABLE_BYTES + index * 8) >> 2;
    if (this.i32[tag] !== (lo & ~0xfff) || this.i32[tag + 1] !== h.pcHi) return -1;
    const addend = this.i32[
      (set + Access.FETCH * TLB_TABLE_BYTES + TLB_TAGS_BYTES + index * 4) >> 2
    ] as number;
    return ((lo + addend) >>> 0) - RAM_OFFSET;
  }

  /** Whether physical page `pa` holds translated code (stores to it must take the slow path). */
  isCode(pa: number): boolean {
    const at = pa - this.ram.base;
    return this.pages.has(at - (at % PAGE));
  }

  /**
   * Guest RAM [pa, pa + length) was written (slow-path store, atomic, or a device): drop every translation
   * on those pages, and tell translated code running now to leave after its store.
   */
  written(pa: number, length: number): void {
    const at = pa - this.ram.base;
    const first = at - (at % PAGE);
    let any = false;
    for (let page = first; page < at + length; page += PAGE) {
      const pcs = this.pages.get(page);
      if (pcs === undefined) continue;
      any = true;
      this.pages.delete(page);
      for (const p of pcs) {
        const block = this.blocks.get(p);
        if (block !== undefined) this.drop(block);
        this.blocks.delete(p);
        this.heat.delete(p);
      }
      this.stats.invalidations += pcs.length;
      this.pageInvalidations.set(page, (this.pageInvalidations.get(page) ?? 0) + 1);
    }
    if (any) this.current().state[CODE_WRITTEN] = 1;
  }

  private lookup(h: Hart): Block | null {
    const lo = h.pcLo;
    const hi = h.pcHi;
    // A miss in the fetch TLB is the interpreter's to fill (and to fault on).
    const pa = this.physicalPc(h);
    if (pa < 0) {
      this.miss = "fetch-tlb-miss";
      // Hot, but not mapped for fetch (some pages never are: the interpreter fetches them through
      // TypeScript): count afresh, rather than coming back here at every entry.
      if (!this.unitMode) this.i32[this.heatSlot(h, lo)] = 0;
      return null;
    }
    const block = this.blocks.get(pa);
    if (block !== undefined && block.pcLo === lo && block.pcHi === hi) {
      // Either way the block interpreter need not come back for this target until it is hot again.
      this.i32[this.heatSlot(h, lo)] = 0;
      if (block.fn === null) {
        this.miss = block.stop ?? "untranslatable";
        return null;
      }
      this.cache(h, block, pa);
      return block;
    }
    const heat = (this.heat.get(pa) ?? 0) + 1;
    this.miss = block === undefined ? "cold" : "other-virtual-pc";
    this.heat.set(pa, heat);
    const slot = this.heatSlot(h, lo);
    // Targets sharing a counter may make one look hot early: that only compiles it sooner.
    const hotInWasm = !this.unitMode && (this.i32[slot] as number) >>> 0 >= this.threshold;
    if (hotInWasm) this.i32[slot] = 0;
    // Hot again while it waits for its batch: a loop that is running now, worth compiling at once.
    if (hotInWasm && this.pending.has(pa)) this.urgent = true;
    if (heat === this.threshold || hotInWasm) this.pending.set(pa, [lo, hi]);
    return null;
  }

  /** Slices that ended with blocks pending since the last compilation. */
  private pendingSlices = 0;
  /** A pending block got hot a second time before its batch was compiled. */
  private urgent = false;

  /**
   * Whether to compile the pending blocks now: V8's cost per module dominates small ones (a module of
   * one block costs about as much as one of ten), so hot blocks wait a few slices to share one.
   * Lockstep tests (one unit per slice) and threshold 1 compile at once, as they always did.
   */
  private batchReady(): boolean {
    if (this.unitMode || this.threshold <= 1 || this.urgent) return true;
    return this.pending.size >= BATCH_BLOCKS || ++this.pendingSlices >= BATCH_SLICES;
  }

  /** Decodes and compiles every block that became hot during the slice, as one module. */
  private compilePending(): void {
    const start = performance.now();
    const batch: { pa: number; block: Block; insns: DecodedInsn[] }[] = [];
    for (const [pa, [lo, hi]] of this.pending) {
      const page = pa - (pa % PAGE);
      if ((this.pageInvalidations.get(page) ?? 0) >= this.maxPageInvalidations) continue;
      const bytes = this.ram.bytes.subarray(page, page + PAGE);
      const pc = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      const insns = decodeBlock(bytes, pa % PAGE, pc);
      batch.push({
        pa,
        block: {
          pa,
          bytes: 0,
          insns,
          pcLo: lo,
          pcHi: hi,
          length: insns.length,
          fn: null,
          slot: -1,
          ...(insns.length === 0 ? { stop: instructionKind(bytes, pa % PAGE) } : {}),
        },
        insns,
      });
    }
    this.pending.clear();
    this.pendingSlices = 0;
    this.urgent = false;
    const code = batch.filter((b) => b.insns.length > 0);
    if (code.length > 0) {
      const compiled = compileBlocks(
        code.map((b) => b.insns),
        this.memory,
        this.host,
      );
      code.forEach((b, i) => {
        b.block.fn = compiled.functions[i] as BlockFunction;
        b.block.slot = this.takeSlot(b.block.fn);
        b.block.bytes = compiled.bytes / code.length;
        // In every hart's jump cache at once (the dispatcher checks each hart's fetch TLB maps it):
        // otherwise the block interpreter would run it until its target got hot a second time.
        for (const h of this.harts) this.cache(h, b.block, b.pa);
      });
      this.stats.liveWasmBytes += compiled.bytes;
      this.stats.modules++;
      this.stats.wasmBytes += compiled.bytes;
      this.stats.blocks += code.length;
      for (const b of code) {
        this.stats.instructions += b.insns.length;
        for (const i of b.insns) this.stats.guestBytes += i.length;
      }
    }
    for (const { pa, block } of batch) this.register(pa, block);
    if (this.stats.liveWasmBytes > this.maxWasmBytes) this.evict(0);
    this.stats.compileMs += performance.now() - start;
  }

  private register(pa: number, block: Block): void {
    const page = pa - (pa % PAGE);
    this.blocks.set(pa, block);
    const pcs = this.pages.get(page);
    if (pcs !== undefined) {
      pcs.push(pa);
      return;
    }
    this.pages.set(page, [pa]);
    // From now on stores to this page must reach MemoryAccess.store (which calls written()).
    const hostPage = RAM_OFFSET + page;
    for (const h of this.harts) h.tlb.dropStoresTo(hostPage);
  }
}
