# Floating-point control and status: fcsr/frm/fflags CSR views and pseudo-instructions
# (FSCSR/FRCSR/FSRM/FSRMI/FSFLAGS/FSFLAGSI), reserved rounding modes (frm 5..7 with dynamic rm,
# static rm 5/6) raising illegal instruction, mstatus.FS = Off making every FP instruction and
# FP CSR illegal, and FS becoming Dirty (with SD) after FP state is written.
#include "common.h"
#include "fp.h"

TEST_BEGIN
  csrwi fcsr, 0
  fsrmi a0, FRM_RUP
  CHECK_EQ a0, 0
  csrr a0, fcsr
  CHECK_EQ a0, 0x60
  frrm a0
  CHECK_EQ a0, FRM_RUP
  fsflagsi a0, 0x1f
  CHECK_EQ a0, 0
  csrr a0, fcsr
  CHECK_EQ a0, 0x7f
  frflags a0
  CHECK_EQ a0, 0x1f
  li a1, 0xa5
  fscsr a0, a1
  CHECK_EQ a0, 0x7f
  frcsr a0
  CHECK_EQ a0, 0xa5
  frrm a0
  CHECK_EQ a0, 5
  frflags a0
  CHECK_EQ a0, 0x05
  csrci fflags, 0x04
  csrr a0, fcsr
  CHECK_EQ a0, 0xa1
  csrsi frm, 2
  frrm a0
  CHECK_EQ a0, 7
  li a1, 0x12
  fsflags a0, a1
  CHECK_EQ a0, 0x01
  csrr a0, fcsr
  CHECK_EQ a0, 0xf2
  li a1, FRM_RTZ
  fsrm a0, a1
  CHECK_EQ a0, 7
  csrr a0, fcsr
  CHECK_EQ a0, 0x32
  csrwi fflags, 0
  csrr a0, fcsr
  CHECK_EQ a0, 0x20
  # arithmetic flags accrue into fcsr
  LOAD_S f1, S_ONE
  LOAD_S f2, S_ZERO
  fdiv.s f3, f1, f2
  csrr a0, fcsr
  CHECK_EQ a0, (0x20 | DZ)
  csrwi fcsr, 0

  # ---- reserved rounding modes ----
  LOAD_S f1, S_ONE
  LOAD_S f2, S_TWO
  fsrmi 5
  EXPECT_TRAP_M CAUSE_ILLEGAL, fadd.s f3, f1, f2, dyn
  fsrmi 6
  EXPECT_TRAP_M CAUSE_ILLEGAL, fmul.d f3, f1, f2, dyn
  fsrmi 7
  EXPECT_TRAP_M CAUSE_ILLEGAL, fcvt.w.s a0, f1, dyn
  EXPECT_TRAP_M CAUSE_ILLEGAL, fmadd.s f3, f1, f2, f2, dyn
  # instructions without a rounding mode are not affected
  fmin.s f3, f1, f2
  CHECK_FS f3, S_ONE
  fsgnjn.s f3, f1, f2
  CHECK_FS f3, S_NONE
  fsrmi FRM_RNE
  # static rm 5 and 6 are reserved (fadd.s f3, f1, f2 with rm = 5 / 6)
  EXPECT_TRAP_M CAUSE_ILLEGAL, .insn r 0x53, 5, 0x00, f3, f1, f2
  EXPECT_TRAP_M CAUSE_ILLEGAL, .insn r 0x53, 6, 0x01, f3, f1, f2
  # rm = 7 in the instruction means dynamic: valid with a valid frm
  .insn r 0x53, 7, 0x00, f3, f1, f2
  CHECK_FS f3, S_THREE
  CHECK_FFLAGS 0

  # ---- mstatus.FS = Off: FP instructions and FP CSRs are illegal ----
  li t0, MSTATUS_FS
  csrc mstatus, t0
  CHECK_CSR_MASK mstatus, MSTATUS_FS, 0
  la s0, fpbuf
  EXPECT_TRAP_M CAUSE_ILLEGAL, fadd.s f3, f1, f2
  EXPECT_TRAP_M CAUSE_ILLEGAL, fadd.d f3, f1, f2
  EXPECT_TRAP_M CAUSE_ILLEGAL, flw f3, 0(s0)
  EXPECT_TRAP_M CAUSE_ILLEGAL, fsd f3, 0(s0)
  EXPECT_TRAP_M CAUSE_ILLEGAL, fmv.x.w a0, f1
  EXPECT_TRAP_M CAUSE_ILLEGAL, fmv.d.x f1, a0
  EXPECT_TRAP_M CAUSE_ILLEGAL, fmadd.d f3, f1, f2, f2
  EXPECT_TRAP_M CAUSE_ILLEGAL, fcvt.s.w f3, a0
  EXPECT_TRAP_M CAUSE_ILLEGAL, fclass.d a0, f1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrr a0, fcsr
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrr a0, fflags
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrwi frm, 1
  # ---- FS tracking: Initial/Clean -> Dirty after writing FP state, SD follows ----
  li t0, MSTATUS_FS_INIT
  csrs mstatus, t0
  CHECK_CSR_MASK mstatus, (MSTATUS_FS | MSTATUS_SD), MSTATUS_FS_INIT
  CHECK_CSR_MASK sstatus, MSTATUS_FS, MSTATUS_FS_INIT
  fadd.s f3, f1, f2
  CHECK_CSR_MASK mstatus, (MSTATUS_FS | MSTATUS_SD), (MSTATUS_FS_DIRTY | MSTATUS_SD)
  CHECK_CSR_MASK sstatus, (MSTATUS_FS | MSTATUS_SD), (MSTATUS_FS_DIRTY | MSTATUS_SD)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  CHECK_CSR_MASK mstatus, (MSTATUS_FS | MSTATUS_SD), (2 << 13)
  li a0, 5
  fmv.w.x f4, a0
  CHECK_CSR_MASK mstatus, (MSTATUS_FS | MSTATUS_SD), (MSTATUS_FS_DIRTY | MSTATUS_SD)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  fld f5, 0(s0)
  CHECK_CSR_MASK mstatus, MSTATUS_FS, MSTATUS_FS_DIRTY
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  csrwi fflags, 1
  CHECK_CSR_MASK mstatus, MSTATUS_FS, MSTATUS_FS_DIRTY
  csrwi fflags, 0
  # FP state survives FS = Off and back
  LOAD_D f9, 0x0123456789abcdef
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, MSTATUS_FS_INIT
  csrs mstatus, t0
  CHECK_FD f9, 0x0123456789abcdef

  .data
  .balign 8
fpbuf:
  .dword 0
  .text
TEST_END
