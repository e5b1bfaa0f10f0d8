# Convention: misa reads RV64 IMAFDCSU (0x800000000014112D) and ignores writes; mvendorid,
# marchid, mimpid and mhartid read 0. (QEMU 7.2 deviates: misa also has H (bit 7), and
# marchid/mimpid hold the QEMU version.)
#include "common.h"
TEST_BEGIN
  CHECK_CSR mvendorid, 0
  CHECK_CSR mhartid, 0
  CHECK_CSR misa, 0x800000000014112D
  li a0, 0x8000000000001101     # try to drop extensions: read-only, so nothing changes
  csrw misa, a0
  CHECK_CSR misa, 0x800000000014112D
  csrw misa, zero
  CHECK_CSR misa, 0x800000000014112D
  CHECK_CSR marchid, 0
  CHECK_CSR mimpid, 0
TEST_END
