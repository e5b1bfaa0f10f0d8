# Zicntr (cycle, instret) and counter access control: the counters advance, mcycle/minstret
# are writable from M-mode, and mcounteren/scounteren gate S-mode and U-mode reads of cycle and
# instret (illegal instruction when not enabled). The time CSR is in conv_time.S.
#include "common.h"

# Run `insn` in mode `prv` (from M); on return a0 = mcause (or 0x99 if no trap) and a1 = value.
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

#define CY 1
#define IR 4

TEST_BEGIN
  # ---- counters advance ----
  rdcycle s0
  rdinstret s1
  li a0, 1000
1:
  addi a0, a0, -1
  bnez a0, 1b
  rdcycle s2
  rdinstret s3
  CHECK_LTU s0, s2
  CHECK_LTU s1, s3
  csrr a0, mcycle
  CHECK_LTU s2, a0
  csrr a0, minstret
  CHECK_LTU s3, a0
  # ---- M-mode writes to mcycle / minstret ----
  # (the value read just after the write may or may not count the writing instruction)
  li s0, 0x4000000000000000
  csrw minstret, s0
  csrr a0, instret
  CHECK_LEU s0, a0
  li a1, 0x4000000100000000
  CHECK_LTU a0, a1
  csrw mcycle, s0
  csrr a0, cycle
  CHECK_LEU s0, a0
  CHECK_LTU a0, a1
  li s0, 0x10
  csrw minstret, s0
  csrr a0, minstret
  CHECK_LEU s0, a0
  li a1, 0x100000000
  CHECK_LTU a0, a1
  # instret keeps counting after the write
  li a2, 100
1:
  addi a2, a2, -1
  bnez a2, 1b
  csrr a2, minstret
  CHECK_LTU a0, a2

  # ---- counter enables ----
  PMP_ALLOW_ALL
  csrw mcounteren, zero
  csrw scounteren, zero
  TRY_IN_MODE PRV_S, rdcycle a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_S, rdinstret a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_U, rdcycle a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  # M enables cycle only: S can read it, U cannot (scounteren = 0)
  csrwi mcounteren, CY
  CHECK_CSR mcounteren, CY
  TRY_IN_MODE PRV_S, rdcycle a1
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_NE a1, 0
  TRY_IN_MODE PRV_S, rdinstret a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_U, rdcycle a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  # S enables it for U
  csrwi scounteren, CY
  CHECK_CSR scounteren, CY
  TRY_IN_MODE PRV_U, rdcycle a1
  CHECK_EQ a0, CAUSE_ECALL_U
  CHECK_NE a1, 0
  TRY_IN_MODE PRV_U, rdinstret a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  # scounteren alone is not enough
  csrwi mcounteren, IR
  csrwi scounteren, CY | IR
  TRY_IN_MODE PRV_U, rdcycle a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_U, rdinstret a1
  CHECK_EQ a0, CAUSE_ECALL_U
  CHECK_NE a1, 0
  TRY_IN_MODE PRV_S, rdinstret a1
  CHECK_EQ a0, CAUSE_ECALL_S
  TRY_IN_MODE PRV_S, rdcycle a1
  CHECK_EQ a0, CAUSE_ILLEGAL
  # S can always read scounteren-gated counters only via mcounteren; S CSR scounteren itself
  TRY_IN_MODE PRV_S, csrr a1, scounteren
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_EQ a1, CY | IR
  # M-mode reads are never gated
  csrw mcounteren, zero
  rdcycle a0
  rdinstret a0
  # the M-level counters are not accessible from S even when enabled
  csrwi mcounteren, CY | IR
  TRY_IN_MODE PRV_S, csrr a1, mcycle
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_S, csrr a1, minstret
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_IN_MODE PRV_S, csrw cycle, zero
  CHECK_EQ a0, CAUSE_ILLEGAL
TEST_END
