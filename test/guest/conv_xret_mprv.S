# Priv 1.12 rule: an MRET or SRET that returns to a mode below M clears mstatus.MPRV.
# (QEMU 7.2 deviates: MPRV stays set.)
#include "common.h"
TEST_BEGIN
  PMP_ALLOW_ALL
  li t0, MSTATUS_MPRV
  csrs mstatus, t0
  SET_RESUME s_back
  GOTO_MODE PRV_S, s_code
s_code:
  ecall
RESUME_HERE s_back
  CHECK_CSR mcause, CAUSE_ECALL_S
  CHECK_CSR_MASK mstatus, MSTATUS_MPRV, 0
  # SRET from M-mode to U also clears it
  li t0, MSTATUS_MPRV
  csrs mstatus, t0
  li t0, MSTATUS_SPP
  csrc mstatus, t0
  SET_RESUME u_back
  la t0, u_code
  csrw sepc, t0
  sret
u_code:
  ecall
RESUME_HERE u_back
  CHECK_CSR mcause, CAUSE_ECALL_U
  CHECK_CSR_MASK mstatus, MSTATUS_MPRV, 0
TEST_END
