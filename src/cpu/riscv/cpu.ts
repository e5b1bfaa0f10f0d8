import type { GuestClock, MmioBus, SliceRequests, StoreWatcher } from "./bus.js";
import { Hart } from "./hart.js";
import type { RunExit } from "./interpreter/build.js";
import { compiledInterpreter, RVC_TABLE_ENTRIES } from "./interpreter/shared.js";
import { MemoryAccess } from "./memory-access.js";
import { GuestRam } from "./memory-map.js";
import { HartOffset, MAX_HARTS, RAM_OFFSET, RVC_TABLE_BASE } from "./state.js";
import { SystemUnit } from "./system.js";
import { Translation, type TranslationOptions } from "./translator/translation.js";

export interface CpuOptions {
  /** Guest physical address of RAM and its size (a multiple of 4 KiB). */
  ramBase: number;
  ramSize: number;
  harts: number;
  bus: MmioBus;
  clock: GuestClock;
}

const PAGE = 65536;
/** A page of slack after RAM: the fetch fast path may read 2 bytes past the last instruction. */
const GUARD = PAGE;

/**
 * A RISC-V RV64GC processor complex: linear memory holding hart state and guest RAM, the generated wasm
 * interpreter, and the TypeScript slow paths it calls. Runs one hart slice at a time; scheduling across
 * harts, timers and devices belongs to the engine.
 */
export class RiscvCpu {
  readonly memory: WebAssembly.Memory;
  readonly ram: GuestRam;
  readonly harts: Hart[] = [];
  readonly access: MemoryAccess;
  readonly system: SystemUnit;
  /** Devices and hypercalls set endSlice to get the engine's attention; runSlice clears it. */
  readonly attention: SliceRequests = { endSlice: false };
  private readonly run: (hart: number, budget: number) => number;
  private readonly hostImports: Record<string, (...args: number[]) => number>;
  /** Instructions the last slice counted against its budget (those TypeScript retires itself — CSR
   *  access, xRET, WFI — are not counted: a budget means the same on both engines). */
  sliceSteps = 0;
  /** The translating engine, once enableTranslation() was called. */
  translation: Translation | null = null;
  private current: Hart;

  constructor(readonly options: CpuOptions) {
    if (options.harts < 1 || options.harts > MAX_HARTS) throw new RangeError(`1..${MAX_HARTS} harts`);
    if (options.ramSize % 4096 !== 0 || options.ramSize <= 0) throw new RangeError("RAM size must be pages");
    const pages = Math.ceil((RAM_OFFSET + options.ramSize + GUARD) / PAGE);
    if (pages > 65536) throw new RangeError("RAM too large for a 32-bit wasm memory");
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.ram = new GuestRam(this.memory, options.ramBase, options.ramSize);
    const interpreter = compiledInterpreter();
    new Uint32Array(this.memory.buffer, RVC_TABLE_BASE, RVC_TABLE_ENTRIES).set(interpreter.rvcTable);
    for (let i = 0; i < options.harts; i++) {
      this.harts.push(new Hart(i, this.memory, this.ram, options.clock));
    }
    this.current = this.harts[0] as Hart;
    this.access = new MemoryAccess(this.memory, this.ram, options.bus, () => this.current, this.attention);
    this.system = new SystemUnit(() => this.current, this.attention);
    this.hostImports = {
      fetch: () => this.access.fetch(),
      load: (size: number) => this.access.load(size),
      store: (size: number) => this.access.store(size),
      probe: (access: number, size: number) => this.access.probe(access, size),
      raise: (cause: number) => this.system.raise(cause),
      system: (insn: number) => this.system.execute(insn),
      fpu: (insn: number) => this.system.floatingPoint(insn),
    };
    const instance = new WebAssembly.Instance(interpreter.module, {
      env: { memory: this.memory },
      host: this.hostImports,
    });
    this.run = instance.exports.run as (hart: number, budget: number) => number;
  }

  /**
   * Switches to binary translation: hot blocks run as compiled wasm, the rest on an interpreter that
   * returns at block boundaries. Writes to RAM holding translated code (stores, atomics, device DMA,
   * loaders) invalidate it.
   */
  enableTranslation(options: TranslationOptions = {}): Translation {
    if (this.translation !== null) return this.translation;
    const instance = new WebAssembly.Instance(compiledInterpreter().blockModule, {
      env: { memory: this.memory },
      host: this.hostImports,
    });
    const translation = new Translation(
      this.memory,
      this.ram,
      this.harts,
      () => this.current,
      {
        load: (size) => this.access.load(size),
        store: (size) => this.access.store(size),
        probe: (access, size) => this.access.probe(access, size),
        raise: (cause) => this.system.raise(cause),
        fpu: (insn) => this.system.floatingPoint(insn),
        csr: (insn) => this.system.csrInBlock(insn),
      },
      instance.exports.run as (hart: number, budget: number) => number,
      options,
    );
    this.access.code = translation;
    this.ram.onWrite = (paddr, length) => translation.written(paddr, length);
    this.translation = translation;
    return translation;
  }

  /**
   * RAM and hart state were replaced behind the interpreter's back (a snapshot restore): every TLB
   * entry and every translated block describes the old contents, so all of them go.
   */
  dropCaches(): void {
    for (const h of this.harts) {
      h.tlb.flushAll();
      h.selectTlb();
    }
    this.translation?.dropAll();
  }

  /**
   * Starts a dirty-tracking pass (live migration): returns the pages written since the last pass began
   * (null on the first), then clears the bitmap and drops every hart's store-TLB entries, so that each
   * page's first store of the new pass takes the slow path, which marks the page and refills the entry.
   * Call between slices only.
   */
  startDirtyPass(): Uint8Array | null {
    const previous = this.ram.dirty;
    this.ram.dirty = new Uint8Array(Math.ceil(this.ram.size / 4096 / 8));
    for (const h of this.harts) h.tlb.flushStores();
    return previous;
  }

  /** Ends dirty tracking: the pages written since the last pass began. */
  stopDirtyTracking(): Uint8Array | null {
    const last = this.ram.dirty;
    this.ram.dirty = null;
    return last;
  }

  /** Stores into this RAM page end the fast path and call `watcher` (HTIF mailboxes). */
  watchStores(paddr: number, watcher: StoreWatcher): void {
    this.access.watch(paddr, watcher);
    for (const h of this.harts) h.tlb.flushAll();
  }

  /**
   * Runs up to `budget` instructions of `hart`. Returns how many retired and why it stopped
   * (RunExit.BUDGET, or RunExit.HOST when TypeScript asked to end the slice: WFI, a stop request...).
   */
  runSlice(hart: Hart, budget: number): RunExit {
    this.current = hart;
    hart.callsThisSlice = 0;
    this.attention.endSlice = false;
    hart.state[HartOffset.SLICE_STEPS >> 2] = 0;
    const exit = (
      this.translation === null ? this.run(hart.base, budget) : this.translation.runSlice(hart, budget)
    ) as RunExit;
    this.sliceSteps = (this.translation?.sliceSteps ?? 0) + hart.sliceSteps();
    hart.retired += hart.sliceSteps();
    hart.state[HartOffset.SLICE_STEPS >> 2] = 0;
    // Another hart may store between this hart's LR and SC: a reservation never survives a slice (with
    // one hart nothing else stores, and the translator's one-block slices in lockstep tests keep LR/SC).
    if (this.harts.length > 1) hart.state[HartOffset.RESERVATION_VALID >> 2] = 0;
    return exit;
  }
}
