/**
 * The assembly cases behind rvc-fixture.json: every RV64C instruction with a spread of registers and
 * immediates (small immediate fields exhaustively, wide ones by bit pattern).
 *
 * A plain string is assembled in both modes, so the assembler alone decides both encodings. It is spelled
 * so that its uncompressed encoding is the expansion the spec defines: `add x8, x0, x9` rather than
 * `mv x8, x9` (which the assembler encodes as ADDI), `and x8, x8, x9` rather than `and x8, x9, x8`.
 * HINT encodings the assembler never chooses by itself are given as explicit pairs; there the expansion is
 * written from the spec's table of HINTs, and the assembler still produces both encodings.
 */

export type RvcCase = string | { compressed: string; expanded: string };

/** x8..x15: the registers the 3-bit fields of the compact formats can name. */
const compact = [8, 9, 10, 11, 12, 13, 14, 15];
/** x1..x31: every register a 5-bit field can name apart from x0. */
const nonZero = Array.from({ length: 31 }, (_, i) => i + 1);

/** Multiples of `step` from `from` to `to` inclusive. */
function range(from: number, to: number, step = 1): number[] {
  const values: number[] = [];
  for (let v = from; v <= to; v += step) values.push(v);
  return values;
}

/** Picks a register for the i-th case so every register (and many pairings) turns up. */
function pick(registers: number[], i: number, skew = 0): number {
  return registers[(i * (skew * 2 + 1) + skew) % registers.length] as number;
}

/** Each single bit, all ones, the minimum and two alternating patterns of a signed even offset. */
function offsetPatterns(bits: number): number[] {
  const max = 2 ** (bits - 1) - 2;
  const singles = range(1, bits - 2).map((b) => 2 ** b);
  const alternating = [0x2aaaa & max, 0x55554 & max];
  const positives = [...singles, ...alternating, max];
  return [...positives, ...positives.map((v) => -v), -(2 ** (bits - 1))];
}

function compactLoadsAndStores(): string[] {
  const cases: string[] = [];
  range(0, 248, 8).forEach((off, i) => {
    const [rd, rs1] = [pick(compact, i), pick(compact, i, 1)];
    cases.push(`fld f${rd}, ${off}(x${rs1})`, `ld x${rd}, ${off}(x${rs1})`);
    cases.push(`fsd f${rd}, ${off}(x${rs1})`, `sd x${rd}, ${off}(x${rs1})`);
  });
  range(0, 124, 4).forEach((off, i) => {
    const [rd, rs1] = [pick(compact, i, 2), pick(compact, i, 3)];
    cases.push(`lw x${rd}, ${off}(x${rs1})`, `sw x${rd}, ${off}(x${rs1})`);
  });
  return cases;
}

function quadrant0(): string[] {
  const addi4spn = range(4, 1020, 4).map((imm, i) => `addi x${pick(compact, i)}, sp, ${imm}`);
  return [...addi4spn, ...compactLoadsAndStores()];
}

function immediates(): string[] {
  const signed6 = range(-32, 31);
  const notSp = nonZero.filter((r) => r !== 2);
  return [
    "addi x0, x0, 0", // C.NOP
    ...signed6
      .filter((imm) => imm !== 0)
      .map((imm, i) => `addi x${pick(nonZero, i)}, x${pick(nonZero, i)}, ${imm}`),
    ...signed6.map((imm, i) => `addiw x${pick(nonZero, i, 1)}, x${pick(nonZero, i, 1)}, ${imm}`),
    ...signed6.map((imm, i) => `addi x${pick(nonZero, i, 2)}, x0, ${imm}`),
    ...range(-512, 496, 16)
      .filter((imm) => imm !== 0)
      .map((imm) => `addi sp, sp, ${imm}`),
    ...[...range(1, 31), ...range(0xf_ffe0, 0xf_ffff)].map((imm, i) => `lui x${pick(notSp, i)}, ${imm}`),
  ];
}

function compactArithmetic(): string[] {
  const cases: string[] = [];
  range(1, 63).forEach((shamt, i) => {
    const rd = pick(compact, i);
    cases.push(`srli x${rd}, x${rd}, ${shamt}`, `srai x${rd}, x${rd}, ${shamt}`);
  });
  range(-32, 31).forEach((imm, i) => {
    const rd = pick(compact, i, 1);
    cases.push(`andi x${rd}, x${rd}, ${imm}`);
  });
  for (const op of ["sub", "xor", "or", "and", "subw", "addw"]) {
    for (const rd of compact) for (const rs2 of compact) cases.push(`${op} x${rd}, x${rd}, x${rs2}`);
  }
  return cases;
}

function controlTransfers(): string[] {
  const branches = range(-256, 254, 2).flatMap((off, i) => [
    `beqz x${pick(compact, i)}, .${off < 0 ? "" : "+"}${off}`,
    `bnez x${pick(compact, i, 1)}, .${off < 0 ? "" : "+"}${off}`,
  ]);
  const jumps = offsetPatterns(12).map((off) => `j .${off < 0 ? "" : "+"}${off}`);
  return [...branches, ...jumps];
}

function quadrant2(): string[] {
  const cases: string[] = [];
  range(1, 63).forEach((shamt, i) => {
    const rd = pick(nonZero, i);
    cases.push(`slli x${rd}, x${rd}, ${shamt}`);
  });
  range(0, 504, 8).forEach((off, i) => {
    cases.push(`fld f${pick(range(0, 31), i)}, ${off}(sp)`, `ld x${pick(nonZero, i)}, ${off}(sp)`);
    cases.push(`fsd f${pick(range(0, 31), i, 1)}, ${off}(sp)`, `sd x${pick(range(0, 31), i, 1)}, ${off}(sp)`);
  });
  range(0, 252, 4).forEach((off, i) => {
    cases.push(`lw x${pick(nonZero, i, 2)}, ${off}(sp)`, `sw x${pick(range(0, 31), i, 2)}, ${off}(sp)`);
  });
  nonZero.forEach((r, i) => {
    cases.push(`jr x${r}`, `jalr x${r}`);
    cases.push(`add x${r}, x0, x${pick(nonZero, i, 1)}`, `add x${r}, x0, x${pick(nonZero, i, 3)}`);
    cases.push(`add x${r}, x${r}, x${pick(nonZero, i, 2)}`, `add x${r}, x${r}, x${pick(nonZero, i, 4)}`);
  });
  cases.push("ebreak");
  return cases;
}

/** Legal encodings with no effect; the assembler only emits them when asked by their compressed name. */
function hints(): RvcCase[] {
  return [
    { compressed: "c.nop 5", expanded: "addi x0, x0, 5" },
    { compressed: "c.nop -32", expanded: "addi x0, x0, -32" },
    { compressed: "c.addi x9, 0", expanded: "addi x9, x9, 0" },
    { compressed: "c.li x0, -1", expanded: "addi x0, x0, -1" },
    { compressed: "c.lui x0, 1", expanded: "lui x0, 1" },
    { compressed: "c.lui x0, 0xfffff", expanded: "lui x0, 0xfffff" },
    { compressed: "c.mv x0, x31", expanded: "add x0, x0, x31" },
    { compressed: "c.add x0, x5", expanded: "add x0, x0, x5" },
    { compressed: "c.slli x0, 63", expanded: "slli x0, x0, 63" },
    { compressed: "c.slli64 x17", expanded: "slli x17, x17, 0" },
    { compressed: "c.slli64 x0", expanded: "slli x0, x0, 0" },
    { compressed: "c.srli64 x12", expanded: "srli x12, x12, 0" },
    { compressed: "c.srai64 x15", expanded: "srai x15, x15, 0" },
  ];
}

export function rvcCases(): RvcCase[] {
  return [
    ...quadrant0(),
    ...immediates(),
    ...compactArithmetic(),
    ...controlTransfers(),
    ...quadrant2(),
    ...hints(),
  ];
}
