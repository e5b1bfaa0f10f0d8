# Exception delegation: medeleg/mideleg writable bits (M-level interrupts not delegable),
# delegated exceptions from S and U taken in S via stvec (direct and vectored base)
# with scause/sepc/stval and the sstatus SIE/SPIE/SPP stack, non-delegated ones still in M, and
# exceptions raised in M-mode never delegated.
#include "common.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  SET_STVEC
  # ---- writable bits ----
  li a0, -1
  csrw medeleg, a0
  CHECK_CSR_MASK medeleg, ((1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U) | (1 << CAUSE_LOAD_PAGE)), ((1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U) | (1 << CAUSE_LOAD_PAGE))
  csrw mideleg, a0
  CHECK_CSR_MASK mideleg, 0xaaa, 0x222
  csrw mideleg, zero
  li a0, (1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U)
  csrw medeleg, a0
  CHECK_CSR medeleg, (1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U)

  # ---- illegal instruction in S, delegated: handled in S ----
  csrw scause, zero
  csrw stval, zero
  SET_RESUME s_trap1            # S handler (stvec) jumps here, still in S
  li t0, MSTATUS_SIE
  csrs mstatus, t0              # SIE = 1 before the trap
  GOTO_MODE PRV_S, s_code1
s_code1:
  .word 0xfe000033
  FAIL_NOW
s_trap1:
  li tp, 0
  SET_RESUME m_back1
  ecall                         # back to M (ECALL from S is not delegated)
RESUME_HERE m_back1
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_CSR scause, CAUSE_ILLEGAL
  la a0, s_code1
  csrr a1, sepc
  CHECK_REGS a1, a0
  csrr a0, stval
  beqz a0, 1f
  CHECK_EQ a0, 0xfe000033
1:
  # SPP = S, SPIE = old SIE (1), SIE = 0
  CHECK_CSR_MASK sstatus, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE), (MSTATUS_SPP | MSTATUS_SPIE)
  # ---- ECALL from U, delegated ----
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  SET_RESUME s_trap2
  GOTO_MODE PRV_U, u_code2
u_code2:
  ecall
  FAIL_NOW
s_trap2:
  li tp, 0
  SET_RESUME m_back2
  ecall
RESUME_HERE m_back2
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_CSR scause, CAUSE_ECALL_U
  la a0, u_code2
  csrr a1, sepc
  CHECK_REGS a1, a0
  CHECK_CSR stval, 0
  CHECK_CSR_MASK sstatus, (MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE), 0
  # ---- EBREAK from U, delegated; stvec in vectored mode still uses the base for exceptions ----
  la t0, trap_s_entry
  ori t0, t0, 1
  csrw stvec, t0
  SET_RESUME s_trap3
  GOTO_MODE PRV_U, u_code3
u_code3:
  ebreak
s_trap3:
  li tp, 0
  SET_RESUME m_back3
  ecall
RESUME_HERE m_back3
  CHECK_CSR scause, CAUSE_BREAKPOINT
  la a0, u_code3
  csrr a1, sepc
  CHECK_REGS a1, a0
  SET_STVEC
  # ---- not delegated: ECALL from S goes to M, scause untouched ----
  csrw scause, zero
  SET_RESUME m_back4
  GOTO_MODE PRV_S, s_code4
s_code4:
  ecall
RESUME_HERE m_back4
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_CSR scause, 0
  # non-delegated load access fault from U goes to M
  SET_RESUME m_back5
  GOTO_MODE PRV_U, u_code5
u_code5:
  li a0, UNMAPPED_ADDR
  ld a0, 0(a0)
RESUME_HERE m_back5
  CHECK_CSR mcause, CAUSE_LOAD_ACCESS
  CHECK_CSR mtval, UNMAPPED_ADDR
  CHECK_CSR scause, 0
  # ---- an exception in M-mode is never delegated ----
  EXPECT_TRAP_M CAUSE_ILLEGAL, .word 0xfe000033
  CHECK_CSR scause, 0
  EXPECT_TRAP_M CAUSE_BREAKPOINT, ebreak
  CHECK_CSR scause, 0
  # ---- delegation to S of an exception from S itself (breakpoint): SPP = S ----
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  SET_RESUME s_trap6
  GOTO_MODE PRV_S, s_code6
s_code6:
  ebreak
s_trap6:
  li tp, 0
  csrr s5, scause
  csrr s6, sstatus
  csrr s7, sepc
  # SRET back into S at a new point (SPP = S)
  la t0, s_code6b
  csrw sepc, t0
  sret
s_code6b:
  SET_RESUME m_back6
  ecall
RESUME_HERE m_back6
  CHECK_EQ s5, CAUSE_BREAKPOINT
  li t0, MSTATUS_SPP
  and s6, s6, t0
  CHECK_EQ s6, MSTATUS_SPP
  la a0, s_code6
  CHECK_REGS s7, a0
  CHECK_CSR mcause, CAUSE_ECALL_S
  csrw medeleg, zero
TEST_END
