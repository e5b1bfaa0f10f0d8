# Machine-level interrupts: machine software (CLINT msip) and machine timer (CLINT mtimecmp vs
# mtime, both "now" and a bit later), mip.MSIP/MTIP reflecting the sources, masking by
# mstatus.MIE and by mie in M-mode, M interrupts always taken while in S or U (even with MIE =
# 0), mcause interrupt bit and mepc, mtvec vectored mode (interrupt -> base + 4*cause, exception
# -> base), and WFI returning when an interrupt becomes pending while MIE = 0.
#include "common.h"
#include "irq.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  MTIMECMP_SET_NEVER
  MSIP_SET 0
  csrw mie, zero
  SPIN
  CHECK_CSR_MASK mip, (MIP_MSIP | MIP_MTIP), 0

  # ---- machine software interrupt ----
  li t0, MIP_MSIP
  csrw mie, t0
  MSIP_SET 1
  SPIN
  CHECK_CSR_MASK mip, MIP_MSIP, MIP_MSIP  # pending, but MIE = 0: not taken
  SET_RESUME msi_taken
  li t0, MSTATUS_MIE
msi_enable:
  csrs mstatus, t0
  WAIT_IRQ
msi_end:
RESUME_HERE msi_taken
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_MSI)
  CHECK_CSR mtval, 0
  # mepc: somewhere after the enabling csrs, before the failure path
  csrr a0, mepc
  la a1, msi_enable
  CHECK_LTU a1, a0
  la a1, msi_end
  CHECK_LTU a0, a1
  CHECK_CSR_MASK mstatus, (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP), (MSTATUS_MPIE | MSTATUS_MPP_M)
  MSIP_SET 0
  SPIN
  CHECK_CSR_MASK mip, MIP_MSIP, 0
  # enabled in mstatus but not in mie: not taken
  csrw mie, zero
  MSIP_SET 1
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  SPIN
  csrc mstatus, t0
  MSIP_SET 0

  # ---- machine timer interrupt ----
  MTIMECMP_SET_NOW
  SPIN
  CHECK_CSR_MASK mip, MIP_MTIP, MIP_MTIP
  MTIMECMP_SET_NEVER
  SPIN
  CHECK_CSR_MASK mip, MIP_MTIP, 0
  li t0, MIP_MTIP
  csrw mie, t0
  # mtimecmp a little in the future: taken eventually
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  addi t1, t1, 500
  li t0, CLINT_MTIMECMP
  sd t1, 0(t0)
  SET_RESUME mti_taken
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  li t3, 50000000
1:
  addi t3, t3, -1
  bnez t3, 1b
  FAIL_NOW
RESUME_HERE mti_taken
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_MTI)
  MTIMECMP_SET_NEVER

  # ---- WFI wakes up on a pending interrupt even with MIE = 0 ----
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  li t0, MIP_MTIP
  csrw mie, t0
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  addi t1, t1, 200
  li t0, CLINT_MTIMECMP
  sd t1, 0(t0)
  li s1, 100000
2:
  wfi
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  bnez a0, 3f
  addi s1, s1, -1
  bnez s1, 2b
3:
  CHECK_EQ a0, MIP_MTIP
  MTIMECMP_SET_NEVER
  csrw mie, zero

  # ---- taken in S and U regardless of mstatus.MIE ----
  li t0, MIP_MSIP
  csrw mie, t0
  MSIP_SET 1
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  SET_RESUME s_irq
  GOTO_MODE PRV_S, s_code
s_code:
  WAIT_IRQ
RESUME_HERE s_irq
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_MSI)
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, MSTATUS_MPP_S
  li t0, MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, t0
  SET_RESUME u_irq
  GOTO_MODE PRV_U, u_code
u_code:
  WAIT_IRQ
RESUME_HERE u_irq
  CHECK_CSR mcause, (CAUSE_INTR | IRQ_MSI)
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, 0
  # ... but not when disabled in mie
  csrw mie, zero
  SET_RESUME u_back
  GOTO_MODE PRV_U, u_code2
u_code2:
  SPIN
  ecall
RESUME_HERE u_back
  CHECK_CSR mcause, CAUSE_ECALL_U
  MSIP_SET 0

  # (priority among pending interrupts: conv_irq_priority.S, QEMU 7.2 deviates)

  # ---- vectored mtvec ----
  la t0, vec_table
  ori t0, t0, 1
  csrw mtvec, t0
  CHECK_CSR_MASK mtvec, 3, 1
  li s9, -1
  li t0, MIP_MSIP
  csrw mie, t0
  MSIP_SET 1
  SET_RESUME vec_back1
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  WAIT_IRQ
RESUME_HERE vec_back1
  CHECK_EQ s9, IRQ_MSI
  MSIP_SET 0
  li t0, MIP_MTIP
  csrw mie, t0
  MTIMECMP_SET_NOW
  SET_RESUME vec_back2
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  WAIT_IRQ
RESUME_HERE vec_back2
  CHECK_EQ s9, IRQ_MTI
  MTIMECMP_SET_NEVER
  csrw mie, zero
  # exceptions use the base
  SET_RESUME vec_back3
  ecall
RESUME_HERE vec_back3
  CHECK_EQ s9, 0
  CHECK_CSR mcause, CAUSE_ECALL_M
  la t0, trap_m_entry
  csrw mtvec, t0
  j irq_done

  .balign 256
vec_table:
  j vec_0
  j vec_other
  j vec_other
  j vec_3
  j vec_other
  j vec_other
  j vec_other
  j vec_7
  j vec_other
  j vec_other
  j vec_other
  j vec_other
vec_0:
  li s9, 0
  jr tp
vec_3:
  li s9, 3
  jr tp
vec_7:
  li s9, 7
  jr tp
vec_other:
  li s9, 99
  jr tp
irq_done:
TEST_END
