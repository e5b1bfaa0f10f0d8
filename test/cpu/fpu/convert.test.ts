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
  MODE_NAMES,
  MODES,
  RD,
  RS1,
  registerFor,
} from "./cases.js";
import { FCVT_FMT, FCVT_FROM_INT, FCVT_TO_INT, opFp } from "./encode.js";
import { F32, F64 } from "./exact.js";
import { floatBits, floatBitsWithExponent, integerRegister } from "./generators.js";
import { INTEGER_TYPES, refConvertFormat, refFromInteger, refToInteger } from "./reference.js";

for (const format of FORMATS) {
  const fmt = format.width === 32 ? 0 : 1;
  // Around every integer range's edges, with fractions that make halfway and near-halfway cases.
  const operands = fc.oneof(floatBits(format), floatBitsWithExponent(format, -3, 66));

  INTEGER_TYPES.forEach((type, typeIndex) => {
    describe(`FCVT.${type.name}.${format.name} against the exact reference`, () => {
      for (const mode of MODES) {
        it(MODE_NAMES[mode], () => {
          assertProperty(fc.tuple(operands, boxing, delivery), ([a, boxA, d]) => {
            const expected = refToInteger(format, effective(format, a, boxA), type, mode);
            const insn = (rm: number) => opFp(FCVT_TO_INT, fmt, RD, rm, RS1, typeIndex);
            expectIntegerResult(insn, [registerFor(format, a, boxA)], mode, d, expected);
          });
        });
      }
    });

    describe(`FCVT.${format.name}.${type.name} against the exact reference`, () => {
      for (const mode of MODES) {
        it(MODE_NAMES[mode], () => {
          assertProperty(fc.tuple(integerRegister(), delivery), ([value, d]) => {
            const expected = refFromInteger(format, value, type, mode);
            const insn = (rm: number) => opFp(FCVT_FROM_INT, fmt, RD, rm, RS1, typeIndex);
            expectFloatResult(format, insn, [], mode, d, expected, value);
          });
        });
      }
    });
  });
}

describe("FCVT.S.D against the exact reference", () => {
  // Doubles around the single range's subnormal, normal and overflow edges.
  const operands = fc.oneof(floatBits(F64), floatBitsWithExponent(F64, -155, 130));
  for (const mode of MODES) {
    it(MODE_NAMES[mode], () => {
      assertProperty(fc.tuple(operands, delivery), ([a, d]) => {
        const expected = refConvertFormat(F64, F32, a, mode);
        expectFloatResult(F32, (rm) => opFp(FCVT_FMT, 0, RD, rm, RS1, 1), [a], mode, d, expected);
      });
    });
  }
});

describe("FCVT.D.S against the exact reference", () => {
  for (const mode of MODES) {
    it(MODE_NAMES[mode], () => {
      assertProperty(fc.tuple(floatBits(F32), boxing, delivery), ([a, boxA, d]) => {
        const expected = refConvertFormat(F32, F64, effective(F32, a, boxA), mode);
        const insn = (rm: number) => opFp(FCVT_FMT, 1, RD, rm, RS1, 0);
        expectFloatResult(F64, insn, [registerFor(F32, a, boxA)], mode, d, expected);
      });
    });
  }
});
