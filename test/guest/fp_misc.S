# F/D non-arithmetic operations: FMIN/FMAX (sNaN -> NV, one NaN -> other operand, two NaNs ->
# canonical NaN, -0 < +0), FEQ/FLT/FLE (quiet vs signalling compares), FCLASS (all ten classes),
# FSGNJ/FSGNJN/FSGNJX (NaN payloads kept), FMV.X.W (sign extension) / FMV.W.X / FMV.X.D /
# FMV.D.X, FLW/FSW/FLD/FSD (aligned and misaligned, raw bit patterns), and NaN-boxing: a single
# operand whose upper 32 bits are not all ones reads as the canonical NaN.
#include "common.h"
#include "fp.h"

.macro T_SCLASS exp, a
  LOAD_S f1, \a
  fclass.s a0, f1
  CHECK_EQ a0, \exp
.endm
.macro T_DCLASS exp, a
  LOAD_D f1, \a
  fclass.d a0, f1
  CHECK_EQ a0, \exp
.endm

#define UNBOXED_M1 0x00000000bf800000     /* -1.0f without NaN-boxing */

TEST_BEGIN
  # ---- FMIN.S / FMAX.S ----
  T_S2 fmin.s, S_ONE, 0, S_ONE, S_TWO
  T_S2 fmax.s, S_TWO, 0, S_ONE, S_TWO
  T_S2 fmin.s, S_NONE, 0, S_ONE, S_NONE
  T_S2 fmax.s, S_ONE, 0, S_ONE, S_NONE
  T_S2 fmin.s, S_NZERO, 0, S_NZERO, S_ZERO
  T_S2 fmin.s, S_NZERO, 0, S_ZERO, S_NZERO
  T_S2 fmax.s, S_ZERO, 0, S_NZERO, S_ZERO
  T_S2 fmax.s, S_ZERO, 0, S_ZERO, S_NZERO
  T_S2 fmin.s, S_ONE, 0, S_QNAN, S_ONE
  T_S2 fmax.s, S_ONE, 0, S_ONE, 0x7fc0abcd
  T_S2 fmin.s, S_ONE, NV, S_SNAN, S_ONE
  T_S2 fmax.s, S_ONE, NV, S_ONE, S_SNAN
  T_S2 fmin.s, S_QNAN, 0, 0x7fc00001, 0xffc00002
  T_S2 fmax.s, S_QNAN, NV, S_SNAN, S_QNAN
  T_S2 fmin.s, S_NINF, 0, S_NINF, S_QNAN
  T_S2 fmax.s, S_INF, 0, S_NINF, S_INF
  # ---- FMIN.D / FMAX.D ----
  T_D2 fmin.d, D_ONE, 0, D_ONE, D_TWO
  T_D2 fmax.d, D_TWO, 0, D_ONE, D_TWO
  T_D2 fmin.d, D_NZERO, 0, D_ZERO, D_NZERO
  T_D2 fmax.d, D_ZERO, 0, D_NZERO, D_ZERO
  T_D2 fmin.d, D_ONE, 0, D_QNAN, D_ONE
  T_D2 fmax.d, D_NONE, NV, D_SNAN, D_NONE
  T_D2 fmin.d, D_NONE, NV, D_NONE, D_SNAN
  T_D2 fmin.d, D_QNAN, 0, 0x7ff8000000000001, D_QNAN
  T_D2 fmax.d, D_QNAN, NV, D_SNAN, D_SNAN
  # ---- compares ----
  T_SCMP feq.s, 1, 0, S_ONE, S_ONE
  T_SCMP feq.s, 0, 0, S_ONE, S_TWO
  T_SCMP feq.s, 1, 0, S_NZERO, S_ZERO
  T_SCMP feq.s, 0, 0, S_QNAN, S_ONE
  T_SCMP feq.s, 0, 0, S_QNAN, S_QNAN
  T_SCMP feq.s, 0, NV, S_SNAN, S_ONE
  T_SCMP feq.s, 0, NV, S_ONE, S_SNAN
  T_SCMP flt.s, 1, 0, S_ONE, S_TWO
  T_SCMP flt.s, 0, 0, S_TWO, S_ONE
  T_SCMP flt.s, 0, 0, S_ONE, S_ONE
  T_SCMP flt.s, 0, 0, S_NZERO, S_ZERO
  T_SCMP flt.s, 1, 0, S_NINF, S_INF
  T_SCMP flt.s, 1, 0, S_NONE, S_MINSUB
  T_SCMP flt.s, 0, NV, S_QNAN, S_ONE
  T_SCMP flt.s, 0, NV, S_ONE, S_SNAN
  T_SCMP fle.s, 1, 0, S_ONE, S_ONE
  T_SCMP fle.s, 1, 0, S_NZERO, S_ZERO
  T_SCMP fle.s, 0, 0, S_TWO, S_ONE
  T_SCMP fle.s, 0, NV, S_QNAN, S_QNAN
  T_SCMP fle.s, 0, NV, S_SNAN, S_ONE
  T_DCMP feq.d, 1, 0, D_ONE, D_ONE
  T_DCMP feq.d, 1, 0, D_ZERO, D_NZERO
  T_DCMP feq.d, 0, 0, D_QNAN, D_QNAN
  T_DCMP feq.d, 0, NV, D_SNAN, D_ONE
  T_DCMP flt.d, 1, 0, D_NONE, D_ONE
  T_DCMP flt.d, 0, 0, D_ONE, D_NONE
  T_DCMP flt.d, 0, NV, D_QNAN, D_ONE
  T_DCMP fle.d, 1, 0, D_TWO, D_TWO
  T_DCMP fle.d, 0, NV, D_ONE, D_QNAN
  T_DCMP fle.d, 1, 0, D_NINF, D_NINF
  # ---- FCLASS ----
  T_SCLASS 0x001, S_NINF
  T_SCLASS 0x002, S_NONE
  T_SCLASS 0x004, 0x80000001
  T_SCLASS 0x008, S_NZERO
  T_SCLASS 0x010, S_ZERO
  T_SCLASS 0x020, 0x007fffff
  T_SCLASS 0x040, S_MINN
  T_SCLASS 0x080, S_INF
  T_SCLASS 0x100, S_SNAN
  T_SCLASS 0x100, 0xffbfffff
  T_SCLASS 0x200, S_QNAN
  T_SCLASS 0x200, 0xffc00001
  T_DCLASS 0x001, D_NINF
  T_DCLASS 0x002, D_NMAX
  T_DCLASS 0x004, 0x800fffffffffffff
  T_DCLASS 0x008, D_NZERO
  T_DCLASS 0x010, D_ZERO
  T_DCLASS 0x020, D_MINSUB
  T_DCLASS 0x040, D_ONE
  T_DCLASS 0x080, D_INF
  T_DCLASS 0x100, D_SNAN
  T_DCLASS 0x200, D_QNAN
  CHECK_FFLAGS 0
  # ---- sign injection ----
  T_S2 fsgnj.s, S_NONE, 0, S_ONE, 0xc0000000
  T_S2 fsgnj.s, S_ONE, 0, S_NONE, S_TWO
  T_S2 fsgnjn.s, S_ONE, 0, S_ONE, 0xc0000000
  T_S2 fsgnjn.s, S_NONE, 0, S_ONE, S_TWO
  T_S2 fsgnjx.s, S_ONE, 0, S_NONE, 0xc0000000
  T_S2 fsgnjx.s, S_NONE, 0, S_NONE, S_TWO
  T_S2 fsgnjx.s, S_NONE, 0, S_ONE, 0xc0000000
  T_S2 fsgnjn.s, 0xff800001, 0, S_SNAN, S_SNAN
  T_S2 fsgnj.s, 0xffc12345, 0, 0x7fc12345, S_NINF
  T_D2 fsgnj.d, D_NONE, 0, D_ONE, D_NINF
  T_D2 fsgnjn.d, D_NONE, 0, D_ONE, D_ONE
  T_D2 fsgnjx.d, D_ONE, 0, D_NONE, D_NONE
  T_D2 fsgnjx.d, D_NONE, 0, D_NONE, D_ONE
  T_D2 fsgnjn.d, 0xfff0000000000001, 0, D_SNAN, D_SNAN
  LOAD_S f1, S_NINF
  fabs.s f3, f1
  CHECK_FS f3, S_INF
  fneg.s f3, f3
  CHECK_FS f3, S_NINF
  fmv.s f31, f3
  CHECK_FS f31, S_NINF
  LOAD_D f1, D_NONE
  fabs.d f0, f1
  CHECK_FD f0, D_ONE
  fneg.d f3, f0
  CHECK_FD f3, D_NONE
  fmv.d f31, f0
  CHECK_FD f31, D_ONE
  CHECK_FFLAGS 0
  # ---- integer <-> FP moves ----
  LOAD_S f1, 0x80000000
  fmv.x.w a0, f1
  CHECK_EQ a0, 0xffffffff80000000
  LOAD_S f1, S_INF
  fmv.x.w a0, f1
  CHECK_EQ a0, 0x7f800000
  li a1, 0x123456783f800000
  fmv.w.x f1, a1
  CHECK_FS f1, S_ONE
  li a1, 0x123456789abcdef0
  fmv.d.x f1, a1
  fmv.x.w a0, f1                # no boxing check on the transfer
  CHECK_EQ a0, 0xffffffff9abcdef0
  fmv.x.d a0, f1
  CHECK_EQ a0, 0x123456789abcdef0
  li a1, D_SNAN
  fmv.d.x f2, a1
  fmv.x.d a0, f2
  CHECK_EQ a0, D_SNAN
  CHECK_FFLAGS 0
  # ---- loads and stores ----
  la s0, fbuf
  li a1, 0x5a5a5a5a7f800001
  sd a1, 0(s0)
  flw f1, 0(s0)                  # sNaN loaded unchanged, NaN-boxed
  CHECK_FS f1, 0x7f800001
  flw f2, 4(s0)
  CHECK_FS f2, 0x5a5a5a5a
  fld f3, 0(s0)
  CHECK_FD f3, 0x5a5a5a5a7f800001
  LOAD_S f4, S_THREE
  fsw f4, 8(s0)
  sw zero, 12(s0)
  fsw f4, 12(s0)
  ld a0, 8(s0)
  CHECK_EQ a0, 0x4040000040400000
  li a1, 0x1122334455667788
  fmv.d.x f5, a1
  fsw f5, 16(s0)                 # an unboxed value: low 32 bits stored as they are
  sw zero, 20(s0)
  ld a0, 16(s0)
  CHECK_EQ a0, 0x0000000055667788
  fsd f5, 24(s0)
  ld a0, 24(s0)
  CHECK_EQ a0, 0x1122334455667788
  addi s1, s0, 32
  fld f6, -8(s1)
  CHECK_FD f6, 0x1122334455667788
  flw f6, -4(s1)
  CHECK_FS f6, 0x11223344
  # misaligned FP loads and stores
  fsd f5, 33(s0)
  fld f7, 33(s0)
  CHECK_FD f7, 0x1122334455667788
  lbu a0, 33(s0)
  CHECK_EQ a0, 0x88
  flw f7, 35(s0)
  CHECK_FS f7, 0x33445566
  fsw f4, 46(s0)
  lwu a0, 46(s0)
  CHECK_EQ a0, 0x40400000
  flw f7, 46(s0)
  CHECK_FS f7, S_THREE
  CHECK_FFLAGS 0
  # ---- NaN-boxing of single-precision operands ----
  LOAD_D f1, UNBOXED_M1
  LOAD_S f2, S_ONE
  fadd.s f3, f1, f2
  CHECK_FS f3, S_QNAN
  CHECK_FFLAGS 0
  fsgnj.s f3, f1, f2            # magnitude from the canonical NaN
  CHECK_FS f3, S_QNAN
  fsgnj.s f3, f2, f1            # sign from the canonical NaN (positive)
  CHECK_FS f3, S_ONE
  fsgnjn.s f3, f2, f1
  CHECK_FS f3, S_NONE
  fmin.s f3, f1, f2
  CHECK_FS f3, S_ONE
  CHECK_FFLAGS 0
  fclass.s a0, f1
  CHECK_EQ a0, 0x200
  feq.s a0, f1, f1
  CHECK_EQ a0, 0
  CHECK_FFLAGS 0
  flt.s a0, f1, f2
  CHECK_EQ a0, 0
  CHECK_FFLAGS NV
  fcvt.w.s a0, f1
  CHECK_EQ a0, 0x7fffffff
  CHECK_FFLAGS NV
  LOAD_D f4, 0xfffffffe3f800000  # upper bits almost all ones: still not boxed
  fmul.s f3, f4, f2
  CHECK_FS f3, S_QNAN
  fmadd.s f3, f2, f2, f4
  CHECK_FS f3, S_QNAN
  fsqrt.s f3, f4
  CHECK_FS f3, S_QNAN
  CHECK_FFLAGS 0

  .data
  .balign 16
fbuf:
  .skip 64
  .text
TEST_END
