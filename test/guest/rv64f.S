# RV64F arithmetic: FADD/FSUB/FMUL/FDIV/FSQRT.S and FMADD/FMSUB/FNMSUB/FNMADD.S with every
# static rounding mode and the dynamic mode (frm), fflags after each operation (NX, UF, OF, DZ,
# NV), canonical NaN results (invalid operations, NaN inputs, sNaN signalling), signed zeros,
# subnormal results, overflow to infinity or the largest finite number, single rounding of FMA.
#include "common.h"
#include "fp.h"

TEST_BEGIN
  # ---- FADD.S / FSUB.S ----
  T_S3 fadd.s, rne, S_THREE, 0, S_ONE, S_TWO
  T_RM3 S, fadd.s, S_ONE, 0x33800000, NX, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001
  T_RM3 S, fadd.s, S_NONE, 0xb3800000, NX, 0xbf800000, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001
  T_RM3 S, fadd.s, S_ONE, 0x33c00000, NX, 0x3f800001, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001
  T_RM3 S, fadd.s, S_MAX, S_MAX, OF|NX, S_INF, S_MAX, S_MAX, S_INF, S_INF
  T_RM3 S, fadd.s, S_NMAX, S_NMAX, OF|NX, S_NINF, S_NMAX, S_NINF, S_NMAX, S_NINF
  T_RM3 S, fsub.s, S_ONE, S_ONE, 0, S_ZERO, S_ZERO, S_NZERO, S_ZERO, S_ZERO
  T_S3 fadd.s, rne, S_NZERO, 0, S_NZERO, S_NZERO
  T_S3 fadd.s, rne, S_ZERO, 0, S_ZERO, S_NZERO
  T_S3 fadd.s, rdn, S_NZERO, 0, S_ZERO, S_NZERO
  T_S3 fadd.s, rne, 0x00000002, 0, S_MINSUB, S_MINSUB
  T_S3 fadd.s, rne, S_QNAN, NV, S_INF, S_NINF
  T_S3 fadd.s, rne, S_INF, 0, S_INF, S_ONE
  T_S3 fadd.s, rne, S_QNAN, 0, 0x7fc12345, S_ONE
  T_S3 fadd.s, rne, S_QNAN, 0, S_ONE, 0xffc00001
  T_S3 fadd.s, rne, S_QNAN, NV, S_SNAN, S_ONE
  T_S3 fadd.s, rne, S_QNAN, NV, S_ONE, 0xff800005
  T_S3 fsub.s, rne, S_TWO, 0, S_THREE, S_ONE
  T_S3 fsub.s, rne, 0xc0000000, 0, S_ONE, S_THREE
  T_S3 fsub.s, rne, S_QNAN, NV, S_INF, S_INF
  T_S3 fsub.s, rne, S_NINF, 0, S_NINF, S_INF
  T_S3 fsub.s, rne, S_QNAN, NV, S_ONE, S_SNAN
  # ---- FMUL.S ----
  T_S3 fmul.s, rne, 0x3fc00000, 0, S_THREE, S_HALF
  T_S3 fmul.s, rne, 0x00400000, 0, S_MINN, S_HALF
  T_RM3 S, fmul.s, S_MINSUB, S_HALF, UF|NX, S_ZERO, S_ZERO, S_ZERO, S_MINSUB, S_MINSUB
  T_RM3 S, fmul.s, S_NMAX, S_TWO, OF|NX, S_NINF, S_NMAX, S_NINF, S_NMAX, S_NINF
  T_RM3 S, fmul.s, 0x3f800001, 0x3f800001, NX, 0x3f800002, 0x3f800002, 0x3f800002, 0x3f800003, 0x3f800002
  T_S3 fmul.s, rne, S_QNAN, NV, S_ZERO, S_INF
  T_S3 fmul.s, rne, S_QNAN, NV, S_NINF, S_NZERO
  T_S3 fmul.s, rne, S_NZERO, 0, S_NONE, S_ZERO
  T_S3 fmul.s, rne, S_NINF, 0, S_INF, S_NONE
  T_S3 fmul.s, rne, S_QNAN, NV, S_SNAN, S_ZERO
  # ---- FDIV.S ----
  T_S3 fdiv.s, rne, S_TWO, 0, 0x40c00000, S_THREE
  T_RM3 S, fdiv.s, S_ONE, S_THREE, NX, 0x3eaaaaab, 0x3eaaaaaa, 0x3eaaaaaa, 0x3eaaaaab, 0x3eaaaaab
  T_RM3 S, fdiv.s, S_NONE, S_THREE, NX, 0xbeaaaaab, 0xbeaaaaaa, 0xbeaaaaab, 0xbeaaaaaa, 0xbeaaaaab
  T_S3 fdiv.s, rne, S_INF, DZ, S_ONE, S_ZERO
  T_S3 fdiv.s, rne, S_NINF, DZ, S_NONE, S_ZERO
  T_S3 fdiv.s, rne, S_NINF, DZ, S_ONE, S_NZERO
  T_S3 fdiv.s, rne, S_QNAN, NV, S_ZERO, S_ZERO
  T_S3 fdiv.s, rne, S_QNAN, NV, S_INF, S_NINF
  T_S3 fdiv.s, rne, S_ZERO, 0, S_ONE, S_INF
  T_S3 fdiv.s, rne, S_INF, 0, S_INF, S_ZERO
  T_S3 fdiv.s, rne, S_QNAN, 0, S_QNAN, S_ZERO
  T_RM3 S, fdiv.s, S_MAX, S_HALF, OF|NX, S_INF, S_MAX, S_MAX, S_INF, S_INF
  # ---- FSQRT.S ----
  T_S1 fsqrt.s, rne, S_TWO, 0, 0x40800000
  T_RM1 S, fsqrt.s, S_TWO, NX, 0x3fb504f3, 0x3fb504f3, 0x3fb504f3, 0x3fb504f4, 0x3fb504f3
  T_S1 fsqrt.s, rne, 0x1a800000, 0, 0x00000002
  T_S1 fsqrt.s, rne, S_QNAN, NV, S_NONE
  T_S1 fsqrt.s, rne, S_NZERO, 0, S_NZERO
  T_S1 fsqrt.s, rne, S_INF, 0, S_INF
  T_S1 fsqrt.s, rne, S_QNAN, NV, S_NINF
  T_S1 fsqrt.s, rne, S_QNAN, NV, S_SNAN
  T_S1 fsqrt.s, rne, S_QNAN, 0, 0x7fc00abc
  # ---- fused multiply-add ----
  T_S4 fmadd.s, rne, 0x40e00000, 0, S_TWO, S_THREE, S_ONE
  T_S4 fmsub.s, rne, 0x40a00000, 0, S_TWO, S_THREE, S_ONE
  T_S4 fnmsub.s, rne, 0xc0a00000, 0, S_TWO, S_THREE, S_ONE
  T_S4 fnmadd.s, rne, 0xc0e00000, 0, S_TWO, S_THREE, S_ONE
  # one rounding only: (1 + 2^-12)^2 - (1 + 2^-11) = 2^-24 exactly
  T_S4 fmadd.s, rne, 0x33800000, 0, 0x3f800800, 0x3f800800, 0xbf801000
  T_S4 fmsub.s, rne, 0x33800000, 0, 0x3f800800, 0x3f800800, 0x3f801000
  T_S4 fnmadd.s, rne, 0xb3800000, 0, 0x3f800800, 0x3f800800, 0xbf801000
  T_S4 fnmsub.s, rne, 0xb3800000, 0, 0x3f800800, 0x3f800800, 0x3f801000
  T_S4 fmadd.s, rne, S_ONE, NX, S_ONE, S_ONE, 0x33800000
  T_S4 fmadd.s, rup, 0x3f800001, NX, S_ONE, S_ONE, 0x33800000
  T_S4 fmadd.s, rtz, S_ONE, NX, S_ONE, S_ONE, 0x33800000
  T_S4 fmadd.s, rdn, S_ONE, NX, S_ONE, S_ONE, 0x33800000
  T_S4 fmadd.s, rmm, 0x3f800001, NX, S_ONE, S_ONE, 0x33800000
  T_S4 fnmadd.s, rdn, 0xbf800001, NX, S_ONE, S_ONE, 0x33800000
  fsrmi FRM_RUP
  T_S4 fmadd.s, dyn, 0x3f800001, NX, S_ONE, S_ONE, 0x33800000
  fsrmi FRM_RNE
  T_S4 fmadd.s, rne, S_QNAN, NV, S_INF, S_ZERO, S_QNAN
  T_S4 fmadd.s, rne, S_QNAN, NV, S_INF, S_ONE, S_NINF
  T_S4 fmadd.s, rne, S_QNAN, 0, S_QNAN, S_ONE, S_ONE
  T_S4 fmadd.s, rne, S_QNAN, NV, S_ONE, S_ONE, S_SNAN
  T_S4 fnmadd.s, rne, S_NZERO, 0, S_ONE, S_ZERO, S_ZERO
  T_S4 fnmsub.s, rne, S_ZERO, 0, S_ONE, S_ZERO, S_ZERO
  T_S4 fmsub.s, rne, S_ZERO, 0, S_ONE, S_ZERO, S_ZERO
  T_S4 fmsub.s, rdn, S_NZERO, 0, S_ONE, S_ZERO, S_ZERO
  T_S4 fmadd.s, rne, S_INF, OF|NX, S_MAX, S_TWO, S_ZERO
  T_S4 fmadd.s, rtz, S_MAX, OF|NX, S_MAX, S_TWO, S_ZERO
  # flags accumulate until cleared
  LOAD_S f1, S_ONE
  LOAD_S f2, S_ZERO
  LOAD_S f5, S_THREE
  fdiv.s f3, f1, f2
  fdiv.s f3, f1, f5
  fdiv.s f3, f2, f2
  CHECK_FFLAGS (DZ|NX|NV)
TEST_END
