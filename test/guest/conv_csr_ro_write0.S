# Spec rule: CSRRS/CSRRC with rs1 != x0 always attempt a write, so on a read-only CSR they raise
# illegal instruction even when the register holds zero (only rs1 = x0 is a pure read).
# (QEMU 7.2 deviates: it decides by the value, so these do not trap.)
#include "common.h"
TEST_BEGIN
  li a1, 0
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrs a0, mhartid, a1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrc a0, mvendorid, a1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrs a0, cycle, a1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrc x0, instret, a1
  csrrs a0, mhartid, x0
  CHECK_EQ a0, 0
TEST_END
