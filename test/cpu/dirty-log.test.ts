/**
 * Dirty-page tracking for live migration: once a pass starts, every page the guest stores to (through
 * the soft-TLB fast path, a misaligned store across two pages, an atomic), every page a device writes and
 * every page-table entry the walker updates is in the bitmap; pages nobody wrote are not. A new pass
 * starts from an empty bitmap even for pages whose store-TLB entries were filled in the last one.
 */
import assert from "node:assert/strict";
import { RiscvCpu } from "../../src/cpu/riscv/cpu.js";
import { describe, it } from "../support/test.js";
import { bType, iType, rType, SPIN, sType } from "./interpreter/encode.js";
import { EmptyBus } from "./interpreter/harness.js";
import { hart0, RAM_BASE, RAM_SIZE, setX, startAt, writeWords } from "./translator/machines.js";

const T0 = 5;
const S1 = 9;
const S2 = 18;
const S3 = 19;
const S4 = 20;
const sd = (rs1: number, rs2: number, imm: number) => sType(0x23, 3, rs1, rs2, imm);
const addi = (rd: number, rs1: number, imm: number) => iType(0x13, 0, rd, rs1, imm);
const bne = (a: number, b: number, off: number) => bType(1, a, b, off);
const amoaddW = (rs1: number, rs2: number) => rType(0x2f, 2, 0, 0, rs1, rs2);

const page = (n: number) => RAM_BASE + n * 4096;
const PAGE_A = 0x10;
const PAGE_B = 0x11;
const PAGE_C = 0x20; // the misaligned store starts here...
const PAGE_D = 0x21; // ...and ends here
const PAGE_E = 0x30;
const PAGE_F = 0x40;

/** Page numbers set in a dirty bitmap. */
function pagesOf(bitmap: Uint8Array | null): number[] {
  assert.ok(bitmap !== null);
  const out: number[] = [];
  for (let p = 0; p < bitmap.length * 8; p++) if (((bitmap[p >> 3] as number) >> (p & 7)) & 1) out.push(p);
  return out;
}

function machine(translate: boolean): RiscvCpu {
  const cpu = new RiscvCpu({
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    harts: 1,
    bus: new EmptyBus(),
    clock: { ticks: () => 0 },
  });
  if (translate) cpu.enableTranslation({ threshold: 1 });
  // Pass 1's program at 0x1000: a loop of fast-path stores, a page-crossing store, an atomic.
  writeWords([cpu], page(1), [
    addi(T0, 0, 50),
    sd(S1, T0, 0),
    addi(T0, T0, -1),
    bne(T0, 0, -8),
    sd(S2, T0, 0),
    amoaddW(S3, T0),
    SPIN,
  ]);
  // Pass 2's program at 0x2000: stores again to a page already in the store TLB, and to a new one.
  writeWords([cpu], page(2), [
    addi(T0, 0, 20),
    sd(S1, T0, 8),
    sd(S4, T0, 0),
    addi(T0, T0, -1),
    bne(T0, 0, -8),
    SPIN,
  ]);
  return cpu;
}

/** Starts the hart at `pc` (which clears its registers) with the programs' addresses in place. */
function start(cpu: RiscvCpu, pc: number): void {
  startAt([cpu], pc);
  setX([cpu], S1, BigInt(page(PAGE_A)));
  setX([cpu], S2, BigInt(page(PAGE_D) - 4));
  setX([cpu], S3, BigInt(page(PAGE_E) + 16));
  setX([cpu], S4, BigInt(page(PAGE_B)));
}

describe("dirty-page tracking", () => {
  for (const engine of ["interpreter", "translator"] as const) {
    it(`marks the pages stores, atomics, devices and page walks write, pass by pass (${engine})`, () => {
      const cpu = machine(engine === "translator");
      const h = hart0(cpu);
      // Filled before tracking starts: the pass must still see the first store to page A.
      start(cpu, page(1));
      cpu.runSlice(h, 3);
      assert.equal(cpu.startDirtyPass(), null, "no pass before the first");
      for (let i = 0; i < 20; i++) cpu.runSlice(h, 50);
      cpu.ram.written(page(PAGE_F) + 4000, 200);
      assert.deepEqual(pagesOf(cpu.ram.dirty), [PAGE_A, PAGE_C, PAGE_D, PAGE_E, PAGE_F, PAGE_F + 1]);

      const first = cpu.startDirtyPass();
      assert.deepEqual(pagesOf(first), [PAGE_A, PAGE_C, PAGE_D, PAGE_E, PAGE_F, PAGE_F + 1]);
      assert.deepEqual(pagesOf(cpu.ram.dirty), [], "a pass starts empty");
      start(cpu, page(2));
      for (let i = 0; i < 20; i++) cpu.runSlice(h, 50);
      assert.ok(cpu.ram.writePteLow(page(PAGE_E + 1), 0xcf));
      assert.deepEqual(pagesOf(cpu.startDirtyPass()), [PAGE_A, PAGE_B, PAGE_E + 1]);

      // The guest only spins now: nothing is dirty, and stopping hands back the last (empty) pass.
      for (let i = 0; i < 5; i++) cpu.runSlice(h, 50);
      assert.deepEqual(pagesOf(cpu.stopDirtyTracking()), []);
      assert.equal(cpu.ram.dirty, null);
      // Untracked writes cost nothing and record nothing.
      cpu.ram.written(page(PAGE_A), 8);
      assert.equal(cpu.ram.dirty, null);
    });
  }
});
