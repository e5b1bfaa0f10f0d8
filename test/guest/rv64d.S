# RV64D arithmetic: FADD/FSUB/FMUL/FDIV/FSQRT.D and FMADD/FMSUB/FNMSUB/FNMADD.D with every
# static rounding mode and the dynamic mode, fflags after each operation, canonical NaN,
# signed zeros, subnormal results, overflow, and single rounding of the fused operations.
#include "common.h"
#include "fp.h"

TEST_BEGIN
  # ---- FADD.D / FSUB.D ----
  T_D3 fadd.d, rne, D_THREE, 0, D_ONE, D_TWO
  T_RM3 D, fadd.d, D_ONE, 0x3ca0000000000000, NX, D_ONE, D_ONE, D_ONE, 0x3ff0000000000001, 0x3ff0000000000001
  T_RM3 D, fadd.d, D_NONE, 0xbca0000000000000, NX, D_NONE, D_NONE, 0xbff0000000000001, D_NONE, 0xbff0000000000001
  T_RM3 D, fadd.d, D_ONE, 0x3ca8000000000000, NX, 0x3ff0000000000001, D_ONE, D_ONE, 0x3ff0000000000001, 0x3ff0000000000001
  T_RM3 D, fadd.d, D_MAX, D_MAX, OF|NX, D_INF, D_MAX, D_MAX, D_INF, D_INF
  T_RM3 D, fsub.d, D_NMAX, D_MAX, OF|NX, D_NINF, D_NMAX, D_NINF, D_NMAX, D_NINF
  T_RM3 D, fsub.d, D_TWO, D_TWO, 0, D_ZERO, D_ZERO, D_NZERO, D_ZERO, D_ZERO
  T_D3 fadd.d, rne, D_NZERO, 0, D_NZERO, D_NZERO
  T_D3 fadd.d, rne, D_ZERO, 0, D_NZERO, D_ZERO
  T_D3 fadd.d, rne, 0x0000000000000002, 0, D_MINSUB, D_MINSUB
  T_D3 fadd.d, rne, D_QNAN, NV, D_NINF, D_INF
  T_D3 fadd.d, rne, D_QNAN, 0, 0x7ff8000000012345, D_ONE
  T_D3 fadd.d, rne, D_QNAN, NV, D_SNAN, D_ONE
  T_D3 fadd.d, rne, D_QNAN, NV, D_QNAN, 0xfff0000000000010
  T_D3 fsub.d, rne, 0xc000000000000000, 0, D_ONE, D_THREE
  T_D3 fsub.d, rne, D_QNAN, NV, D_INF, D_INF
  # ---- FMUL.D ----
  T_D3 fmul.d, rne, 0x3ff8000000000000, 0, D_THREE, D_HALF
  T_D3 fmul.d, rne, 0x0008000000000000, 0, D_MINN, D_HALF
  T_RM3 D, fmul.d, D_MINSUB, D_HALF, UF|NX, D_ZERO, D_ZERO, D_ZERO, D_MINSUB, D_MINSUB
  T_RM3 D, fmul.d, 0x3ff0000000000001, 0x3ff0000000000001, NX, 0x3ff0000000000002, 0x3ff0000000000002, 0x3ff0000000000002, 0x3ff0000000000003, 0x3ff0000000000002
  T_RM3 D, fmul.d, D_MAX, 0xc000000000000000, OF|NX, D_NINF, D_NMAX, D_NINF, D_NMAX, D_NINF
  T_D3 fmul.d, rne, D_QNAN, NV, D_INF, D_ZERO
  T_D3 fmul.d, rne, D_NZERO, 0, D_ZERO, D_NONE
  T_D3 fmul.d, rne, D_QNAN, NV, D_ONE, D_SNAN
  # ---- FDIV.D ----
  T_D3 fdiv.d, rne, D_TWO, 0, 0x4018000000000000, D_THREE
  T_RM3 D, fdiv.d, D_ONE, D_THREE, NX, 0x3fd5555555555555, 0x3fd5555555555555, 0x3fd5555555555555, 0x3fd5555555555556, 0x3fd5555555555555
  T_RM3 D, fdiv.d, D_NONE, D_THREE, NX, 0xbfd5555555555555, 0xbfd5555555555555, 0xbfd5555555555556, 0xbfd5555555555555, 0xbfd5555555555555
  T_D3 fdiv.d, rne, D_INF, DZ, D_ONE, D_ZERO
  T_D3 fdiv.d, rne, D_NINF, DZ, D_ONE, D_NZERO
  T_D3 fdiv.d, rne, D_QNAN, NV, D_ZERO, D_ZERO
  T_D3 fdiv.d, rne, D_QNAN, NV, D_INF, D_INF
  T_D3 fdiv.d, rne, D_NZERO, 0, D_NONE, D_INF
  T_D3 fdiv.d, rne, D_INF, 0, D_INF, D_ZERO
  # ---- FSQRT.D ----
  T_D1 fsqrt.d, rne, D_TWO, 0, 0x4010000000000000
  T_RM1 D, fsqrt.d, D_TWO, NX, 0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcc, 0x3ff6a09e667f3bcc, 0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcd
  T_D1 fsqrt.d, rne, D_QNAN, NV, D_NONE
  T_D1 fsqrt.d, rne, D_NZERO, 0, D_NZERO
  T_D1 fsqrt.d, rne, D_INF, 0, D_INF
  T_D1 fsqrt.d, rne, D_QNAN, NV, D_SNAN
  T_D1 fsqrt.d, rne, D_QNAN, 0, 0xfff8000000000001
  # ---- fused multiply-add ----
  T_D4 fmadd.d, rne, 0x401c000000000000, 0, D_TWO, D_THREE, D_ONE
  T_D4 fmsub.d, rne, 0x4014000000000000, 0, D_TWO, D_THREE, D_ONE
  T_D4 fnmsub.d, rne, 0xc014000000000000, 0, D_TWO, D_THREE, D_ONE
  T_D4 fnmadd.d, rne, 0xc01c000000000000, 0, D_TWO, D_THREE, D_ONE
  T_D4 fmadd.d, rne, 0x3c90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0xbff0000004000000
  T_D4 fmsub.d, rne, 0x3c90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0x3ff0000004000000
  T_D4 fnmadd.d, rne, 0xbc90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0xbff0000004000000
  T_D4 fnmsub.d, rne, 0xbc90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0x3ff0000004000000
  T_D4 fmadd.d, rne, D_ONE, NX, D_ONE, D_ONE, 0x3ca0000000000000
  T_D4 fmadd.d, rup, 0x3ff0000000000001, NX, D_ONE, D_ONE, 0x3ca0000000000000
  T_D4 fmadd.d, rmm, 0x3ff0000000000001, NX, D_ONE, D_ONE, 0x3ca0000000000000
  T_D4 fmsub.d, rdn, 0x3fefffffffffffff, NX, D_ONE, D_ONE, 0x3c90000000000000
  T_D4 fmsub.d, rtz, 0x3fefffffffffffff, NX, D_ONE, D_ONE, 0x3c90000000000000
  T_D4 fmsub.d, rne, D_ONE, NX, D_ONE, D_ONE, 0x3c90000000000000
  fsrmi FRM_RDN
  T_D4 fnmsub.d, dyn, D_NZERO, 0, D_ONE, D_ONE, D_ONE
  fsrmi FRM_RNE
  T_D4 fnmsub.d, dyn, D_ZERO, 0, D_ONE, D_ONE, D_ONE
  T_D4 fmadd.d, rne, D_QNAN, NV, D_ZERO, D_INF, D_QNAN
  T_D4 fmadd.d, rne, D_QNAN, NV, D_INF, D_ONE, D_NINF
  T_D4 fnmadd.d, rne, D_QNAN, NV, D_SNAN, D_ONE, D_ONE
  T_D4 fmadd.d, rne, D_INF, OF|NX, D_MAX, D_MAX, D_NMAX
  T_D4 fmadd.d, rtz, D_MAX, OF|NX, D_MAX, D_MAX, D_NMAX
  T_D4 fmadd.d, rne, D_NINF, 0, D_MAX, D_MAX, D_NINF
TEST_END
