/**
 * Compressed instructions on the generated interpreter. For each [halfword, word] pair of the assembler
 * fixture (test/cpu/isa/rvc-fixture.json), the 16-bit form and its 32-bit expansion run from the same state
 * must give the same registers, FP registers and memory; only the pc advance (2 vs 4) and link values
 * (pc + 2 vs pc + 4) differ. Plus fetch corner cases: page-straddling and end-of-RAM instructions, and
 * reserved halfwords trapping with the halfword as mtval.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { expandCompressed } from "../../../src/cpu/riscv/isa/compressed.js";
import { describe, it, testSeed } from "../../support/test.js";
import { iType, Opc } from "./encode.js";
import { CSR, hex64, RAM_BASE, RAM_END, TestMachine, u64, Xorshift } from "./harness.js";

const fixture: [number, number][] = JSON.parse(
  readFileSync(new URL("../../../../test/cpu/isa/rvc-fixture.json", import.meta.url), "utf8"),
);

const m = new TestMachine();
const HANDLER = RAM_BASE + 0x800n;
const CODE = RAM_BASE + 0x2000n;
/** Each register points at its own 512-byte slot here when the instruction accesses memory. */
const DATA = RAM_BASE + 0x1_0000n;
const SLOT = 0x200n;
const WINDOW = 32 * Number(SLOT);
m.parkTrapsAt(HANDLER);
m.enableFpu();

interface Snapshot {
  x: bigint[];
  f: bigint[];
  pc: bigint;
  memory: Uint8Array;
  retired: number;
}

const hex = (v: number, digits: number) => `0x${v.toString(16).padStart(digits, "0")}`;

function runFrom(instruction: number, length: 2 | 4, x: bigint[], f: bigint[], memory: Uint8Array): Snapshot {
  m.reset(CODE);
  for (let r = 0; r < 32; r++) {
    m.setX(r, x[r] as bigint);
    m.setF(r, f[r] as bigint);
  }
  m.writeBytes(DATA, memory);
  if (length === 2) m.writeHalf(CODE, instruction);
  else m.writeWords(CODE, [instruction]);
  const { retired } = m.run(1);
  return {
    x: m.xs(),
    f: Array.from({ length: 32 }, (_, r) => m.f(r)),
    pc: m.pc,
    memory: m.readBytes(DATA, WINDOW),
    retired,
  };
}

const CATEGORY: Record<number, string> = {
  [Opc.OP_IMM]: "alu",
  [Opc.OP_IMM_32]: "alu",
  [Opc.OP]: "alu",
  [Opc.OP_32]: "alu",
  [Opc.LUI]: "alu",
  [Opc.LOAD]: "memory",
  [Opc.STORE]: "memory",
  7: "memory",
  39: "memory",
  [Opc.BRANCH]: "control",
  [Opc.JALR]: "control",
  [Opc.JAL]: "control",
};

function comparePair(half: number, word: number, rng: Xorshift): void {
  const category = CATEGORY[word & 0x7f] as string;
  const x =
    category === "memory"
      ? Array.from({ length: 32 }, (_, r) => DATA + BigInt(r) * SLOT)
      : Array.from({ length: 32 }, (_, r) => (r % 4 === 0 ? BigInt(rng.next() % 64) : rng.u64()));
  if (category === "control" && rng.below(2) === 0) {
    // Equal operands half the time, so c.beqz/c.bnez go both ways.
    x.fill(0n, 8, 16);
  }
  const f = Array.from({ length: 32 }, () => rng.u64());
  const memory = new Uint8Array(WINDOW).map(() => rng.next() & 0xff);
  const long = runFrom(word, 4, x, f, memory);
  const short = runFrom(half, 2, x, f, memory);
  const context = `${hex(half, 4)} vs ${hex(word, 8)}`;
  assert.equal(long.retired, 1, `32-bit form did not retire (${context})`);
  assert.equal(short.retired, 1, `16-bit form did not retire (${context})`);

  const wantX = [...long.x];
  let wantPc = CODE + 2n;
  const opcode = word & 0x7f;
  const rd = (word >>> 7) & 31;
  if (opcode === Opc.JAL || opcode === Opc.JALR) {
    if (rd !== 0) {
      assert.equal(long.x[rd], CODE + 4n, `32-bit link (${context})`);
      wantX[rd] = CODE + 2n;
    }
    wantPc = long.pc;
  } else if (opcode === Opc.BRANCH) {
    const a = x[(word >>> 15) & 31] as bigint;
    const b = (word >>> 20) & 31 ? (x[(word >>> 20) & 31] as bigint) : 0n;
    const taken = ((word >>> 12) & 7) === 0 ? a === b : a !== b;
    wantPc = taken ? long.pc : CODE + 2n;
    assert.equal(long.pc, taken ? long.pc : CODE + 4n, context);
  } else {
    assert.equal(long.pc, CODE + 4n, `32-bit form did not fall through (${context})`);
  }
  assert.equal(short.pc, wantPc, `pc ${hex64(short.pc)}, want ${hex64(wantPc)} (${context})`);
  for (let r = 0; r < 32; r++) {
    assert.equal(short.x[r], wantX[r], `x${r} (${context})`);
    assert.equal(short.f[r], long.f[r], `f${r} (${context})`);
  }
  if (category === "memory") assert.deepEqual(short.memory, long.memory, `memory (${context})`);
}

describe("compressed instructions execute like their expansions", () => {
  for (const category of ["alu", "memory", "control"]) {
    const pairs = fixture.filter(([, word]) => CATEGORY[word & 0x7f] === category);
    it(`${category}: all ${pairs.length} fixture pairs`, () => {
      assert.ok(pairs.length > 50);
      const rng = new Xorshift(testSeed() ^ (0x5eed + pairs.length));
      for (const [half, word] of pairs) comparePair(half, word, rng);
    });
  }
});

describe("fetching around page and RAM boundaries", () => {
  const addi = (rd: number, rs1: number, imm: number) => iType(Opc.OP_IMM, 0, rd, rs1, imm);
  /** c.addi x10, 1 */
  const C_ADDI_A0_1 = 0x0505;
  assert.equal(expandCompressed(C_ADDI_A0_1), addi(10, 10, 1));

  it("a 32-bit instruction straddling two pages executes whole", () => {
    const pc = RAM_BASE + 0x4ffen;
    m.reset(pc);
    m.writeWords(pc, [addi(10, 10, 0x123)]);
    m.writeWords(pc + 4n, [addi(11, 11, 7)]);
    const { retired } = m.run(2);
    assert.equal(retired, 2);
    assert.equal(m.x(10), 0x123n);
    assert.equal(m.x(11), 7n);
    assert.equal(m.pc, pc + 8n);
  });

  it("16-bit instructions at the end of a page and at the end of RAM", () => {
    const pc = RAM_BASE + 0x6ffcn;
    m.reset(pc);
    m.writeHalf(pc, C_ADDI_A0_1);
    m.writeHalf(pc + 2n, C_ADDI_A0_1);
    m.writeWords(pc + 4n, [addi(10, 10, 100)]);
    assert.equal(m.run(3).retired, 3);
    assert.equal(m.x(10), 102n);
    assert.equal(m.pc, pc + 8n);

    m.reset(RAM_END - 2n);
    m.writeHalf(RAM_END - 2n, C_ADDI_A0_1);
    assert.equal(m.run(1).retired, 1);
    assert.equal(m.x(10), 1n);
    assert.equal(m.pc, RAM_END);
  });

  it("a 32-bit instruction whose second half is past the end of RAM raises an instruction access fault", () => {
    const pc = RAM_END - 2n;
    m.reset(pc);
    m.writeHalf(pc, addi(10, 10, 1) & 0xffff);
    m.run(1);
    assert.equal(m.pc, HANDLER);
    assert.equal(m.csr(CSR.MCAUSE), 1n);
    assert.equal(m.csr(CSR.MEPC), pc);
    assert.ok([pc, pc + 2n].includes(m.csr(CSR.MTVAL)), `mtval ${hex64(m.csr(CSR.MTVAL))}`);
    assert.equal(m.x(10), 0n);
  });

  it("fetching outside RAM raises an instruction access fault with mtval = pc", () => {
    for (const pc of [RAM_END, RAM_BASE - 4n, 0x1000n, RAM_BASE + (1n << 32n), u64(-4n)]) {
      m.reset(pc);
      m.run(1);
      assert.equal(m.pc, HANDLER, hex64(pc));
      assert.equal(m.csr(CSR.MCAUSE), 1n, hex64(pc));
      assert.equal(m.csr(CSR.MEPC), pc, hex64(pc));
      assert.equal(m.csr(CSR.MTVAL), pc, hex64(pc));
    }
  });
});

describe("reserved compressed encodings", () => {
  const reserved = [
    0x0000, 0x0004, 0x8000, 0x9ffc, 0x2001, 0x6101, 0x6501, 0x9c41, 0x9c61, 0x4002, 0x6002, 0x8002,
  ];
  it("trap as illegal instructions with the halfword in mtval and pc unchanged in mepc", () => {
    for (const half of reserved) {
      assert.equal(expandCompressed(half), 0, `${hex(half, 4)} is not reserved`);
      m.reset(CODE);
      m.writeHalf(CODE, half);
      m.writeHalf(CODE + 2n, 0xffff);
      m.setCsr(CSR.MTVAL, 0xdeadn);
      const { retired } = m.run(1);
      assert.equal(m.pc, HANDLER, hex(half, 4));
      assert.equal(m.csr(CSR.MCAUSE), 2n, hex(half, 4));
      assert.equal(m.csr(CSR.MEPC), CODE, hex(half, 4));
      assert.equal(m.csr(CSR.MTVAL), BigInt(half), hex(half, 4));
      assert.equal(retired, 1, "only the handler's spin retires");
    }
  });
});
