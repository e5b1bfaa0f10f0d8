# Convention: with no PMP entry enabled, S and U have no access at all: MRET into S or U works,
# and the first fetch there raises an instruction access fault (1) with mepc = mtval = target.
# (QEMU 7.2 deviates: it makes the MRET itself an illegal instruction when no PMP rule exists.)
#include "common.h"
TEST_BEGIN
  csrw pmpcfg0, zero
  csrw pmpcfg2, zero
  sfence.vma
  SET_RESUME s_back
  GOTO_MODE PRV_S, s_code
s_code:
  ecall
RESUME_HERE s_back
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  la a0, s_code
  csrr a1, mepc
  CHECK_REGS a1, a0
  csrr a1, mtval
  CHECK_REGS a1, a0
  SET_RESUME u_back
  GOTO_MODE PRV_U, u_code
u_code:
  ecall
RESUME_HERE u_back
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  la a0, u_code
  csrr a1, mepc
  CHECK_REGS a1, a0
TEST_END
