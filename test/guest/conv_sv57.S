# Convention: Sv57 is not implemented, so writing satp with MODE = 10 has no effect (satp keeps
# its previous value), while Sv39 (8) and Sv48 (9) are accepted. (QEMU 7.2 deviates: it accepts
# Sv57.)
#include "common.h"
TEST_BEGIN
  csrw satp, zero
  li a0, SATP_SV57 | 0x12345
  csrw satp, a0
  CHECK_CSR satp, 0
  li a1, SATP_SV39 | 0x80040
  csrw satp, a1
  csrr a2, satp
  CHECK_REGS a2, a1
  csrw satp, a0
  csrr a2, satp
  CHECK_REGS a2, a1
  li a1, SATP_SV48 | 0x80041
  csrw satp, a1
  csrw satp, a0
  csrr a2, satp
  CHECK_REGS a2, a1
  li a0, (5 << 60) | 0x80042     # reserved mode: also ignored
  csrw satp, a0
  csrr a2, satp
  CHECK_REGS a2, a1
  csrw satp, zero
  CHECK_CSR satp, 0
TEST_END
