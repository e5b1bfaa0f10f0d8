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
  RS3,
  registerFor,
} from "./cases.js";
import { fused, MADD, MSUB, NMADD, NMSUB } from "./encode.js";
import { operandTriple } from "./generators.js";
import { refFma } from "./reference.js";

/** opcode, name, and the signs the spec applies: -(a*b) for the N forms, -c for the SUB forms. */
const variants: [number, string, boolean, boolean][] = [
  [MADD, "FMADD", false, false],
  [MSUB, "FMSUB", false, true],
  [NMSUB, "FNMSUB", true, false],
  [NMADD, "FNMADD", true, true],
];

for (const format of FORMATS) {
  const fmt = format.width === 32 ? 0 : 1;
  for (const [opcode, name, negateProduct, negateAddend] of variants) {
    describe(`${name}.${format.name} against the exact reference`, () => {
      for (const mode of MODES) {
        it(MODE_NAMES[mode], () => {
          const cases = fc.tuple(operandTriple(format), boxing, boxing, boxing, delivery);
          assertProperty(cases, ([[a, b, c], boxA, boxB, boxC, d]) => {
            const expected = refFma(
              format,
              effective(format, a, boxA),
              effective(format, b, boxB),
              effective(format, c, boxC),
              mode,
              negateProduct,
              negateAddend,
            );
            const registers = [
              registerFor(format, a, boxA),
              registerFor(format, b, boxB),
              registerFor(format, c, boxC),
            ];
            const insn = (rm: number) => fused(opcode, fmt, RD, rm, RS1, RS2, RS3);
            expectFloatResult(format, insn, registers, mode, d, expected);
          });
        });
      }
    });
  }
}
