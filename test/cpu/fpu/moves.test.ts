import fc from "fast-check";
import { it } from "../../support/test.js";
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
import { FMV_FROM_X, FMV_X_OR_CLASS, FSGNJ, opFp } from "./encode.js";
import { Mode } from "./exact.js";
import { floatBits, integerRegister } from "./generators.js";
import { refSignInject } from "./reference.js";

const RUNS = 2000;
const anyMode = Mode.RNE;

for (const format of FORMATS) {
  const fmt = format.width === 32 ? 0 : 1;
  const bits = floatBits(format);

  for (const [name, funct3] of [
    ["FSGNJ", 0],
    ["FSGNJN", 1],
    ["FSGNJX", 2],
  ] as const) {
    it(`${name}.${format.name} moves the bits with the injected sign`, () => {
      assertProperty(
        fc.tuple(bits, bits, boxing, boxing, delivery),
        ([a, b, boxA, boxB, d]) => {
          const bitsOut = refSignInject(
            format,
            effective(format, a, boxA),
            effective(format, b, boxB),
            funct3,
          );
          const registers = [registerFor(format, a, boxA), registerFor(format, b, boxB)];
          const insn = () => opFp(FSGNJ, fmt, RD, funct3, RS1, RS2);
          expectFloatResult(format, insn, registers, anyMode, d, { bits: bitsOut, flags: 0 });
        },
        RUNS,
      );
    });
  }

  const width = format.width;
  it(`FMV.X.${width === 32 ? "W" : "D"} copies raw bits (sign-extending a word, ignoring its box)`, () => {
    assertProperty(
      fc.tuple(bits, boxing, delivery),
      ([a, boxA, d]) => {
        const register = registerFor(format, a, boxA);
        const moved = width === 32 ? BigInt.asUintN(64, BigInt.asIntN(32, register)) : register;
        const insn = () => opFp(FMV_X_OR_CLASS, fmt, RD, 0, RS1, 0);
        expectIntegerResult(insn, [register], anyMode, d, { bits: moved, flags: 0 });
      },
      RUNS,
    );
  });

  it(`FMV.${width === 32 ? "W" : "D"}.X copies raw bits (NaN-boxing a word)`, () => {
    assertProperty(
      fc.tuple(integerRegister(), delivery),
      ([value, d]) => {
        const moved = width === 32 ? BigInt.asUintN(32, value) : value;
        const insn = () => opFp(FMV_FROM_X, fmt, RD, 0, RS1, 0);
        expectFloatResult(format, insn, [], anyMode, d, { bits: moved, flags: 0 }, value);
      },
      RUNS,
    );
  });
}
