# F/D conversions: FCVT.{W,WU,L,LU}.{S,D} (all rounding modes, saturation on overflow, NaN and
# infinities, NV vs NX, sign extension of 32-bit results), FCVT.{S,D}.{W,WU,L,LU} (rounding of
# wide integers, upper bits ignored by W forms), FCVT.S.D / FCVT.D.S (rounding, overflow,
# underflow, NaN canonicalisation and signalling).
#include "common.h"
#include "fp.h"

.macro T_SI insn, rm, exp, flags, a
  LOAD_S f1, \a
  \insn a0, f1, \rm
  CHECK_EQ a0, \exp
  CHECK_FFLAGS \flags
.endm
.macro T_DI insn, rm, exp, flags, a
  LOAD_D f1, \a
  \insn a0, f1, \rm
  CHECK_EQ a0, \exp
  CHECK_FFLAGS \flags
.endm
.macro T_IS insn, rm, exp, flags, a
  li a1, \a
  \insn f3, a1, \rm
  CHECK_FS f3, \exp
  CHECK_FFLAGS \flags
.endm
.macro T_ID_EXACT insn, exp, flags, a
  li a1, \a
  \insn f3, a1
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm
.macro T_ID insn, rm, exp, flags, a
  li a1, \a
  \insn f3, a1, \rm
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm

#define S_2P5  0x40200000
#define S_M2P5 0xc0200000
#define D_2P5  0x4004000000000000
#define D_M2P5 0xc004000000000000

TEST_BEGIN
  # ---- single -> 32-bit integer ----
  T_SI fcvt.w.s, rne, 1, 0, S_ONE
  T_SI fcvt.w.s, rne, 2, NX, S_2P5
  T_SI fcvt.w.s, rtz, 2, NX, S_2P5
  T_SI fcvt.w.s, rdn, 2, NX, S_2P5
  T_SI fcvt.w.s, rup, 3, NX, S_2P5
  T_SI fcvt.w.s, rmm, 3, NX, S_2P5
  T_SI fcvt.w.s, rne, -2, NX, S_M2P5
  T_SI fcvt.w.s, rtz, -2, NX, S_M2P5
  T_SI fcvt.w.s, rdn, -3, NX, S_M2P5
  T_SI fcvt.w.s, rup, -2, NX, S_M2P5
  T_SI fcvt.w.s, rmm, -3, NX, S_M2P5
  fsrmi FRM_RUP
  T_SI fcvt.w.s, dyn, 3, NX, S_2P5
  fsrmi FRM_RNE
  T_SI fcvt.w.s, dyn, 2, NX, S_2P5
  T_SI fcvt.w.s, rne, 2, NX, 0x3fc00000
  T_SI fcvt.w.s, rne, 0, NX, S_HALF
  T_SI fcvt.w.s, rne, 0, NX, 0xbf000000
  T_SI fcvt.w.s, rne, 0, 0, S_NZERO
  T_SI fcvt.w.s, rne, 0x7fffffff, NV, 0x4f32d05e
  T_SI fcvt.w.s, rne, 0xffffffff80000000, NV, 0xcf32d05e
  T_SI fcvt.w.s, rne, 0xffffffff80000000, 0, 0xcf000000
  T_SI fcvt.w.s, rne, 0x7fffffff, NV, 0x4f000000
  T_SI fcvt.w.s, rne, 0x7fffffff, NV, S_QNAN
  T_SI fcvt.w.s, rne, 0x7fffffff, NV, 0xffc00000
  T_SI fcvt.w.s, rne, 0x7fffffff, NV, S_INF
  T_SI fcvt.w.s, rne, 0xffffffff80000000, NV, S_NINF
  T_SI fcvt.wu.s, rne, 0xffffffffb2d05e00, 0, 0x4f32d05e
  T_SI fcvt.wu.s, rne, 0, NV, S_NONE
  T_SI fcvt.wu.s, rtz, 0, NX, 0xbf000000
  T_SI fcvt.wu.s, rdn, 0, NV, 0xbf000000
  T_SI fcvt.wu.s, rne, 0xffffffffffffffff, NV, S_QNAN
  T_SI fcvt.wu.s, rne, 0xffffffffffffffff, NV, S_INF
  T_SI fcvt.wu.s, rne, 0xffffffffffffffff, NV, 0x4f800000
  T_SI fcvt.wu.s, rne, 0, NV, S_NINF
  T_SI fcvt.wu.s, rup, 3, NX, S_2P5
  # ---- single -> 64-bit integer ----
  T_SI fcvt.l.s, rne, 2, NX, S_2P5
  T_SI fcvt.l.s, rmm, -3, NX, S_M2P5
  T_SI fcvt.l.s, rdn, -3, NX, S_M2P5
  T_SI fcvt.l.s, rne, 0x7fffffffffffffff, NV, 0x5f000000
  T_SI fcvt.l.s, rne, 0x8000000000000000, 0, 0xdf000000
  T_SI fcvt.l.s, rne, 0x0000008000000000, 0, 0x53000000
  T_SI fcvt.l.s, rne, 0x7fffffffffffffff, NV, S_QNAN
  T_SI fcvt.l.s, rne, 0x7fffffffffffffff, NV, S_INF
  T_SI fcvt.l.s, rne, 0x8000000000000000, NV, S_NINF
  T_SI fcvt.lu.s, rne, 0, NV, S_NONE
  T_SI fcvt.lu.s, rne, 0xffffffffffffffff, NV, 0x5f800000
  T_SI fcvt.lu.s, rne, 0xffffff0000000000, 0, 0x5f7fffff
  T_SI fcvt.lu.s, rne, 0xffffffffffffffff, NV, S_SNAN
  T_SI fcvt.lu.s, rtz, 0, NX, 0xbf000000
  T_SI fcvt.lu.s, rne, 0, NV, S_NINF
  T_SI fcvt.lu.s, rup, 3, NX, S_2P5
  # ---- double -> integer ----
  T_DI fcvt.w.d, rne, 2, NX, D_2P5
  T_DI fcvt.w.d, rtz, 2, NX, D_2P5
  T_DI fcvt.w.d, rdn, 2, NX, D_2P5
  T_DI fcvt.w.d, rup, 3, NX, D_2P5
  T_DI fcvt.w.d, rmm, 3, NX, D_2P5
  T_DI fcvt.w.d, rne, -2, NX, D_M2P5
  T_DI fcvt.w.d, rdn, -3, NX, D_M2P5
  T_DI fcvt.w.d, rup, -2, NX, D_M2P5
  T_DI fcvt.w.d, rmm, -3, NX, D_M2P5
  # 2147483647.5: in range only when rounded down
  T_DI fcvt.w.d, rne, 0x7fffffff, NV, 0x41dfffffffe00000
  T_DI fcvt.w.d, rtz, 0x7fffffff, NX, 0x41dfffffffe00000
  T_DI fcvt.w.d, rdn, 0x7fffffff, NX, 0x41dfffffffe00000
  T_DI fcvt.w.d, rup, 0x7fffffff, NV, 0x41dfffffffe00000
  T_DI fcvt.w.d, rmm, 0x7fffffff, NV, 0x41dfffffffe00000
  # -2147483648.5
  T_DI fcvt.w.d, rne, 0xffffffff80000000, NX, 0xc1e0000000100000
  T_DI fcvt.w.d, rtz, 0xffffffff80000000, NX, 0xc1e0000000100000
  T_DI fcvt.w.d, rdn, 0xffffffff80000000, NV, 0xc1e0000000100000
  T_DI fcvt.w.d, rup, 0xffffffff80000000, NX, 0xc1e0000000100000
  T_DI fcvt.w.d, rmm, 0xffffffff80000000, NV, 0xc1e0000000100000
  T_DI fcvt.w.d, rne, 0x7fffffff, NV, D_QNAN
  T_DI fcvt.w.d, rne, 0xffffffff80000000, NV, D_NINF
  T_DI fcvt.wu.d, rne, 0xffffffffffffffff, 0, 0x41efffffffe00000
  T_DI fcvt.wu.d, rne, 0xffffffffffffffff, NV, 0x41f0000000000000
  T_DI fcvt.wu.d, rne, 0, NV, D_NONE
  T_DI fcvt.wu.d, rne, 0, 0, D_NZERO
  T_DI fcvt.wu.d, rne, 0xffffffffffffffff, NV, D_SNAN
  T_DI fcvt.l.d, rne, 0x7fffffffffffffff, NV, 0x43e0000000000000
  T_DI fcvt.l.d, rne, 0x8000000000000000, 0, 0xc3e0000000000000
  T_DI fcvt.l.d, rne, 0x7ffffffffffffc00, 0, 0x43dfffffffffffff
  T_DI fcvt.l.d, rup, 3, NX, D_2P5
  T_DI fcvt.l.d, rne, 0x7fffffffffffffff, NV, D_QNAN
  T_DI fcvt.l.d, rne, 0x8000000000000000, NV, D_NINF
  T_DI fcvt.lu.d, rne, 0xfffffffffffff800, 0, 0x43efffffffffffff
  T_DI fcvt.lu.d, rne, 0xffffffffffffffff, NV, 0x43f0000000000000
  T_DI fcvt.lu.d, rne, 0, 0, D_NZERO
  T_DI fcvt.lu.d, rne, 0, NV, D_NONE
  T_DI fcvt.lu.d, rtz, 0, NX, 0xbfe0000000000000
  T_DI fcvt.lu.d, rne, 0xffffffffffffffff, NV, D_INF
  T_DI fcvt.lu.d, rne, 0xffffffffffffffff, NV, D_QNAN
  # ---- integer -> single ----
  T_IS fcvt.s.w, rne, S_NONE, 0, -1
  T_IS fcvt.s.w, rne, S_ZERO, 0, 0
  T_IS fcvt.s.w, rne, 0x4f000000, NX, 0x7fffffff
  T_IS fcvt.s.w, rtz, 0x4effffff, NX, 0x7fffffff
  T_IS fcvt.s.w, rdn, 0x4effffff, NX, 0x7fffffff
  T_IS fcvt.s.w, rup, 0x4f000000, NX, 0x7fffffff
  T_IS fcvt.s.w, rne, 0x40a00000, 0, 0x100000005
  T_IS fcvt.s.w, rne, 0xcf000000, 0, 0x80000000
  T_IS fcvt.s.wu, rne, 0x4f800000, NX, -1
  T_IS fcvt.s.wu, rtz, 0x4f7fffff, NX, -1
  T_IS fcvt.s.wu, rne, 0x4f000000, 0, 0x80000000
  T_IS fcvt.s.wu, rne, 0x40a00000, 0, 0xffffffff00000005
  T_IS fcvt.s.l, rne, 0x4b800000, NX, 0x1000001
  T_IS fcvt.s.l, rup, 0x4b800001, NX, 0x1000001
  T_IS fcvt.s.l, rne, 0x4b800002, NX, 0x1000003
  T_IS fcvt.s.l, rne, S_NONE, 0, -1
  T_IS fcvt.s.l, rne, 0xdf000000, 0, 0x8000000000000000
  T_IS fcvt.s.l, rdn, 0xcb800001, NX, -0x1000001
  T_IS fcvt.s.lu, rne, 0x5f800000, NX, -1
  T_IS fcvt.s.lu, rtz, 0x5f7fffff, NX, -1
  T_IS fcvt.s.lu, rne, 0x5f000000, 0, 0x8000000000000000
  fsrmi FRM_RTZ
  T_IS fcvt.s.lu, dyn, 0x5f7fffff, NX, -1
  fsrmi FRM_RNE
  # ---- integer -> double ----
  T_ID_EXACT fcvt.d.w, 0xc014000000000000, 0, -5
  T_ID_EXACT fcvt.d.w, 0x41dfffffffc00000, 0, 0x7fffffff
  T_ID_EXACT fcvt.d.w, 0x4008000000000000, 0, 0xffffffff00000003
  T_ID_EXACT fcvt.d.w, 0xc1e0000000000000, 0, 0x80000000
  T_ID_EXACT fcvt.d.wu, 0x41efffffffe00000, 0, -1
  T_ID_EXACT fcvt.d.wu, 0x41e0000000000000, 0, 0x80000000
  T_ID fcvt.d.l, rne, 0x4340000000000000, NX, 0x20000000000001
  T_ID fcvt.d.l, rup, 0x4340000000000001, NX, 0x20000000000001
  T_ID fcvt.d.l, rne, 0xc3e0000000000000, 0, 0x8000000000000000
  T_ID fcvt.d.l, rne, D_NONE, 0, -1
  T_ID fcvt.d.l, rne, D_ZERO, 0, 0
  T_ID fcvt.d.lu, rne, 0x43f0000000000000, NX, -1
  T_ID fcvt.d.lu, rtz, 0x43efffffffffffff, NX, -1
  T_ID fcvt.d.lu, rmm, 0x43f0000000000000, NX, -1
  # ---- double <-> single ----
  T_D1 fcvt.s.d, rne, 0xffffffff3eaaaaab, NX, 0x3fd5555555555555
  T_D1 fcvt.s.d, rtz, 0xffffffff3eaaaaaa, NX, 0x3fd5555555555555
  T_D1 fcvt.s.d, rup, 0xffffffff3eaaaaab, NX, 0x3fd5555555555555
  T_D1 fcvt.s.d, rne, 0xffffffff3f800000, 0, D_ONE
  T_D1 fcvt.s.d, rne, 0xffffffff80000000, 0, D_NZERO
  T_D1 fcvt.s.d, rne, 0xffffffff7f800000, OF|NX, 0x7e37e43c8800759c
  T_D1 fcvt.s.d, rtz, 0xffffffff7f7fffff, OF|NX, 0x7e37e43c8800759c
  T_D1 fcvt.s.d, rne, 0xffffffff7f800000, 0, D_INF
  T_D1 fcvt.s.d, rne, 0xffffffff7fc00000, NV, D_SNAN
  T_D1 fcvt.s.d, rne, 0xffffffff7fc00000, 0, 0xfff8000000012345
  T_D1 fcvt.s.d, rne, 0xffffffff00000000, UF|NX, 0x35f0000000000000
  T_D1 fcvt.s.d, rup, 0xffffffff00000001, UF|NX, 0x35f0000000000000
  T_D1 fcvt.s.d, rne, 0xffffffff00000001, 0, 0x36a0000000000000
  LOAD_S f1, 0x3eaaaaab
  fcvt.d.s f3, f1
  CHECK_FD f3, 0x3fd5555560000000
  CHECK_FFLAGS 0
  LOAD_S f1, S_SNAN
  fcvt.d.s f3, f1
  CHECK_FD f3, D_QNAN
  CHECK_FFLAGS NV
  LOAD_S f1, 0xffc01234
  fcvt.d.s f3, f1
  CHECK_FD f3, D_QNAN
  CHECK_FFLAGS 0
  LOAD_S f1, S_MINSUB
  fcvt.d.s f3, f1
  CHECK_FD f3, 0x36a0000000000000
  LOAD_S f1, S_NINF
  fcvt.d.s f3, f1
  CHECK_FD f3, D_NINF
  LOAD_D f1, 0x000000003f800000    # not NaN-boxed: reads as the canonical NaN
  fcvt.d.s f3, f1
  CHECK_FD f3, D_QNAN
  CHECK_FFLAGS 0
TEST_END
