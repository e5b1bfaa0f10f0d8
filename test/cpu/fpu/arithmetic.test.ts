import fc from "fast-check";
import { describe, it } from "../../support/test.js";
import {
  assertProperty,
  boxing,
  delivery,
  effective,
  expectFloatResult,
  FORMATS,
  MODE_NAMES,
  MODES,
  RD,
  RS1,
  RS2,
  registerFor,
} from "./cases.js";
import { FADD, FDIV, FMUL, FSQRT, FSUB, opFp } from "./encode.js";
import type { Format, Mode, Result } from "./exact.js";
import { floatBits, floatBitsWithExponent, operandPair } from "./generators.js";
import { refAdd, refDiv, refMul, refSqrt } from "./reference.js";

type Binary = (format: Format, a: bigint, b: bigint, mode: Mode) => Result;

const binaryOperations: [string, number, Binary][] = [
  ["FADD", FADD, (f, a, b, m) => refAdd(f, a, b, m)],
  ["FSUB", FSUB, (f, a, b, m) => refAdd(f, a, b, m, true)],
  ["FMUL", FMUL, refMul],
  ["FDIV", FDIV, refDiv],
];

for (const format of FORMATS) {
  const fmt = format.width === 32 ? 0 : 1;
  for (const [name, funct5, reference] of binaryOperations) {
    describe(`${name}.${format.name} against the exact reference`, () => {
      for (const mode of MODES) {
        it(MODE_NAMES[mode], () => {
          const cases = fc.tuple(operandPair(format), boxing, boxing, delivery);
          assertProperty(cases, ([[a, b], boxA, boxB, d]) => {
            const expected = reference(format, effective(format, a, boxA), effective(format, b, boxB), mode);
            const registers = [registerFor(format, a, boxA), registerFor(format, b, boxB)];
            expectFloatResult(
              format,
              (rm) => opFp(funct5, fmt, RD, rm, RS1, RS2),
              registers,
              mode,
              d,
              expected,
            );
          });
        });
      }
    });
  }

  describe(`FSQRT.${format.name} against the exact reference`, () => {
    // Besides arbitrary encodings, squares of short significands land exactly on (or next to) results.
    const radicands = fc.oneof(
      floatBits(format),
      floatBitsWithExponent(format, format.minExponent - format.precision, format.minExponent + 2),
    );
    for (const mode of MODES) {
      it(MODE_NAMES[mode], () => {
        assertProperty(fc.tuple(radicands, boxing, delivery), ([a, boxA, d]) => {
          const expected = refSqrt(format, effective(format, a, boxA), mode);
          const insn = (rm: number) => opFp(FSQRT, fmt, RD, rm, RS1, 0);
          expectFloatResult(format, insn, [registerFor(format, a, boxA)], mode, d, expected);
        });
      });
    }
  });
}
