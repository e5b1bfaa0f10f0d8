# Convention: the time CSR (Zicntr) reads mtime; it advances, lies between two MMIO reads of
# mtime, and S/U reads are gated by mcounteren.TM / scounteren.TM.
# (QEMU 7.2 -M spike deviates: it has no time CSR, so every read is an illegal instruction.)
#include "common.h"

#define TM 2

.macro TRY_IN_MODE prv, insn:vararg
  li a0, 0x99
  li a1, 0
  SET_RESUME .Ltm_done\@
  GOTO_MODE \prv, .Ltm_code\@
.Ltm_code\@:
  \insn
  ecall
.Ltm_done\@:
  li tp, 0
  csrr a0, mcause
.endm

TEST_BEGIN
  li s5, CLINT_MTIME
  ld s0, 0(s5)
  rdtime s1
  ld s2, 0(s5)
  CHECK_LTU s1, s2
  addi s1, s1, 1
  CHECK_LTU s0, s1
  # time advances (bounded wait)
  rdtime s0
  li s3, 20000000
1:
  rdtime s1
  bne s1, s0, 2f
  addi s3, s3, -1
  bnez s3, 1b
2:
  CHECK_LTU s0, s1
  # gating
  PMP_ALLOW_ALL
  csrw mcounteren, zero
  csrw scounteren, zero
  TRY_IN_MODE PRV_S, rdtime a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  csrwi mcounteren, TM
  TRY_IN_MODE PRV_S, rdtime a1
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_NE a1, 0
  TRY_IN_MODE PRV_U, rdtime a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  csrwi scounteren, TM
  TRY_IN_MODE PRV_U, rdtime a1
  CHECK_EQ a0, CAUSE_ECALL_U
  CHECK_NE a1, 0
  TRY_IN_MODE PRV_U, csrw time, zero
  CHECK_EQ a0, CAUSE_ILLEGAL
  li a0, 1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrs a1, time, a0
TEST_END
