/* Floating-point helpers shared by the F/D guest programs (include after common.h). */
#ifndef VIREO_GUEST_FP_H
#define VIREO_GUEST_FP_H

/* fflags bits */
#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

/* frm encodings */
#define FRM_RNE 0
#define FRM_RTZ 1
#define FRM_RDN 2
#define FRM_RUP 3
#define FRM_RMM 4

/* Single-precision bit patterns */
#define S_ZERO   0x00000000
#define S_NZERO  0x80000000
#define S_ONE    0x3f800000
#define S_NONE   0xbf800000
#define S_TWO    0x40000000
#define S_THREE  0x40400000
#define S_HALF   0x3f000000
#define S_INF    0x7f800000
#define S_NINF   0xff800000
#define S_QNAN   0x7fc00000
#define S_SNAN   0x7f800001
#define S_MAX    0x7f7fffff
#define S_NMAX   0xff7fffff
#define S_MINN   0x00800000
#define S_MINSUB 0x00000001

/* Double-precision bit patterns */
#define D_ZERO   0x0000000000000000
#define D_NZERO  0x8000000000000000
#define D_ONE    0x3ff0000000000000
#define D_NONE   0xbff0000000000000
#define D_TWO    0x4000000000000000
#define D_THREE  0x4008000000000000
#define D_HALF   0x3fe0000000000000
#define D_INF    0x7ff0000000000000
#define D_NINF   0xfff0000000000000
#define D_QNAN   0x7ff8000000000000
#define D_SNAN   0x7ff0000000000001
#define D_MAX    0x7fefffffffffffff
#define D_NMAX   0xffefffffffffffff
#define D_MINN   0x0010000000000000
#define D_MINSUB 0x0000000000000001

#ifdef __ASSEMBLER__

.macro LOAD_S freg, bits
  li t0, \bits
  fmv.w.x \freg, t0
.endm

.macro LOAD_D freg, bits
  li t0, \bits
  fmv.d.x \freg, t0
.endm

/* ---- single precision ---- */
.macro T_S1 insn, rm, exp, flags, a
  LOAD_S f1, \a
  \insn f3, f1, \rm
  CHECK_FS f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_S2 insn, exp, flags, a, b
  LOAD_S f1, \a
  LOAD_S f2, \b
  \insn f3, f1, f2
  CHECK_FS f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_S3 insn, rm, exp, flags, a, b
  LOAD_S f1, \a
  LOAD_S f2, \b
  \insn f3, f1, f2, \rm
  CHECK_FS f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_S4 insn, rm, exp, flags, a, b, c
  LOAD_S f1, \a
  LOAD_S f2, \b
  LOAD_S f4, \c
  \insn f3, f1, f2, f4, \rm
  CHECK_FS f3, \exp
  CHECK_FFLAGS \flags
.endm

/* Integer-result compare / classify */
.macro T_SCMP insn, exp, flags, a, b
  LOAD_S f1, \a
  LOAD_S f2, \b
  \insn a0, f1, f2
  CHECK_EQ a0, \exp
  CHECK_FFLAGS \flags
.endm

/* ---- double precision ---- */
.macro T_D1 insn, rm, exp, flags, a
  LOAD_D f1, \a
  \insn f3, f1, \rm
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_D2 insn, exp, flags, a, b
  LOAD_D f1, \a
  LOAD_D f2, \b
  \insn f3, f1, f2
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_D3 insn, rm, exp, flags, a, b
  LOAD_D f1, \a
  LOAD_D f2, \b
  \insn f3, f1, f2, \rm
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_D4 insn, rm, exp, flags, a, b, c
  LOAD_D f1, \a
  LOAD_D f2, \b
  LOAD_D f4, \c
  \insn f3, f1, f2, f4, \rm
  CHECK_FD f3, \exp
  CHECK_FFLAGS \flags
.endm

.macro T_DCMP insn, exp, flags, a, b
  LOAD_D f1, \a
  LOAD_D f2, \b
  \insn a0, f1, f2
  CHECK_EQ a0, \exp
  CHECK_FFLAGS \flags
.endm

/*
 * Binary op in all five rounding modes, each both static and dynamic (frm); `flags` is the same
 * for all modes. kind = S or D.
 */
.macro T_RM3 kind, insn, a, b, flags, rne, rtz, rdn, rup, rmm
  T_\kind\()3 \insn, rne, \rne, \flags, \a, \b
  T_\kind\()3 \insn, rtz, \rtz, \flags, \a, \b
  T_\kind\()3 \insn, rdn, \rdn, \flags, \a, \b
  T_\kind\()3 \insn, rup, \rup, \flags, \a, \b
  T_\kind\()3 \insn, rmm, \rmm, \flags, \a, \b
  fsrmi FRM_RNE
  T_\kind\()3 \insn, dyn, \rne, \flags, \a, \b
  fsrmi FRM_RTZ
  T_\kind\()3 \insn, dyn, \rtz, \flags, \a, \b
  fsrmi FRM_RDN
  T_\kind\()3 \insn, dyn, \rdn, \flags, \a, \b
  fsrmi FRM_RUP
  T_\kind\()3 \insn, dyn, \rup, \flags, \a, \b
  fsrmi FRM_RMM
  T_\kind\()3 \insn, dyn, \rmm, \flags, \a, \b
  fsrmi FRM_RNE
.endm

.macro T_RM1 kind, insn, a, flags, rne, rtz, rdn, rup, rmm
  T_\kind\()1 \insn, rne, \rne, \flags, \a
  T_\kind\()1 \insn, rtz, \rtz, \flags, \a
  T_\kind\()1 \insn, rdn, \rdn, \flags, \a
  T_\kind\()1 \insn, rup, \rup, \flags, \a
  T_\kind\()1 \insn, rmm, \rmm, \flags, \a
  fsrmi FRM_RUP
  T_\kind\()1 \insn, dyn, \rup, \flags, \a
  fsrmi FRM_RTZ
  T_\kind\()1 \insn, dyn, \rtz, \flags, \a
  fsrmi FRM_RNE
.endm

#endif /* __ASSEMBLER__ */
#endif /* VIREO_GUEST_FP_H */
