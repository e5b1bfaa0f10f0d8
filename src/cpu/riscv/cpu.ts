import type { GuestClock, MmioBus, SliceRequests, StoreWatcher } from "./bus.js";
import { Hart } from "./hart.js";
import type { RunExit } from "./interpreter/build.js";
import { compiledInterpreter, RVC_TABLE_ENTRIES } from "./interpreter/shared.js";
import { MemoryAccess } from "./memory-access.js";
import { GuestRam } from "./memory-map.js";
import { HartOffset, MAX_HARTS, RAM_OFFSET, RVC_TABLE_BASE } from "./state.js";
import { SystemUnit } from "./system.js";

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
    const instance = new WebAssembly.Instance(interpreter.module, {
      env: { memory: this.memory },
      host: {
        fetch: () => this.access.fetch(),
        load: (size: number) => this.access.load(size),
        store: (size: number) => this.access.store(size),
        probe: (access: number, size: number) => this.access.probe(access, size),
        raise: (cause: number) => this.system.raise(cause),
        system: (insn: number) => this.system.execute(insn),
        fpu: (insn: number) => this.system.floatingPoint(insn),
      },
    });
    this.run = instance.exports.run as (hart: number, budget: number) => number;
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
    const exit = this.run(hart.base, budget) as RunExit;
    hart.retired += hart.sliceSteps();
    hart.state[HartOffset.SLICE_STEPS >> 2] = 0;
    // Another hart may store between this hart's LR and SC: a reservation never survives a slice.
    hart.state[HartOffset.RESERVATION_VALID >> 2] = 0;
    return exit;
  }
}
