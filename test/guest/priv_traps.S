# Privileged traps and returns without delegation: ECALL from M/S/U (causes 11/9/8), EBREAK (3),
# illegal instruction (2) with mtval = bits or 0, mepc/mcause/mtval contents, the mstatus
# MIE/MPIE/MPP stack on trap entry and MRET (MPP <- U, MPRV kept when MPP = M), SRET from S
# and from M (SIE/SPIE/SPP stack), MRET/SRET illegal in lower modes, traps from S/U taken in M.
#include "common.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  # ---- ECALL / EBREAK / illegal in M-mode ----
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  EXPECT_TRAP_M CAUSE_ECALL_M, ecall
  CHECK_CSR mtval, 0
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), MSTATUS_MPP_M
  EXPECT_TRAP_M CAUSE_BREAKPOINT, ebreak
  la tp, 1f
2:
  .word 0xfe000033              # OP with funct7 = 0x7f: no such instruction
  FAIL_NOW
1:
  li tp, 0
  CHECK_CSR mcause, CAUSE_ILLEGAL
  csrr a0, mepc
  la a1, 2b
  CHECK_REGS a0, a1
  csrr a0, mtval
  beqz a0, 3f
  CHECK_EQ a0, 0xfe000033
3:
  # MIE is pushed to MPIE on a trap and cleared (no interrupts are enabled in mie)
  csrw mie, zero
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  EXPECT_TRAP_M CAUSE_ECALL_M, ecall
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), (MSTATUS_MPP_M | MSTATUS_MPIE)
  CHECK_CSR_MASK mcause, CAUSE_INTR, 0

  # ---- MRET back to M-mode: MIE <- MPIE, MPIE <- 1, MPP <- U ----
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  li t0, MSTATUS_MPP_M
  csrs mstatus, t0
  la t0, 4f
  csrw mepc, t0
  mret
  FAIL_NOW
4:
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), MSTATUS_MPIE
  # with MPIE = 1: MIE becomes 1 (mie = 0, so nothing is taken)
  li t0, MSTATUS_MPP_M | MSTATUS_MPIE
  csrs mstatus, t0
  la t0, 5f
  csrw mepc, t0
  mret
5:
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), (MSTATUS_MPIE | MSTATUS_MIE)
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  # MRET to M keeps MPRV (MPP = M)
  li t0, MSTATUS_MPP_M | MSTATUS_MPRV
  csrs mstatus, t0
  la t0, 6f
  csrw mepc, t0
  mret
6:
  CHECK_CSR_MASK mstatus, MSTATUS_MPRV, MSTATUS_MPRV
  li t0, MSTATUS_MPRV
  csrc mstatus, t0

  # ---- ECALL from S and U ----
  SET_RESUME s_back1
  li t0, MSTATUS_MPIE
  csrs mstatus, t0
  GOTO_MODE PRV_S, s_code1
s_code1:
  ecall
  FAIL_NOW
RESUME_HERE s_back1
  CHECK_CSR mcause, CAUSE_ECALL_S
  la a0, s_code1
  csrr a1, mepc
  CHECK_REGS a1, a0
  CHECK_CSR mtval, 0
  # MRET into S set MIE <- MPIE (1); the ECALL pushed it back: MPIE = 1, MIE = 0, MPP = S
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), (MSTATUS_MPP_S | MSTATUS_MPIE)
  SET_RESUME u_back1
  li t0, MSTATUS_MPIE
  csrc mstatus, t0
  GOTO_MODE PRV_U, u_code1
u_code1:
  ecall
RESUME_HERE u_back1
  CHECK_CSR mcause, CAUSE_ECALL_U
  la a0, u_code1
  csrr a1, mepc
  CHECK_REGS a1, a0
  CHECK_CSR_MASK mstatus, (MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE), 0
  # EBREAK and an illegal instruction from U are taken in M with MPP = U
  SET_RESUME u_back2
  GOTO_MODE PRV_U, u_code2
u_code2:
  ebreak
RESUME_HERE u_back2
  CHECK_CSR mcause, CAUSE_BREAKPOINT
  la a0, u_code2
  csrr a1, mepc
  CHECK_REGS a1, a0
  SET_RESUME s_back2
  GOTO_MODE PRV_S, s_code2
s_code2:
  .word 0xfe000033
RESUME_HERE s_back2
  CHECK_CSR mcause, CAUSE_ILLEGAL
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, MSTATUS_MPP_S
  # (MRET clearing MPRV when returning below M: conv_xret_mprv.S, QEMU 7.2 deviates)

  # ---- MRET / SRET are illegal below their level ----
  SET_RESUME s_back4
  GOTO_MODE PRV_S, s_code4
s_code4:
  mret
RESUME_HERE s_back4
  CHECK_CSR mcause, CAUSE_ILLEGAL
  la a0, s_code4
  csrr a1, mepc
  CHECK_REGS a1, a0
  SET_RESUME u_back3
  GOTO_MODE PRV_U, u_code3
u_code3:
  sret
RESUME_HERE u_back3
  CHECK_CSR mcause, CAUSE_ILLEGAL
  SET_RESUME u_back4
  GOTO_MODE PRV_U, u_code4
u_code4:
  mret
RESUME_HERE u_back4
  CHECK_CSR mcause, CAUSE_ILLEGAL

  # ---- SRET from S: SIE <- SPIE, SPIE <- 1, SPP <- U, into SPP's mode ----
  SET_RESUME sret_back1
  GOTO_MODE PRV_S, s_code5
s_code5:
  li t0, MSTATUS_SIE
  csrc sstatus, t0
  li t0, MSTATUS_SPIE
  csrs sstatus, t0
  li t0, MSTATUS_SPP
  csrc sstatus, t0              # SPP = U
  la t0, u_code5
  csrw sepc, t0
  sret
  FAIL_NOW
u_code5:
  ecall
RESUME_HERE sret_back1
  CHECK_CSR mcause, CAUSE_ECALL_U
  CHECK_CSR_MASK sstatus, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE), (MSTATUS_SPIE | MSTATUS_SIE)
  # SRET with SPP = S stays in S; SPIE = 0 -> SIE = 0
  SET_RESUME sret_back2
  GOTO_MODE PRV_S, s_code6
s_code6:
  li t0, MSTATUS_SPIE
  csrc sstatus, t0
  li t0, MSTATUS_SPP | MSTATUS_SIE
  csrs sstatus, t0
  la t0, s_code6b
  csrw sepc, t0
  sret
  FAIL_NOW
s_code6b:
  ecall
RESUME_HERE sret_back2
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_CSR_MASK sstatus, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE), MSTATUS_SPIE
  # SRET executed in M-mode returns to the mode in SPP (here U)
  SET_RESUME sret_back3
  li t0, MSTATUS_SPP
  csrc mstatus, t0
  la t0, u_code7
  csrw sepc, t0
  sret
  FAIL_NOW
u_code7:
  ecall
RESUME_HERE sret_back3
  CHECK_CSR mcause, CAUSE_ECALL_U
  la a0, u_code7
  csrr a1, mepc
  CHECK_REGS a1, a0
TEST_END
