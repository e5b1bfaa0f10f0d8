# mstatus trap-virtualisation bits: TVM (satp access and SFENCE.VMA illegal in S, fine in M),
# TSR (SRET illegal in S, fine in M), TW (WFI illegal in S); with TW = 0 a WFI in S returns when
# an enabled interrupt is pending even though it is globally masked (sstatus.SIE = 0).
#include "common.h"

.macro TRY_S insn:vararg
  li a0, 0x99
  SET_RESUME .Lts_done\@
  GOTO_MODE PRV_S, .Lts_code\@
.Lts_code\@:
  \insn
  ecall
.Lts_done\@:
  li tp, 0
  csrr a0, mcause
.endm

TEST_BEGIN
  PMP_ALLOW_ALL
  csrw satp, zero
  # ---- TVM ----
  TRY_S csrr a1, satp
  CHECK_EQ a0, CAUSE_ECALL_S
  TRY_S sfence.vma
  CHECK_EQ a0, CAUSE_ECALL_S
  li t0, MSTATUS_TVM
  csrs mstatus, t0
  TRY_S csrr a1, satp
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_S csrw satp, zero
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_S sfence.vma
  CHECK_EQ a0, CAUSE_ILLEGAL
  TRY_S sfence.vma a0, zero
  CHECK_EQ a0, CAUSE_ILLEGAL
  csrr a1, satp                 # M-mode is not affected
  sfence.vma
  li t0, MSTATUS_TVM
  csrc mstatus, t0
  # ---- TSR ----
  SET_RESUME tsr_back0
  GOTO_MODE PRV_S, tsr_s0
tsr_s0:
  li t0, MSTATUS_SPP
  csrs sstatus, t0
  la t0, tsr_s0b
  csrw sepc, t0
  sret
  FAIL_NOW
tsr_s0b:
  ecall
RESUME_HERE tsr_back0
  CHECK_CSR mcause, CAUSE_ECALL_S
  li t0, MSTATUS_TSR
  csrs mstatus, t0
  TRY_S sret
  CHECK_EQ a0, CAUSE_ILLEGAL
  # SRET in M-mode still works with TSR = 1
  li t0, MSTATUS_SPP
  csrs mstatus, t0
  SET_RESUME tsr_back
  la t0, tsr_s
  csrw sepc, t0
  sret
tsr_s:
  ecall
RESUME_HERE tsr_back
  CHECK_CSR mcause, CAUSE_ECALL_S
  li t0, MSTATUS_TSR
  csrc mstatus, t0
  # ---- TW ----
  # make WFI return at once: SSIP pending and enabled in sie, but SIE = 0 and delegated to S
  li t0, MIP_SSIP
  csrw mideleg, t0
  csrw mie, t0
  csrs mip, t0
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  TRY_S wfi
  CHECK_EQ a0, CAUSE_ECALL_S
  li t0, MSTATUS_TW
  csrs mstatus, t0
  TRY_S wfi
  CHECK_EQ a0, CAUSE_ILLEGAL
  li t0, MSTATUS_TW
  csrc mstatus, t0
  # WFI in M-mode with TW = 1 is fine
  li t0, MSTATUS_TW
  csrs mstatus, t0
  wfi
  li t0, MSTATUS_TW
  csrc mstatus, t0
  li t0, MIP_SSIP
  csrc mip, t0
  csrw mie, zero
  csrw mideleg, zero
TEST_END
