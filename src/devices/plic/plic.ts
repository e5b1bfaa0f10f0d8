import type { InterruptLine, MmioDevice } from "../device.js";

export interface PlicOptions {
  /** Number of interrupt sources including the reserved source 0 (1..sources-1 usable). */
  sources: number;
  /** Number of contexts; on virt context 2h is hart h's M-mode (MEIP), 2h+1 its S-mode (SEIP). */
  contexts: number;
  /** One output line per context. */
  lines: InterruptLine[];
}

/** The PLIC's state as plain data (see `snapshot`). Bit vectors are 32-bit words, source i in word i >> 5. */
export interface PlicState {
  version: 1;
  sources: number;
  contexts: number;
  priority: number[];
  /** Interrupt pending bits. */
  pending: number[];
  /** Sources claimed and not yet completed (their gateway is closed). */
  claimed: number[];
  /** Input levels as the devices last drove them. */
  level: number[];
  /** Enable words, context after context. */
  enable: number[];
  threshold: number[];
}

/** Priorities and thresholds have 3 bits (WARL), as on QEMU's virt. */
const PRIORITY_MASK = 7;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;
const MAX_SOURCES = 1024;
const MAX_CONTEXTS = 15872;

/**
 * The SiFive / RISC-V platform-level interrupt controller as on QEMU's `virt`: per-source priorities,
 * pending bits, per-context enables, threshold and claim/complete. Sources are level-triggered: a rising
 * input makes the source pending (pending stays set until claimed, like the RISC-V gateway); a claim
 * closes the source's gateway until the matching complete, after which a still-high input is pending
 * again. A context's line is high while some pending, enabled source has priority above its threshold.
 * Only aligned 32-bit accesses exist.
 */
export class Plic implements MmioDevice {
  readonly name = "plic";
  readonly sources: number;
  readonly contexts: number;
  private readonly words: number;
  /** Bits of sources that exist (source 0 excluded), per word. */
  private readonly valid: Uint32Array;
  private readonly priority: Uint8Array;
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  private readonly level: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint8Array;
  /** Current level of each context's output line. */
  private readonly outputs: Uint8Array;
  private readonly lines: InterruptLine[];
  private readonly inputs: InterruptLine[];

  constructor(options: PlicOptions) {
    const { sources, contexts, lines } = options;
    if (!Number.isInteger(sources) || sources < 2 || sources > MAX_SOURCES) {
      throw new RangeError(`PLIC sources must be 2..${MAX_SOURCES}`);
    }
    if (!Number.isInteger(contexts) || contexts < 1 || contexts > MAX_CONTEXTS) {
      throw new RangeError(`PLIC contexts must be 1..${MAX_CONTEXTS}`);
    }
    if (lines.length !== contexts) throw new RangeError("PLIC needs one output line per context");
    this.sources = sources;
    this.contexts = contexts;
    this.words = (sources + 31) >> 5;
    this.valid = new Uint32Array(this.words);
    for (let irq = 1; irq < sources; irq++)
      this.valid[irq >> 5] = (this.valid[irq >> 5] as number) | bit(irq);
    this.priority = new Uint8Array(sources);
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.level = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * contexts);
    this.threshold = new Uint8Array(contexts);
    this.outputs = new Uint8Array(contexts);
    this.lines = lines.slice();
    this.inputs = [];
    for (let irq = 0; irq < sources; irq++) {
      this.inputs.push({ set: (high: boolean) => this.setSource(irq, high) });
    }
    this.update(true);
  }

  /** The input line of source `irq` (1..sources-1), to hand to a device. */
  line(irq: number): InterruptLine {
    this.checkSource(irq);
    return this.inputs[irq] as InterruptLine;
  }

  /** Drives source `irq`'s input level. */
  setSource(irq: number, high: boolean): void {
    this.checkSource(irq);
    const w = irq >> 5;
    const b = bit(irq);
    if (!high) {
      this.level[w] = (this.level[w] as number) & ~b;
      return;
    }
    if (((this.level[w] as number) & b) !== 0) return;
    this.level[w] = (this.level[w] as number) | b;
    if ((((this.claimed[w] as number) | (this.pending[w] as number)) & b) === 0) {
      this.pending[w] = (this.pending[w] as number) | b;
      this.update(false);
    }
  }

  /** Clears all registers; sources whose input is high become pending again. */
  reset(): void {
    this.priority.fill(0);
    this.claimed.fill(0);
    this.enable.fill(0);
    this.threshold.fill(0);
    for (let w = 0; w < this.words; w++) this.pending[w] = this.level[w] as number;
    this.update(true);
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0) return false;
    out[1] = 0;
    if (offset < PENDING_BASE) {
      const irq = offset >> 2;
      if (irq >= this.sources) return false;
      out[0] = this.priority[irq] as number;
      return true;
    }
    if (offset < ENABLE_BASE) {
      const w = (offset - PENDING_BASE) >> 2;
      if (w >= this.words) return false;
      out[0] = this.pending[w] as number;
      return true;
    }
    if (offset < CONTEXT_BASE) {
      const index = this.enableIndex(offset);
      if (index < 0) return false;
      out[0] = this.enable[index] as number;
      return true;
    }
    const ctx = (offset - CONTEXT_BASE) >> 12;
    if (ctx >= this.contexts) return false;
    const reg = offset & (CONTEXT_STRIDE - 1);
    if (reg === 0) out[0] = this.threshold[ctx] as number;
    else if (reg === 4) out[0] = this.claim(ctx);
    else return false;
    return true;
  }

  write(offset: number, size: number, lo: number, _hi = 0): boolean {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0) return false;
    const value = lo >>> 0;
    if (offset < PENDING_BASE) {
      const irq = offset >> 2;
      if (irq >= this.sources) return false;
      // Source 0 does not exist: its priority stays 0.
      if (irq !== 0) {
        this.priority[irq] = value & PRIORITY_MASK;
        this.update(false);
      }
      return true;
    }
    if (offset < ENABLE_BASE) {
      // Pending bits are read-only; writes are ignored.
      return (offset - PENDING_BASE) >> 2 < this.words;
    }
    if (offset < CONTEXT_BASE) {
      const index = this.enableIndex(offset);
      if (index < 0) return false;
      this.enable[index] = value & (this.valid[index % this.words] as number);
      this.update(false);
      return true;
    }
    const ctx = (offset - CONTEXT_BASE) >> 12;
    if (ctx >= this.contexts) return false;
    const reg = offset & (CONTEXT_STRIDE - 1);
    if (reg === 0) {
      this.threshold[ctx] = value & PRIORITY_MASK;
      this.update(false);
    } else if (reg === 4) this.complete(value);
    else return false;
    return true;
  }

  snapshot(): PlicState {
    return {
      version: 1,
      sources: this.sources,
      contexts: this.contexts,
      priority: Array.from(this.priority),
      pending: Array.from(this.pending),
      claimed: Array.from(this.claimed),
      level: Array.from(this.level),
      enable: Array.from(this.enable),
      threshold: Array.from(this.threshold),
    };
  }

  /** Restores a `snapshot()` of a PLIC of the same shape; throws (changing nothing) if invalid. */
  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || Array.isArray(state)) {
      throw new TypeError("plic snapshot: not an object");
    }
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("plic snapshot: unsupported version");
    if (s.sources !== this.sources || s.contexts !== this.contexts) {
      throw new RangeError("plic snapshot: taken from a PLIC of another shape");
    }
    const priority = words(s, "priority", this.sources, PRIORITY_MASK);
    const threshold = words(s, "threshold", this.contexts, PRIORITY_MASK);
    const pending = words(s, "pending", this.words, 0xffffffff);
    const claimed = words(s, "claimed", this.words, 0xffffffff);
    const level = words(s, "level", this.words, 0xffffffff);
    const enable = words(s, "enable", this.words * this.contexts, 0xffffffff);
    if (priority[0] !== 0) throw new RangeError("plic snapshot: source 0 has a priority");
    for (let w = 0; w < this.words; w++) {
      const valid = this.valid[w] as number;
      const p = pending[w] as number;
      const c = claimed[w] as number;
      if (
        (p & ~valid) !== 0 ||
        (c & ~valid) !== 0 ||
        ((level[w] as number) & ~valid) !== 0 ||
        (p & c) !== 0
      ) {
        throw new RangeError("plic snapshot: inconsistent pending/claimed/level bits");
      }
    }
    for (let i = 0; i < enable.length; i++) {
      if (((enable[i] as number) & ~(this.valid[i % this.words] as number)) !== 0) {
        throw new RangeError("plic snapshot: enable bit for a source that does not exist");
      }
    }
    this.priority.set(priority);
    this.threshold.set(threshold);
    this.pending.set(pending);
    this.claimed.set(claimed);
    this.level.set(level);
    this.enable.set(enable);
    this.update(true);
  }

  /** Highest-priority pending source enabled for `ctx` above its threshold (ties: lowest id), or 0. */
  private best(ctx: number): number {
    let best = 0;
    let bestPriority = this.threshold[ctx] as number;
    const base = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = (this.pending[w] as number) & (this.enable[base + w] as number);
      while (bits !== 0) {
        const j = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const irq = (w << 5) | j;
        const p = this.priority[irq] as number;
        if (p > bestPriority) {
          best = irq;
          bestPriority = p;
        }
      }
    }
    return best;
  }

  private claim(ctx: number): number {
    const irq = this.best(ctx);
    if (irq !== 0) {
      const w = irq >> 5;
      const b = bit(irq);
      this.pending[w] = (this.pending[w] as number) & ~b;
      this.claimed[w] = (this.claimed[w] as number) | b;
      this.update(false);
    }
    return irq;
  }

  /** Re-opens the gateway of a claimed source (from any context, enabled or not, as QEMU does). */
  private complete(irq: number): void {
    if (irq === 0 || irq >= this.sources) return;
    const w = irq >> 5;
    const b = bit(irq);
    if (((this.claimed[w] as number) & b) === 0) return;
    this.claimed[w] = (this.claimed[w] as number) & ~b;
    if (((this.level[w] as number) & b) !== 0) {
      this.pending[w] = (this.pending[w] as number) | b;
      this.update(false);
    }
  }

  /** Index into `enable` of an enable register, or -1. */
  private enableIndex(offset: number): number {
    const ctx = (offset - ENABLE_BASE) >> 7;
    const w = (offset & (ENABLE_STRIDE - 1)) >> 2;
    return ctx < this.contexts && w < this.words ? ctx * this.words + w : -1;
  }

  private update(force: boolean): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const level = this.best(ctx) !== 0 ? 1 : 0;
      if (level !== this.outputs[ctx] || force) {
        this.outputs[ctx] = level;
        (this.lines[ctx] as InterruptLine).set(level === 1);
      }
    }
  }

  private checkSource(irq: number): void {
    if (!Number.isInteger(irq) || irq < 1 || irq >= this.sources) {
      throw new RangeError(`PLIC source ${irq} does not exist (1..${this.sources - 1})`);
    }
  }
}

function bit(irq: number): number {
  return 1 << (irq & 31);
}

function words(s: Record<string, unknown>, key: string, length: number, max: number): number[] {
  const value = s[key];
  if (
    !Array.isArray(value) ||
    value.length !== length ||
    !value.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max)
  ) {
    throw new RangeError(`plic snapshot: ${key} must be ${length} integers 0..${max}`);
  }
  return value as number[];
}
