import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import {
  assertProperty,
  boxing,
  delivery,
  effective,
  expectFloatResult,
  expectIntegerResult,
  FORMATS,
  RD,
  RS1,
  RS2,
  registerFor,
} from "./cases.js";
import { FCMP, FMINMAX, FMV_X_OR_CLASS, opFp } from "./encode.js";
import { Mode } from "./exact.js";
import { operandPair } from "./generators.js";
import { refClass, refCompare, refMinMax } from "./reference.js";

const RUNS = 2000;
/** These instructions have no rounding mode: the mode is fixed and only the flag setup varies. */
const anyMode = Mode.RNE;

for (const format of FORMATS) {
  const fmt = format.width === 32 ? 0 : 1;
  const operands = fc.tuple(operandPair(format), boxing, boxing, delivery);

  for (const [name, funct3] of [
    ["FMIN", 0],
    ["FMAX", 1],
  ] as const) {
    it(`${name}.${format.name} against the reference`, () => {
      assertProperty(
        operands,
        ([[a, b], boxA, boxB, d]) => {
          const expected = refMinMax(
            format,
            effective(format, a, boxA),
            effective(format, b, boxB),
            funct3 === 1,
          );
          const registers = [registerFor(format, a, boxA), registerFor(format, b, boxB)];
          const insn = () => opFp(FMINMAX, fmt, RD, funct3, RS1, RS2);
          expectFloatResult(format, insn, registers, anyMode, d, expected);
        },
        RUNS,
      );
    });
  }

  for (const [name, funct3, relation] of [
    ["FEQ", 2, "eq"],
    ["FLT", 1, "lt"],
    ["FLE", 0, "le"],
  ] as const) {
    it(`${name}.${format.name} against the reference`, () => {
      assertProperty(
        operands,
        ([[a, b], boxA, boxB, d]) => {
          const expected = refCompare(
            format,
            effective(format, a, boxA),
            effective(format, b, boxB),
            relation,
          );
          const registers = [registerFor(format, a, boxA), registerFor(format, b, boxB)];
          const insn = () => opFp(FCMP, fmt, RD, funct3, RS1, RS2);
          expectIntegerResult(insn, registers, anyMode, d, expected);
        },
        RUNS,
      );
    });
  }

  describe(`FCLASS.${format.name}`, () => {
    it("matches the reference classification", () => {
      assertProperty(
        operands,
        ([[a], boxA, , d]) => {
          const expected = { bits: refClass(format, effective(format, a, boxA)), flags: 0 };
          const insn = () => opFp(FMV_X_OR_CLASS, fmt, RD, 1, RS1, 0);
          expectIntegerResult(insn, [registerFor(format, a, boxA)], anyMode, d, expected);
        },
        RUNS,
      );
    });
  });
}
