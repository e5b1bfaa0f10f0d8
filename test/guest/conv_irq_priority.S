# Spec rule (priv 1.12, 3.1.9 / 4.1.3): simultaneous pending interrupts are taken in the order
# MEI > MSI > MTI > SEI > SSI > STI (M-mode, nothing delegated), and SEI > SSI > STI in S-mode
# (delegated). MEI cannot be raised on this machine (no interrupt controller), so it is not
# exercised. (QEMU 7.2 deviates: without AIA it takes the lowest-numbered pending interrupt.)
#include "common.h"
#include "irq.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  SET_STVEC
  MTIMECMP_SET_NEVER
  MSIP_SET 0
  # ---- M-mode: MSI > MTI > SEI > SSI > STI ----
  csrw mideleg, zero
  MSIP_SET 1
  MTIMECMP_SET_NOW
  li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
  csrs mip, t0
  li t0, MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
  csrw mie, t0
  SPIN
  li s2, 0                      # s2 = sequence of causes, 4 bits each
  li s3, 5
prio_loop:
  SET_RESUME prio_taken
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  WAIT_IRQ
RESUME_HERE prio_taken
  csrr a0, mcause
  slli s2, s2, 4
  andi a1, a0, 0xf
  or s2, s2, a1
  li a2, IRQ_MSI
  bne a1, a2, 4f
  MSIP_SET 0
  j 8f
4:
  li a2, IRQ_MTI
  bne a1, a2, 5f
  MTIMECMP_SET_NEVER
  j 8f
5:
  li t0, 1
  sll t0, t0, a1
  csrc mip, t0
8:
  SPIN 100
  addi s3, s3, -1
  bnez s3, prio_loop
  CHECK_EQ s2, 0x37915
  csrw mie, zero

  # ---- S-mode, delegated: SEI > SSI > STI ----
  li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
  csrw mideleg, t0
  csrw mie, t0
  csrs mip, t0
  li s2, 0
  li s3, 3
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  GOTO_MODE PRV_S, s_start
s_start:                        # S-mode
  SET_RESUME s_entry
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
s_entry:
  li tp, 0
  csrr a0, scause
  slli s2, s2, 4
  andi a1, a0, 0xf
  or s2, s2, a1
  li t0, 1
  sll t0, t0, a1
  SET_RESUME s_m_clear          # S cannot clear STIP/SEIP: ask M (ECALL), M clears t0's bit
  ecall
s_m_clear_back:
  addi s3, s3, -1
  bnez s3, s_start
  SET_RESUME m_back
  ecall
s_m_clear:                      # M-mode: clear the bit in t0, return to S
  li tp, 0
  csrc mip, t0
  la t1, s_m_clear_back
  csrw mepc, t1
  mret
RESUME_HERE m_back
  CHECK_EQ s2, 0x915
  csrw mie, zero
  csrw mideleg, zero
TEST_END
