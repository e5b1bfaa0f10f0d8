import {
  add,
  and,
  c64,
  call,
  divS,
  divU,
  type Expr,
  eq,
  eqz,
  mul,
  or32,
  param,
  remS,
  remU,
  select,
  sext32,
  shrS,
  shrU,
  sub,
} from "./ir.js";

/**
 * Multi-step semantics shared by several instructions, compiled once per module as wasm functions of
 * i64 parameters. Division helpers implement RISC-V's results for division by zero and overflow, which
 * wasm's trapping divide does not.
 */
const a = param(0);
const b = param(1);
const LOW32 = c64(0xffffffff);
const ZERO = c64(0);
const ONE = c64(1);
const MINUS_ONE = c64(-1);
const high = (v: Expr) => shrU(v, c64(32));
const low = (v: Expr) => and(v, LOW32);
const isZero = (v: Expr) => eqz(v);
const isMinusOne = (v: Expr) => eq(v, MINUS_ONE);
/** A divisor that never traps: 1 where RISC-V defines the result without dividing. */
const safeSigned = select(or32(isZero(b), isMinusOne(b)), ONE, b);
const safeUnsigned = select(isZero(b), ONE, b);
const zext32 = (v: Expr) => and(v, LOW32);

export const HELPERS: Record<string, { params: number; body: Expr }> = {
  /** High 64 bits of the unsigned 128-bit product, from 32-bit limbs. */
  mulhu: {
    params: 2,
    body: add(
      add(add(mul(high(a), high(b)), high(mul(low(a), high(b)))), high(mul(high(a), low(b)))),
      high(add(add(high(mul(low(a), low(b))), low(mul(low(a), high(b)))), low(mul(high(a), low(b))))),
    ),
  },
  /** Signed × signed: correct the unsigned product for each negative operand. */
  mulh: {
    params: 2,
    body: sub(sub(call("mulhu", a, b), and(shrS(a, c64(63)), b)), and(shrS(b, c64(63)), a)),
  },
  mulhsu: { params: 2, body: sub(call("mulhu", a, b), and(shrS(a, c64(63)), b)) },
  div: {
    params: 2,
    body: select(isZero(b), MINUS_ONE, select(isMinusOne(b), sub(ZERO, a), divS(a, safeSigned))),
  },
  divu: { params: 2, body: select(isZero(b), MINUS_ONE, divU(a, safeUnsigned)) },
  rem: { params: 2, body: select(isZero(b), a, select(isMinusOne(b), ZERO, remS(a, safeSigned))) },
  remu: { params: 2, body: select(isZero(b), a, remU(a, safeUnsigned)) },
  divw: { params: 2, body: sext32(call("div", sext32(a), sext32(b))) },
  remw: { params: 2, body: sext32(call("rem", sext32(a), sext32(b))) },
  divuw: { params: 2, body: sext32(call("divu", zext32(a), zext32(b))) },
  remuw: { params: 2, body: sext32(call("remu", zext32(a), zext32(b))) },
};
