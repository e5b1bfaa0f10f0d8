/**
 * RV64I/M integer computation on the generated interpreter, against BigInt references written from the
 * spec's definitions (exact products, truncating division, the M extension's table of division by zero and
 * overflow results), not from the IR.
 */

import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import { checkRegisterCase } from "./check.js";
import { iType, Opc, rType, shiftImm, uType } from "./encode.js";
import { hex64, RAM_BASE, RAM_SIZE, s64, TestMachine, u64 } from "./harness.js";
import { EDGES32, EDGES64, register, registers3, runs, signedImm, value64 } from "./values.js";

const m = new TestMachine();
const CODE = RAM_BASE + 0x1000n;

const P63 = 1n << 63n;
const INT64_MIN = -P63;
/** Sign-extend the low `bits` bits, as an unsigned 64-bit value. */
const sx = (v: bigint, bits: number) => u64(BigInt.asIntN(bits, v));
const lo32s = (v: bigint) => BigInt.asIntN(32, v);
const lo32u = (v: bigint) => BigInt.asUintN(32, v);
const flag = (b: boolean) => (b ? 1n : 0n);
/** Quotient rounded toward zero, from magnitudes (BigInt division is not trusted for the sign). */
const truncDiv = (a: bigint, b: bigint) => {
  const q = (a < 0n ? -a : a) / (b < 0n ? -b : b);
  return a < 0n !== b < 0n ? -q : q;
};
/** Remainder with the sign of the dividend: a - b * trunc(a / b). */
const truncRem = (a: bigint, b: bigint) => a - b * truncDiv(a, b);

interface RegisterOp {
  name: string;
  opcode: number;
  funct3: number;
  funct7: number;
  /** Operands and result as unsigned 64-bit values. */
  ref: (a: bigint, b: bigint) => bigint;
}

const r = (
  name: string,
  opcode: number,
  funct3: number,
  funct7: number,
  ref: RegisterOp["ref"],
): RegisterOp => ({
  name,
  opcode,
  funct3,
  funct7,
  ref,
});

const REGISTER_OPS: RegisterOp[] = [
  r("add", Opc.OP, 0, 0x00, (a, b) => a + b),
  r("sub", Opc.OP, 0, 0x20, (a, b) => a - b),
  r("sll", Opc.OP, 1, 0x00, (a, b) => a * 2n ** (b % 64n)),
  r("slt", Opc.OP, 2, 0x00, (a, b) => flag(s64(a) < s64(b))),
  r("sltu", Opc.OP, 3, 0x00, (a, b) => flag(a < b)),
  r("xor", Opc.OP, 4, 0x00, (a, b) => a ^ b),
  r("srl", Opc.OP, 5, 0x00, (a, b) => a / 2n ** (b % 64n)),
  // Arithmetic shift = floor division by a power of two.
  r("sra", Opc.OP, 5, 0x20, (a, b) => floorDiv(s64(a), 2n ** (b % 64n))),
  r("or", Opc.OP, 6, 0x00, (a, b) => a | b),
  r("and", Opc.OP, 7, 0x00, (a, b) => a & b),
  r("addw", Opc.OP_32, 0, 0x00, (a, b) => sx(a + b, 32)),
  r("subw", Opc.OP_32, 0, 0x20, (a, b) => sx(a - b, 32)),
  r("sllw", Opc.OP_32, 1, 0x00, (a, b) => sx(a * 2n ** (b % 32n), 32)),
  r("srlw", Opc.OP_32, 5, 0x00, (a, b) => sx(lo32u(a) / 2n ** (b % 32n), 32)),
  r("sraw", Opc.OP_32, 5, 0x20, (a, b) => sx(floorDiv(lo32s(a), 2n ** (b % 32n)), 32)),
  r("mul", Opc.OP, 0, 0x01, (a, b) => a * b),
  // High halves of the exact 128-bit products.
  r("mulh", Opc.OP, 1, 0x01, (a, b) => floorDiv(s64(a) * s64(b), 2n ** 64n)),
  r("mulhsu", Opc.OP, 2, 0x01, (a, b) => floorDiv(s64(a) * b, 2n ** 64n)),
  r("mulhu", Opc.OP, 3, 0x01, (a, b) => (a * b) / 2n ** 64n),
  r("div", Opc.OP, 4, 0x01, (a, b) => {
    if (b === 0n) return -1n;
    if (s64(a) === INT64_MIN && s64(b) === -1n) return INT64_MIN;
    return truncDiv(s64(a), s64(b));
  }),
  r("divu", Opc.OP, 5, 0x01, (a, b) => (b === 0n ? 2n ** 64n - 1n : a / b)),
  r("rem", Opc.OP, 6, 0x01, (a, b) => {
    if (b === 0n) return a;
    if (s64(a) === INT64_MIN && s64(b) === -1n) return 0n;
    return truncRem(s64(a), s64(b));
  }),
  r("remu", Opc.OP, 7, 0x01, (a, b) => (b === 0n ? a : a % b)),
  r("mulw", Opc.OP_32, 0, 0x01, (a, b) => sx(lo32s(a) * lo32s(b), 32)),
  r("divw", Opc.OP_32, 4, 0x01, (a, b) => {
    const [x, y] = [lo32s(a), lo32s(b)];
    if (y === 0n) return -1n;
    if (x === -(2n ** 31n) && y === -1n) return x;
    return sx(truncDiv(x, y), 32);
  }),
  r("divuw", Opc.OP_32, 5, 0x01, (a, b) => {
    const [x, y] = [lo32u(a), lo32u(b)];
    // 2^32 - 1, sign-extended: all ones.
    return y === 0n ? -1n : sx(x / y, 32);
  }),
  r("remw", Opc.OP_32, 6, 0x01, (a, b) => {
    const [x, y] = [lo32s(a), lo32s(b)];
    if (y === 0n) return sx(x, 32);
    if (x === -(2n ** 31n) && y === -1n) return 0n;
    return sx(truncRem(x, y), 32);
  }),
  r("remuw", Opc.OP_32, 7, 0x01, (a, b) => {
    const [x, y] = [lo32u(a), lo32u(b)];
    // The dividend's low word, sign-extended (REMUW by zero), or the 32-bit remainder sign-extended.
    return y === 0n ? sx(x, 32) : sx(x % y, 32);
  }),
];

function floorDiv(a: bigint, b: bigint): bigint {
  const q = truncDiv(a, b);
  return q * b !== a && a < 0n !== b < 0n ? q - 1n : q;
}

function checkRegisterOp(op: RegisterOp, rd: number, rs1: number, rs2: number, a: bigint, b: bigint): void {
  checkRegisterCase(m, {
    word: rType(op.opcode, op.funct3, op.funct7, rd, rs1, rs2),
    rd,
    sources: [
      [rs1, a],
      [rs2, b],
    ],
    expected: (x) => op.ref(x(rs1), x(rs2)),
    pc: CODE,
    describe: () => `${op.name} x${rd}, x${rs1}=${hex64(a)}, x${rs2}=${hex64(b)}`,
  });
}

describe("register-register ALU instructions (RV64I, RV64M, W forms)", () => {
  for (const op of REGISTER_OPS) {
    it(`${op.name}: random operands and registers`, () => {
      fc.assert(
        fc.property(registers3, value64, value64, ({ rd, rs1, rs2 }, a, b) =>
          checkRegisterOp(op, rd, rs1, rs2, a, b),
        ),
        runs(300),
      );
    });
  }

  it("every instruction on every pair of edge values", () => {
    const values = [...EDGES64, ...EDGES32.map((v) => 0xdead_beefn * 2n ** 32n + v)].map(u64);
    for (const op of REGISTER_OPS) {
      for (const a of values) for (const b of values) checkRegisterOp(op, 5, 6, 7, a, b);
    }
  });
});

interface ImmediateOp {
  name: string;
  opcode: number;
  funct3: number;
  /** `imm` is the sign-extended immediate as a signed BigInt. */
  ref: (a: bigint, imm: bigint) => bigint;
}

const IMMEDIATE_OPS: ImmediateOp[] = [
  { name: "addi", opcode: Opc.OP_IMM, funct3: 0, ref: (a, imm) => a + imm },
  { name: "slti", opcode: Opc.OP_IMM, funct3: 2, ref: (a, imm) => flag(s64(a) < imm) },
  // SLTIU compares with the sign-extended immediate taken as unsigned.
  { name: "sltiu", opcode: Opc.OP_IMM, funct3: 3, ref: (a, imm) => flag(a < u64(imm)) },
  { name: "xori", opcode: Opc.OP_IMM, funct3: 4, ref: (a, imm) => a ^ u64(imm) },
  { name: "ori", opcode: Opc.OP_IMM, funct3: 6, ref: (a, imm) => a | u64(imm) },
  { name: "andi", opcode: Opc.OP_IMM, funct3: 7, ref: (a, imm) => a & u64(imm) },
  { name: "addiw", opcode: Opc.OP_IMM_32, funct3: 0, ref: (a, imm) => sx(a + imm, 32) },
];

describe("register-immediate ALU instructions", () => {
  for (const op of IMMEDIATE_OPS) {
    it(`${op.name}: random operand, immediate and registers`, () => {
      fc.assert(
        fc.property(register, register, value64, signedImm(12), (rd, rs1, a, imm) => {
          checkRegisterCase(m, {
            word: iType(op.opcode, op.funct3, rd, rs1, imm),
            rd,
            sources: [[rs1, a]],
            expected: (x) => op.ref(x(rs1), BigInt(imm)),
            pc: CODE,
            describe: () => `${op.name} x${rd}, x${rs1}=${hex64(a)}, ${imm}`,
          });
        }),
        runs(300),
      );
    });
  }
});

interface ShiftOp {
  name: string;
  opcode: number;
  funct3: number;
  high: number;
  bits: 5 | 6;
  ref: (a: bigint, shamt: bigint) => bigint;
}

const SHIFT_OPS: ShiftOp[] = [
  { name: "slli", opcode: Opc.OP_IMM, funct3: 1, high: 0x00, bits: 6, ref: (a, s) => a * 2n ** s },
  { name: "srli", opcode: Opc.OP_IMM, funct3: 5, high: 0x00, bits: 6, ref: (a, s) => a / 2n ** s },
  {
    name: "srai",
    opcode: Opc.OP_IMM,
    funct3: 5,
    high: 0x10,
    bits: 6,
    ref: (a, s) => floorDiv(s64(a), 2n ** s),
  },
  {
    name: "slliw",
    opcode: Opc.OP_IMM_32,
    funct3: 1,
    high: 0x00,
    bits: 5,
    ref: (a, s) => sx(a * 2n ** s, 32),
  },
  {
    name: "srliw",
    opcode: Opc.OP_IMM_32,
    funct3: 5,
    high: 0x00,
    bits: 5,
    ref: (a, s) => sx(lo32u(a) / 2n ** s, 32),
  },
  {
    name: "sraiw",
    opcode: Opc.OP_IMM_32,
    funct3: 5,
    high: 0x20,
    bits: 5,
    ref: (a, s) => sx(floorDiv(lo32s(a), 2n ** s), 32),
  },
];

describe("shift-immediate instructions", () => {
  for (const op of SHIFT_OPS) {
    const max = 2 ** op.bits - 1;
    const amount = fc.oneof(
      fc.integer({ min: 0, max }),
      fc.constantFrom(0, 1, max, max - 1, 31, 32 % (max + 1)),
    );
    it(`${op.name}: every shift amount, random operands and registers`, () => {
      fc.assert(
        fc.property(register, register, value64, amount, (rd, rs1, a, shamt) => {
          checkRegisterCase(m, {
            word: shiftImm(op.opcode, op.funct3, op.high, op.bits, rd, rs1, shamt),
            rd,
            sources: [[rs1, a]],
            expected: (x) => op.ref(x(rs1), BigInt(shamt)),
            pc: CODE,
            describe: () => `${op.name} x${rd}, x${rs1}=${hex64(a)}, ${shamt}`,
          });
        }),
        runs(300),
      );
    });
  }
});

describe("upper-immediate instructions", () => {
  const imm20 = fc.oneof(
    fc.integer({ min: 0, max: 0xfffff }),
    fc.constantFrom(0, 1, 0x7ffff, 0x80000, 0xfffff),
  );
  /** Instruction addresses anywhere in RAM, 4-aligned, with room for the probe after them. */
  const codeAddress = fc
    .integer({ min: 0, max: Number(RAM_SIZE / 4n) - 2 })
    .map((k) => RAM_BASE + BigInt(k) * 4n);

  it("lui: rd = sign-extended imm << 12", () => {
    fc.assert(
      fc.property(register, imm20, (rd, imm) => {
        checkRegisterCase(m, {
          word: uType(Opc.LUI, rd, imm),
          rd,
          sources: [],
          expected: () => sx(BigInt(imm) * 4096n, 32),
          pc: CODE,
          describe: () => `lui x${rd}, 0x${imm.toString(16)}`,
        });
      }),
      runs(300),
    );
  });

  it("auipc: rd = pc + sign-extended imm << 12, at addresses across RAM", () => {
    fc.assert(
      fc.property(register, imm20, codeAddress, (rd, imm, pc) => {
        checkRegisterCase(m, {
          word: uType(Opc.AUIPC, rd, imm),
          rd,
          sources: [],
          expected: () => pc + BigInt.asIntN(32, BigInt(imm) * 4096n),
          pc,
          describe: () => `auipc x${rd}, 0x${imm.toString(16)} at ${hex64(pc)}`,
        });
      }),
      runs(300),
    );
  });
});
