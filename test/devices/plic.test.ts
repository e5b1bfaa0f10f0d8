import assert from "node:assert/strict";
import fc from "fast-check";
import type { InterruptLine } from "../../src/devices/device.js";
import { Plic } from "../../src/devices/plic/plic.js";
import { PLIC_SOURCES, VIRT_IRQ } from "../../src/machine/riscv-virt/memory-map.js";
import { describe, it } from "../support/test.js";

class Line implements InterruptLine {
  level = false;
  set(level: boolean): void {
    this.level = level;
  }
}

const priorityAt = (irq: number) => 4 * irq;
const pendingAt = (word: number) => 0x1000 + 4 * word;
const enableAt = (ctx: number, word: number) => 0x2000 + 0x80 * ctx + 4 * word;
const thresholdAt = (ctx: number) => 0x20_0000 + 0x1000 * ctx;
const claimAt = (ctx: number) => 0x20_0004 + 0x1000 * ctx;

function make(sources = PLIC_SOURCES, contexts = 4) {
  const lines = Array.from({ length: contexts }, () => new Line());
  const plic = new Plic({ sources, contexts, lines });
  const out = new Uint32Array(2);
  const rd = (offset: number): number => {
    assert.ok(plic.read(offset, 4, out), `read 0x${offset.toString(16)}`);
    return out[0] as number;
  };
  const wr = (offset: number, value: number): void => {
    assert.ok(plic.write(offset, 4, value, 0), `write 0x${offset.toString(16)}`);
  };
  const enable = (ctx: number, ...irqs: number[]) => {
    for (const irq of irqs) wr(enableAt(ctx, irq >> 5), rd(enableAt(ctx, irq >> 5)) | (1 << (irq & 31)));
  };
  const claim = (ctx: number) => rd(claimAt(ctx));
  const complete = (ctx: number, irq: number) => wr(claimAt(ctx), irq);
  return { plic, lines, rd, wr, enable, claim, complete };
}

describe("PLIC: registers", () => {
  it("priorities are 3-bit WARL; source 0 has none", () => {
    const { rd, wr } = make();
    wr(priorityAt(5), 0xffff_ffff);
    assert.equal(rd(priorityAt(5)), 7);
    wr(priorityAt(5), 9);
    assert.equal(rd(priorityAt(5)), 1);
    wr(priorityAt(0), 7);
    assert.equal(rd(priorityAt(0)), 0);
    wr(priorityAt(PLIC_SOURCES - 1), 3);
    assert.equal(rd(priorityAt(PLIC_SOURCES - 1)), 3);
  });

  it("thresholds are 3-bit WARL per context; enables mask source 0 and missing sources", () => {
    const { rd, wr } = make(40, 2);
    wr(thresholdAt(1), 0xf);
    assert.equal(rd(thresholdAt(1)), 7);
    assert.equal(rd(thresholdAt(0)), 0);
    wr(enableAt(0, 0), 0xffff_ffff);
    wr(enableAt(0, 1), 0xffff_ffff);
    assert.equal(rd(enableAt(0, 0)), 0xffff_fffe);
    assert.equal(rd(enableAt(0, 1)), 0xff, "sources 32..39 only");
    assert.equal(rd(enableAt(1, 0)), 0);
  });

  it("rejects other sizes, misaligned offsets and registers that do not exist", () => {
    const { plic } = make(40, 2);
    const out = new Uint32Array(2);
    const bad: [number, number][] = [
      [0x4, 1],
      [0x4, 2],
      [0x4, 8],
      [0x6, 4],
      [priorityAt(40), 4],
      [pendingAt(2), 4],
      [0x1ffc, 4],
      [enableAt(0, 2), 4],
      [enableAt(2, 0), 4],
      [0x1f_fffc, 4],
      [thresholdAt(0) + 8, 4],
      [thresholdAt(0) + 0xffc, 4],
      [thresholdAt(2), 4],
      [claimAt(2), 4],
      [0x60_0000, 4],
      [-4, 4],
    ];
    for (const [offset, size] of bad) {
      assert.equal(plic.read(offset, size, out), false, `read 0x${offset.toString(16)}/${size}`);
      assert.equal(plic.write(offset, size, 0, 0), false, `write 0x${offset.toString(16)}/${size}`);
    }
    assert.ok(plic.read(pendingAt(1), 4, out));
    assert.ok(plic.write(pendingAt(1), 4, 0xffff_ffff, 0), "pending writes are ignored, not faults");
    assert.ok(plic.read(pendingAt(1), 4, out));
    assert.equal(out[0], 0);
  });

  it("line() hands out a source's input; bad sources throw", () => {
    const { plic, rd } = make();
    plic.line(VIRT_IRQ.UART0).set(true);
    assert.equal(rd(pendingAt(0)), 1 << VIRT_IRQ.UART0);
    assert.equal(plic.line(VIRT_IRQ.UART0), plic.line(VIRT_IRQ.UART0));
    assert.throws(() => plic.line(0), RangeError);
    assert.throws(() => plic.line(PLIC_SOURCES), RangeError);
    assert.throws(() => plic.setSource(-1, true), RangeError);
    assert.throws(() => new Plic({ sources: 8, contexts: 2, lines: [new Line()] }), RangeError);
  });
});

describe("PLIC: claim and complete", () => {
  it("claims by priority, ties going to the lowest id", () => {
    const { wr, enable, claim, plic, lines } = make();
    const prio: [number, number][] = [
      [3, 2],
      [5, 5],
      [7, 5],
      [40, 6],
      [64, 1],
    ];
    for (const [irq, p] of prio) {
      wr(priorityAt(irq), p);
      enable(1, irq);
      plic.setSource(irq, true);
    }
    assert.equal(lines[1]?.level, true);
    assert.equal(lines[0]?.level, false, "not enabled for context 0");
    assert.deepEqual([claim(1), claim(1), claim(1), claim(1), claim(1), claim(1)], [40, 5, 7, 3, 64, 0]);
    assert.equal(lines[1]?.level, false);
  });

  it("the threshold hides sources at or below it", () => {
    const { wr, enable, claim, plic, lines, rd } = make();
    wr(priorityAt(9), 3);
    enable(0, 9);
    wr(thresholdAt(0), 3);
    plic.setSource(9, true);
    assert.equal(lines[0]?.level, false);
    assert.equal(claim(0), 0);
    assert.equal(rd(pendingAt(0)), 1 << 9, "still pending");
    wr(thresholdAt(0), 2);
    assert.equal(lines[0]?.level, true);
    wr(priorityAt(9), 0);
    assert.equal(lines[0]?.level, false, "priority 0 never interrupts");
    wr(priorityAt(9), 1);
    wr(thresholdAt(0), 0);
    assert.equal(claim(0), 9);
  });

  it("a level source still high at complete is pending again", () => {
    const { wr, enable, claim, complete, plic, lines, rd } = make();
    wr(priorityAt(10), 1);
    enable(1, 10);
    plic.setSource(10, true);
    assert.equal(claim(1), 10);
    assert.equal(rd(pendingAt(0)), 0, "claim cleared the pending bit");
    assert.equal(lines[1]?.level, false, "gateway closed until complete");
    complete(1, 10);
    assert.equal(rd(pendingAt(0)), 1 << 10);
    assert.equal(lines[1]?.level, true);
    assert.equal(claim(1), 10);
    plic.setSource(10, false);
    complete(1, 10);
    assert.equal(rd(pendingAt(0)), 0);
    assert.equal(lines[1]?.level, false);
  });

  it("edges while claimed are absorbed by the closed gateway", () => {
    const { wr, enable, claim, complete, plic, rd } = make();
    wr(priorityAt(4), 1);
    enable(0, 4);
    plic.setSource(4, true);
    assert.equal(claim(0), 4);
    plic.setSource(4, false);
    plic.setSource(4, true);
    plic.setSource(4, false);
    assert.equal(rd(pendingAt(0)), 0);
    complete(0, 4);
    assert.equal(rd(pendingAt(0)), 0);
    assert.equal(claim(0), 0);
  });

  it("a pending bit stays until claimed even if the input drops", () => {
    const { wr, enable, claim, plic, lines } = make();
    wr(priorityAt(2), 1);
    enable(0, 2);
    plic.setSource(2, true);
    plic.setSource(2, false);
    assert.equal(lines[0]?.level, true);
    assert.equal(claim(0), 2);
  });

  it("completing a source that is not claimed, or id 0 / out of range, does nothing", () => {
    const { wr, enable, claim, complete, plic, rd } = make();
    wr(priorityAt(6), 1);
    enable(0, 6);
    plic.setSource(6, true);
    complete(0, 6);
    complete(0, 0);
    complete(0, PLIC_SOURCES);
    complete(0, 0xffff_ffff);
    assert.equal(rd(pendingAt(0)), 1 << 6);
    assert.equal(claim(0), 6);
    assert.equal(claim(0), 0);
  });

  it("contexts are independent; a claim by one takes the source from all", () => {
    const { wr, rd, enable, claim, complete, plic, lines } = make(PLIC_SOURCES, 4);
    for (const irq of [1, 2, 3]) wr(priorityAt(irq), 1);
    enable(0, 1);
    enable(1, 2);
    enable(2, 3);
    enable(3, 3);
    wr(thresholdAt(3), 1);
    plic.setSource(2, true);
    assert.deepEqual(
      lines.map((l) => l.level),
      [false, true, false, false],
    );
    plic.setSource(1, true);
    assert.deepEqual(
      lines.map((l) => l.level),
      [true, true, false, false],
    );
    assert.equal(claim(0), 1);
    assert.deepEqual(
      lines.map((l) => l.level),
      [false, true, false, false],
    );
    assert.equal(rd(thresholdAt(1)), 0);
    wr(thresholdAt(3), 0);
    plic.setSource(3, true);
    assert.equal(lines[2]?.level, true);
    assert.equal(lines[3]?.level, true);
    assert.equal(claim(3), 3);
    assert.equal(lines[2]?.level, false, "claimed through context 3");
    assert.equal(claim(2), 0);
    complete(3, 3);
    assert.equal(lines[2]?.level, true, "still high: pending again for both");
    assert.equal(claim(1), 2);
  });

  it("serves Linux's flow for the UART on hart 0's S-mode context", () => {
    const { wr, rd, plic, lines } = make(PLIC_SOURCES, 2);
    const uart = plic.line(VIRT_IRQ.UART0);
    for (let irq = 1; irq < PLIC_SOURCES; irq++) wr(priorityAt(irq), 1);
    wr(thresholdAt(1), 0);
    wr(enableAt(1, 0), 1 << VIRT_IRQ.UART0);
    uart.set(true);
    assert.equal(lines[1]?.level, true);
    const irq = rd(claimAt(1));
    assert.equal(irq, VIRT_IRQ.UART0);
    uart.set(false); // the handler drained the UART
    wr(claimAt(1), irq);
    assert.equal(lines[1]?.level, false);
    assert.equal(lines[0]?.level, false);
  });
});

describe("PLIC: snapshot and reset", () => {
  it("round-trips through JSON, claims included", () => {
    const a = make();
    a.wr(priorityAt(8), 4);
    a.wr(priorityAt(33), 2);
    a.enable(1, 8, 33);
    a.wr(thresholdAt(1), 1);
    a.plic.setSource(8, true);
    a.plic.setSource(33, true);
    assert.equal(a.claim(1), 8);
    const state = JSON.parse(JSON.stringify(a.plic.snapshot()));
    const b = make();
    b.plic.restore(state);
    assert.deepEqual(b.plic.snapshot(), a.plic.snapshot());
    assert.equal(b.lines[1]?.level, true);
    assert.equal(b.claim(1), 33);
    b.complete(1, 8);
    assert.equal(b.claim(1), 8, "source 8 was still high at complete");
  });

  it("rejects malformed snapshots without changing state", () => {
    const { plic } = make(40, 2);
    plic.setSource(3, true);
    const before = plic.snapshot();
    const good = plic.snapshot();
    const bad: unknown[] = [
      null,
      {},
      { ...good, version: 0 },
      { ...good, sources: 41 },
      { ...good, contexts: 4 },
      { ...good, priority: good.priority.slice(1) },
      { ...good, priority: [1, ...good.priority.slice(1)] },
      { ...good, priority: [0, 8, ...good.priority.slice(2)] },
      { ...good, threshold: [0, -1] },
      { ...good, pending: [1, 0] },
      { ...good, pending: [0, 0x100] },
      { ...good, claimed: [8, 0] }, // both pending and claimed
      { ...good, enable: [1, 0, 0, 0] },
      { ...good, enable: [0, 0, 0, 2 ** 32] },
      { ...good, level: "x" },
    ];
    for (const state of bad) {
      assert.throws(() => plic.restore(state), JSON.stringify(state));
      assert.deepEqual(plic.snapshot(), before);
    }
  });

  it("reset clears registers; inputs still high become pending", () => {
    const { plic, rd, wr, enable, lines } = make();
    wr(priorityAt(5), 7);
    enable(0, 5);
    plic.setSource(5, true);
    plic.setSource(6, true);
    plic.setSource(6, false);
    assert.equal(lines[0]?.level, true);
    plic.reset();
    assert.equal(lines[0]?.level, false);
    assert.equal(rd(priorityAt(5)), 0);
    assert.equal(rd(enableAt(0, 0)), 0);
    assert.equal(rd(pendingAt(0)), 1 << 5);
  });
});

/** A reference PLIC kept as one record per source and per context, evaluated from scratch each step. */
class ModelPlic {
  readonly src: { priority: number; level: boolean; pending: boolean; claimed: boolean }[];
  readonly ctx: { enabled: Set<number>; threshold: number }[];

  constructor(
    readonly sources: number,
    contexts: number,
  ) {
    this.src = Array.from({ length: sources }, () => ({
      priority: 0,
      level: false,
      pending: false,
      claimed: false,
    }));
    this.ctx = Array.from({ length: contexts }, () => ({ enabled: new Set<number>(), threshold: 0 }));
  }

  /** Level gateway: an open gateway with its input high forwards a request. */
  settle(): void {
    for (const s of this.src.slice(1)) if (s.level && !s.claimed) s.pending = true;
  }

  candidates(c: number): number[] {
    const ctx = this.ctx[c] as ModelPlic["ctx"][number];
    return [...ctx.enabled]
      .filter((id) => this.src[id]?.pending && (this.src[id]?.priority ?? 0) > ctx.threshold)
      .sort((x, y) => (this.src[y]?.priority ?? 0) - (this.src[x]?.priority ?? 0) || x - y);
  }

  claim(c: number): number {
    const id = this.candidates(c)[0] ?? 0;
    if (id !== 0) Object.assign(this.src[id] as object, { pending: false, claimed: true });
    return id;
  }

  enableWord(c: number, w: number): number {
    let v = 0;
    for (const id of this.ctx[c]?.enabled ?? []) if (id >> 5 === w) v += 2 ** (id & 31);
    return v;
  }

  setEnableWord(c: number, w: number, value: number): void {
    const set = this.ctx[c]?.enabled as Set<number>;
    for (let j = 0; j < 32; j++) {
      const id = w * 32 + j;
      if (id === 0 || id >= this.sources) continue;
      if (Math.floor(value / 2 ** j) % 2 === 1) set.add(id);
      else set.delete(id);
    }
  }

  pendingWord(w: number): number {
    let v = 0;
    this.src.forEach((s, id) => {
      if (s.pending && id >> 5 === w) v += 2 ** (id & 31);
    });
    return v;
  }
}

type PlicOp =
  | { kind: "source"; irq: number; high: boolean }
  | { kind: "priority"; irq: number; value: number }
  | { kind: "enable"; ctx: number; word: number; value: number }
  | { kind: "threshold"; ctx: number; value: number }
  | { kind: "claim"; ctx: number }
  | { kind: "complete"; ctx: number; pick: number; raw: number | null }
  | { kind: "read"; offset: number }
  | { kind: "snapshot" }
  | { kind: "reset" };

describe("PLIC: fuzz against a reference model", () => {
  it("random accesses and source toggles match the model", () => {
    const SOURCES = 40;
    const CONTEXTS = 3;
    const WORDS = 2;
    const irqArb = fc.integer({ min: 1, max: SOURCES - 1 });
    const ctxArb = fc.integer({ min: 0, max: CONTEXTS - 1 });
    const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 15 }));
    const offsetArb = fc.oneof(
      fc.integer({ min: 0, max: SOURCES + 2 }).map(priorityAt),
      fc.integer({ min: 0, max: WORDS }).map(pendingAt),
      fc
        .tuple(fc.integer({ min: 0, max: CONTEXTS }), fc.integer({ min: 0, max: WORDS }))
        .map(([c, w]) => enableAt(c, w)),
      fc.integer({ min: 0, max: CONTEXTS }).map(thresholdAt),
      fc.integer({ min: 0, max: 0x60_0000 }),
    );
    const opArb: fc.Arbitrary<PlicOp> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant("source" as const), irq: irqArb, high: fc.boolean() }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("priority" as const),
          irq: fc.integer({ min: 0, max: SOURCES - 1 }),
          value: u32,
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("enable" as const),
          ctx: ctxArb,
          word: fc.integer({ min: 0, max: WORDS - 1 }),
          value: u32,
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("threshold" as const), ctx: ctxArb, value: u32 }),
      },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("claim" as const), ctx: ctxArb }) },
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant("complete" as const),
          ctx: ctxArb,
          pick: fc.nat(),
          raw: fc.option(fc.integer({ min: 0, max: SOURCES + 4 })),
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("read" as const), offset: offsetArb }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("snapshot" as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const) }) },
    );

    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200, size: "max" }), (ops) => {
        const lines = Array.from({ length: CONTEXTS }, () => new Line());
        const plic = new Plic({ sources: SOURCES, contexts: CONTEXTS, lines });
        const model = new ModelPlic(SOURCES, CONTEXTS);
        const out = new Uint32Array(2);
        const claimedIds = () => model.src.flatMap((s, id) => (s.claimed ? [id] : []));
        for (const op of ops) {
          switch (op.kind) {
            case "source":
              plic.setSource(op.irq, op.high);
              (model.src[op.irq] as ModelPlic["src"][number]).level = op.high;
              break;
            case "priority":
              assert.ok(plic.write(priorityAt(op.irq), 4, op.value, 0));
              if (op.irq !== 0) (model.src[op.irq] as ModelPlic["src"][number]).priority = op.value % 8;
              break;
            case "enable":
              assert.ok(plic.write(enableAt(op.ctx, op.word), 4, op.value, 0));
              model.setEnableWord(op.ctx, op.word, op.value);
              break;
            case "threshold":
              assert.ok(plic.write(thresholdAt(op.ctx), 4, op.value, 0));
              (model.ctx[op.ctx] as ModelPlic["ctx"][number]).threshold = op.value % 8;
              break;
            case "claim":
              assert.ok(plic.read(claimAt(op.ctx), 4, out));
              assert.equal(out[0], model.claim(op.ctx), "claimed id");
              break;
            case "complete": {
              const open = claimedIds();
              const id = op.raw ?? (open.length > 0 ? (open[op.pick % open.length] as number) : 0);
              assert.ok(plic.write(claimAt(op.ctx), 4, id, 0));
              const s = model.src[id];
              if (id !== 0 && s) s.claimed = false;
              break;
            }
            case "read": {
              const ok = plic.read(op.offset, 4, out);
              const o = op.offset;
              let expected: number | null = null;
              if (o % 4 === 0) {
                if (o < 4 * SOURCES) expected = model.src[o / 4]?.priority ?? 0;
                else if (o >= 0x1000 && o < 0x1000 + 4 * WORDS)
                  expected = model.pendingWord((o - 0x1000) / 4);
                else if (o >= 0x2000 && o < 0x2000 + 0x80 * CONTEXTS && o % 0x80 < 4 * WORDS) {
                  expected = model.enableWord(Math.floor((o - 0x2000) / 0x80), (o % 0x80) / 4);
                } else if (o >= 0x20_0000 && o < 0x20_0000 + 0x1000 * CONTEXTS && o % 0x1000 === 0) {
                  expected = model.ctx[(o - 0x20_0000) / 0x1000]?.threshold ?? 0;
                } else if (o >= 0x20_0000 && o < 0x20_0000 + 0x1000 * CONTEXTS && o % 0x1000 === 4) {
                  expected = model.claim((o - 0x20_0004) / 0x1000);
                }
              }
              assert.equal(ok, expected !== null, `read 0x${o.toString(16)} exists`);
              if (ok) assert.equal(out[0], expected, `read 0x${o.toString(16)}`);
              break;
            }
            case "snapshot":
              plic.restore(JSON.parse(JSON.stringify(plic.snapshot())));
              break;
            case "reset":
              plic.reset();
              for (const s of model.src) Object.assign(s, { priority: 0, claimed: false, pending: s.level });
              for (const c of model.ctx) Object.assign(c, { enabled: new Set<number>(), threshold: 0 });
              break;
          }
          model.settle();
          for (let w = 0; w < WORDS; w++) {
            assert.ok(plic.read(pendingAt(w), 4, out));
            assert.equal(out[0], model.pendingWord(w), `pending word ${w}`);
          }
          for (let c = 0; c < CONTEXTS; c++) {
            assert.equal(lines[c]?.level, model.candidates(c).length > 0, `context ${c} line`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
