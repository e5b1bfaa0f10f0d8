/**
 * Conditional branches, JAL and JALR on the generated interpreter: where pc goes, what is linked, and that
 * nothing else changes. Each case runs exactly one instruction, so targets need not hold code; a few
 * cases then execute at the target to check that fetching follows the jump.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import { compareRegisters, loadRegisters } from "./check.js";
import { bType, iType, jal, jalr, NOP, Opc, sType } from "./encode.js";
import { hex64, RAM_BASE, RAM_END, RAM_SIZE, s64, TestMachine, u64 } from "./harness.js";
import { register, runs, signedImm, value64 } from "./values.js";

const m = new TestMachine();

/** 4-aligned instruction addresses anywhere in RAM (branch targets may fall outside it). */
const codeAddress = fc
  .oneof(
    fc.integer({ min: 0, max: Number(RAM_SIZE / 4n) - 1 }),
    fc.constantFrom(0, 1, 1023, 1024, Number(RAM_SIZE / 4n) - 1),
  )
  .map((k) => RAM_BASE + BigInt(k) * 4n);

const BRANCHES: { name: string; funct3: number; taken: (a: bigint, b: bigint) => boolean }[] = [
  { name: "beq", funct3: 0, taken: (a, b) => a === b },
  { name: "bne", funct3: 1, taken: (a, b) => a !== b },
  { name: "blt", funct3: 4, taken: (a, b) => s64(a) < s64(b) },
  { name: "bge", funct3: 5, taken: (a, b) => s64(a) >= s64(b) },
  { name: "bltu", funct3: 6, taken: (a, b) => a < b },
  { name: "bgeu", funct3: 7, taken: (a, b) => a >= b },
];

/** Runs one instruction at `pc`; checks registers and returns the resulting pc. */
function runOne(
  word: number,
  pc: bigint,
  sources: [number, bigint][],
  link: { rd: number; value: bigint } | null,
  context: () => string,
): bigint {
  const before = loadRegisters(m, pc, sources);
  const result = m.exec([word], pc);
  const want = [...before];
  if (link && link.rd !== 0) want[link.rd] = u64(link.value);
  compareRegisters(m.xs(), want, context);
  assert.equal(result.retired, 1, `did not retire (${context()})`);
  return m.pc;
}

describe("conditional branches", () => {
  const offset = signedImm(13).map((v) => v & ~1);
  for (const br of BRANCHES) {
    it(`${br.name}: taken and not-taken pc over random operands`, () => {
      let taken = 0;
      let total = 0;
      fc.assert(
        fc.property(
          register,
          register,
          value64,
          fc.oneof(value64, fc.constant(null)),
          offset,
          codeAddress,
          (rs1, rs2, a, bOrSame, off, pc) => {
            const b = bOrSame ?? a;
            const sources: [number, bigint][] = [
              [rs1, a],
              [rs2, b],
            ];
            const context = () =>
              `${br.name} x${rs1}=${hex64(a)}, x${rs2}=${hex64(b)}, ${off} at ${hex64(pc)}`;
            const x = (r: number) => (r === 0 ? 0n : r === rs2 ? b : r === rs1 ? a : 0n);
            const isTaken = br.taken(x(rs1), x(rs2));
            const next = runOne(bType(br.funct3, rs1, rs2, off), pc, sources, null, context);
            assert.equal(next, u64(isTaken ? pc + BigInt(off) : pc + 4n), `pc ${hex64(next)} (${context()})`);
            total++;
            if (isTaken) taken++;
          },
        ),
        runs(400),
      );
      // The operand mix must exercise both outcomes, or the property says little.
      assert.ok(taken > total / 10 && taken < total - total / 10, `${taken} of ${total} taken`);
    });
  }
});

describe("jal and jalr", () => {
  it("jal: rd = pc + 4, pc += offset", () => {
    fc.assert(
      fc.property(
        register,
        signedImm(21).map((v) => v & ~1),
        codeAddress,
        (rd, off, pc) => {
          const context = () => `jal x${rd}, ${off} at ${hex64(pc)}`;
          const next = runOne(jal(rd, off), pc, [], { rd, value: pc + 4n }, context);
          assert.equal(next, u64(pc + BigInt(off)), `pc ${hex64(next)} (${context()})`);
        },
      ),
      runs(400),
    );
  });

  it("jalr: pc = (rs1 + imm) & ~1 from the old rs1, rd = pc + 4 (including rd = rs1)", () => {
    fc.assert(
      fc.property(
        register,
        register,
        fc.boolean(),
        value64,
        signedImm(12),
        codeAddress,
        (rd, rs1, same, base, imm, pc) => {
          if (same) rd = rs1;
          const context = () => `jalr x${rd}, ${imm}(x${rs1}=${hex64(base)}) at ${hex64(pc)}`;
          const next = runOne(jalr(rd, rs1, imm), pc, [[rs1, base]], { rd, value: pc + 4n }, context);
          const target = u64((rs1 === 0 ? 0n : base) + BigInt(imm)) & ~1n;
          assert.equal(next, target, `pc ${hex64(next)} (${context()})`);
        },
      ),
      runs(400),
    );
  });

  it("jumps land where the next instruction is fetched from, across pages", () => {
    // jal to another page, jalr back to a third, then an addi there; the fetch page cache must follow.
    const start = RAM_BASE + 0x2ff8n;
    const second = RAM_BASE + 0x5004n;
    const third = RAM_END - 8n;
    m.reset(start);
    m.writeWords(start, [jal(1, Number(second - start))]);
    m.writeWords(second, [jalr(5, 6, 4)]);
    m.writeWords(third, [iType(Opc.OP_IMM, 0, 7, 7, 123)]);
    m.setX(6, third - 4n);
    m.setX(7, 1000n);
    const result = m.run(3);
    assert.equal(result.retired, 3);
    assert.equal(m.x(1), start + 4n);
    assert.equal(m.x(5), second + 4n);
    assert.equal(m.x(7), 1123n);
    assert.equal(m.pc, third + 4n);
  });

  it("a taken backward branch loops: a countdown runs the expected number of times", () => {
    const pc = RAM_BASE + 0x3000n;
    m.reset(pc);
    // loop: addi x5, x5, -1; addi x6, x6, 3; bne x5, x0, loop
    m.writeWords(pc, [iType(Opc.OP_IMM, 0, 5, 5, -1), iType(Opc.OP_IMM, 0, 6, 6, 3), bType(1, 5, 0, -8)]);
    m.setX(5, 100n);
    const result = m.run(300);
    assert.equal(result.retired, 300);
    assert.equal(m.x(5), 0n);
    assert.equal(m.x(6), 300n);
    assert.equal(m.pc, pc + 12n);
  });

  it("an instruction stored just before it runs is the one executed (no stale decode)", () => {
    const pc = RAM_BASE + 0x3800n;
    const patched = iType(Opc.OP_IMM, 0, 7, 7, 42);
    m.reset(pc + 4n);
    m.writeWords(pc, [sType(Opc.STORE, 2, 6, 5, 4), NOP]);
    assert.equal(m.run(1).retired, 1, "the NOP ran first");
    m.reset(pc);
    m.setX(5, BigInt(patched));
    m.setX(6, pc);
    assert.equal(m.run(2).retired, 2);
    assert.equal(m.x(7), 42n);
    assert.equal(m.pc, pc + 8n);
  });
});
