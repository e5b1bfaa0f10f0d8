# Spec rule (priv 1.12, 3.1.14 / 4.1.7): mepc[0] and sepc[0] are always zero, so writing an odd
# value reads back with bit 0 clear. (QEMU 7.2 deviates: it keeps bit 0.)
#include "common.h"
TEST_BEGIN
  li a0, 0x80001235
  csrw mepc, a0
  CHECK_CSR mepc, 0x80001234
  csrw sepc, a0
  CHECK_CSR sepc, 0x80001234
  li a0, -1
  csrw mepc, a0
  CHECK_CSR mepc, 0xfffffffffffffffe
TEST_END
