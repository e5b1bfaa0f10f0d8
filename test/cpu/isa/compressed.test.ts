import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { expandCompressed, fillCompressedTable } from "../../../src/cpu/riscv/isa/compressed.js";
import { describe, it } from "../../support/test.js";

/** Pairs made by the GNU assembler (see gen-rvc-fixture.ts); read from the source tree, tsc does not copy it. */
const fixture: [number, number][] = JSON.parse(
  readFileSync(new URL("../../../../test/cpu/isa/rvc-fixture.json", import.meta.url), "utf8"),
);

const hex = (value: number, digits: number) => `0x${value.toString(16).padStart(digits, "0")}`;

describe("expandCompressed against the assembler", () => {
  it("has a fixture of genuine 16-bit instructions", () => {
    assert.ok(fixture.length >= 2000, `only ${fixture.length} pairs`);
    for (const [half] of fixture) {
      assert.ok(Number.isInteger(half) && half >= 0 && half < 0x1_0000, `${half} is not a halfword`);
      assert.notEqual(half & 3, 3, `${hex(half, 4)} is the start of a 32-bit instruction`);
    }
  });

  it("covers every quadrant/funct3 slot except the reserved one", () => {
    const slots = new Set(fixture.map(([half]) => `q${half & 3} f${half >>> 13}`));
    for (let quadrant = 0; quadrant < 3; quadrant++) {
      for (let funct3 = 0; funct3 < 8; funct3++) {
        if (quadrant === 0 && funct3 === 4) continue;
        assert.ok(slots.has(`q${quadrant} f${funct3}`), `no case for quadrant ${quadrant} funct3 ${funct3}`);
      }
    }
  });

  it("expands every fixture halfword to the assembler's 32-bit encoding", () => {
    const wrong = fixture
      .filter(([half, word]) => expandCompressed(half) !== word)
      .map(([half, word]) => `${hex(half, 4)}: got ${hex(expandCompressed(half), 8)}, want ${hex(word, 8)}`);
    assert.deepEqual(wrong, []);
  });
});

describe("expandCompressed on reserved encodings", () => {
  const reserved: [string, number][] = [
    ["all-zero halfword (C.ADDI4SPN x8, 0)", 0x0000],
    ["C.ADDI4SPN with imm 0, rd' = x9", 0x0004],
    ["quadrant 0 funct3 100", 0x8000],
    ["quadrant 0 funct3 100, all other bits set", 0x9ffc],
    ["C.ADDIW with rd = 0", 0x2001],
    ["C.ADDIW with rd = 0, imm = -1", 0x307d],
    ["C.ADDI16SP with imm 0", 0x6101],
    ["C.LUI with imm 0, rd = x10", 0x6501],
    ["C.LUI with imm 0, rd = x0", 0x6001],
    ["quadrant 1 bit 12 = 1, funct2 11, op 10 (reserved on RV64)", 0x9c41],
    ["quadrant 1 bit 12 = 1, funct2 11, op 11 (reserved on RV64)", 0x9c61],
    ["C.LWSP with rd = 0", 0x4002],
    ["C.LWSP with rd = 0, offset 252", 0x507e],
    ["C.LDSP with rd = 0", 0x6002],
    ["C.JR with rs1 = 0", 0x8002],
  ];
  for (const [name, half] of reserved) {
    it(`${name} (${hex(half, 4)}) gives 0`, () => assert.equal(expandCompressed(half), 0));
  }
});

describe("expandCompressed over all 65536 halfwords", () => {
  const table = new Uint32Array(0x1_0000);
  fillCompressedTable(table);

  it("agrees with fillCompressedTable and never throws", () => {
    for (let half = 0; half < 0x1_0000; half++) assert.equal(expandCompressed(half), table[half]);
  });

  it("gives 0 or a 32-bit instruction (low bits 11), and 0 for quadrant 3", () => {
    for (let half = 0; half < 0x1_0000; half++) {
      const word = table[half] as number;
      if ((half & 3) === 3) assert.equal(word, 0, hex(half, 4));
      else assert.ok(word === 0 || (word & 3) === 3, `${hex(half, 4)} -> ${hex(word, 8)}`);
    }
  });

  it("gives distinct expansions except for HINTs that write x0 and small stack adjustments", () => {
    // C.ADDI x0 and C.LI x0 both mean ADDI x0, x0, imm; C.MV x0 and C.ADD x0 both mean ADD x0, x0, rs2;
    // C.ADDI sp, 16 and C.ADDI16SP 16 both mean ADDI sp, sp, 16. Any other collision is a decoding bug.
    const ADDI_SP_SP = 0x0001_0113;
    const firstHalf = new Map<number, number>();
    for (let half = 0; half < 0x1_0000; half++) {
      const word = table[half] as number;
      if (word === 0) continue;
      const other = firstHalf.get(word);
      if (other === undefined) firstHalf.set(word, half);
      else {
        const allowed = ((word >>> 7) & 31) === 0 || (word & 0xf_ffff) === ADDI_SP_SP;
        assert.ok(allowed, `${hex(other, 4)} and ${hex(half, 4)} -> ${hex(word, 8)}`);
      }
    }
  });

  it("rejects a table that is too small", () => {
    assert.throws(() => fillCompressedTable(new Uint32Array(100)), RangeError);
  });
});
