# Supervisor interrupts: SSIP/STIP/SEIP raised by M-mode writes to mip, delegated with mideleg
# and taken in S via stvec (scause interrupt bit, sepc, SPP/SPIE/SIE stack), masked in S by
# sstatus.SIE but always taken while in U, never taken in M when delegated, taken in M when not
# delegated (even with MIE = 0, from S), S clearing sip.SSIP itself, sip/sie as views of mip/mie
# restricted to delegated bits, stvec vectored mode (base + 4*cause), and an M interrupt
# preempting a pending delegated one while in S.
#include "common.h"
#include "irq.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  SET_STVEC
  MTIMECMP_SET_NEVER
  MSIP_SET 0
  li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
  csrw mideleg, t0
  CHECK_CSR_MASK mideleg, 0xaaa, MIP_SSIP | MIP_STIP | MIP_SEIP

  # ---- views ----
  li t0, -1
  csrw sie, t0
  CHECK_CSR_MASK sie, 0xaaa, MIP_SSIP | MIP_STIP | MIP_SEIP
  CHECK_CSR_MASK mie, 0xaaa, MIP_SSIP | MIP_STIP | MIP_SEIP
  csrw sie, zero
  CHECK_CSR_MASK mie, 0xaaa, 0
  li t0, MIP_SSIP
  csrs mip, t0
  CHECK_CSR_MASK sip, MIP_SSIP, MIP_SSIP
  csrc sip, t0
  CHECK_CSR_MASK mip, MIP_SSIP, 0

  # ---- SSI: pending + enabled, not taken in M (delegated), masked in S until SIE = 1 ----
  li t0, MIP_SSIP
  csrw mie, t0
  csrs mip, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  SPIN
  csrc mstatus, t0
  li s8, 0
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  SET_RESUME s_ssi
  GOTO_MODE PRV_S, s_code1
s_code1:
  SPIN
  li s8, 1
ssi_enable:
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
ssi_end:
s_ssi:                          # S-mode
  li tp, 0
  csrr s5, scause
  csrr s6, sepc
  csrr s7, sstatus
  csrci sip, MIP_SSIP           # S clears its own software interrupt
  csrr s4, sip
  SET_RESUME m_back1
  ecall
RESUME_HERE m_back1
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_EQ s8, 1
  CHECK_EQ s5, (CAUSE_INTR | IRQ_SSI)
  la a0, ssi_enable
  CHECK_LTU a0, s6
  la a0, ssi_end
  CHECK_LTU s6, a0
  andi s7, s7, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE)
  CHECK_EQ s7, (MSTATUS_SPP | MSTATUS_SPIE)
  andi s4, s4, MIP_SSIP
  CHECK_EQ s4, 0
  CHECK_CSR_MASK mip, MIP_SSIP, 0

  # ---- taken in U even with SIE = 0 ----
  li t0, MIP_SSIP
  csrs mip, t0
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  SET_RESUME s_ssi_u
  GOTO_MODE PRV_U, u_code1
u_code1:
  WAIT_IRQ
s_ssi_u:
  li tp, 0
  csrr s5, scause
  csrr s7, sstatus
  csrci sip, MIP_SSIP
  SET_RESUME m_back2
  ecall
RESUME_HERE m_back2
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_EQ s5, (CAUSE_INTR | IRQ_SSI)
  andi s7, s7, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE)
  CHECK_EQ s7, 0

  # ---- STI: raised by M (mip.STIP), read-only for S ----
  li t0, MIP_STIP
  csrw mie, t0
  csrs mip, t0
  SET_RESUME s_sti
  GOTO_MODE PRV_S, s_code2
s_code2:
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
s_sti:
  li tp, 0
  csrr s5, scause
  li t0, MIP_STIP
  csrc sip, t0                  # no effect: STIP is read-only in sip
  csrr s4, sip
  SET_RESUME m_back3
  ecall
RESUME_HERE m_back3
  CHECK_EQ s5, (CAUSE_INTR | IRQ_STI)
  andi s4, s4, MIP_STIP
  CHECK_EQ s4, MIP_STIP
  li t0, MIP_STIP
  csrc mip, t0
  CHECK_CSR_MASK mip, MIP_STIP, 0

  # ---- SEI: raised by M (mip.SEIP) ----
  li t0, MIP_SEIP
  csrw mie, t0
  csrs mip, t0
  SET_RESUME s_sei
  GOTO_MODE PRV_S, s_code3
s_code3:
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
s_sei:
  li tp, 0
  csrr s5, scause
  SET_RESUME m_back4
  ecall
RESUME_HERE m_back4
  CHECK_EQ s5, (CAUSE_INTR | IRQ_SEI)
  li t0, MIP_SEIP
  csrc mip, t0

  # ---- vectored stvec: interrupt -> base + 4 * cause ----
  la t0, svec_table
  ori t0, t0, 1
  csrw stvec, t0
  li s9, -1
  li t0, MIP_STIP
  csrw mie, t0
  csrs mip, t0
  SET_RESUME s_vec_back
  GOTO_MODE PRV_S, s_code4
s_code4:
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
s_vec_back:
  li tp, 0
  SET_RESUME m_back5
  ecall
RESUME_HERE m_back5
  CHECK_EQ s9, IRQ_STI
  li t0, MIP_STIP
  csrc mip, t0
  SET_STVEC

  # ---- not delegated: taken in M while in S, even with MIE = 0 ----
  csrw mideleg, zero
  li t0, MIP_SSIP
  csrw mie, t0
  csrs mip, t0
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  SET_RESUME m_ssi
  GOTO_MODE PRV_S, s_code5
s_code5:
  WAIT_IRQ
RESUME_HERE m_ssi
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_SSI)
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, MSTATUS_MPP_S
  li t0, MIP_SSIP
  csrc mip, t0

  # ---- an M interrupt preempts a delegated S interrupt while in S ----
  li t0, MIP_SSIP
  csrw mideleg, t0
  csrs mip, t0
  li t0, MIP_SSIP | MIP_MSIP
  csrw mie, t0
  MSIP_SET 1
  SET_RESUME m_msi
  GOTO_MODE PRV_S, s_code6
s_code6:
  csrsi sstatus, MSTATUS_SIE
  WAIT_IRQ
RESUME_HERE m_msi
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_MSI)
  MSIP_SET 0
  li t0, MIP_SSIP
  csrc mip, t0
  csrw mie, zero
  csrw mideleg, zero
  j irq_s_done

  .balign 256
svec_table:
  j svec_other
  j svec_other
  j svec_other
  j svec_other
  j svec_other
  j svec_5
  j svec_other
  j svec_other
  j svec_other
  j svec_other
svec_5:
  li s9, 5
  jr tp
svec_other:
  li s9, 99
  jr tp
irq_s_done:
TEST_END
