# Zicsr: CSRRW/CSRRS/CSRRC/CSRRWI/CSRRSI/CSRRCI semantics (old value returned, bits set/cleared,
# 5-bit zero-extended immediates, rd = rs1, rd = x0), reads of read-only CSRs with rs1 = x0 /
# zimm = 0 being legal, writes to read-only CSRs (CSRRW even of zero or with rd = x0, CSRRS/C
# with a non-zero mask, immediate forms) raising illegal instruction with rd untouched, an
# unimplemented CSR, sstatus as a view of mstatus, mepc/sepc, and privilege checks on CSR
# numbers (S touching an M CSR, U touching an S CSR -> illegal).
#include "common.h"

TEST_BEGIN
  # ---- CSRRW / CSRRS / CSRRC ----
  li a1, 0x0123456789abcdef
  csrw mscratch, a1
  li a2, 0xfedcba9876543210
  csrrw a0, mscratch, a2
  CHECK_EQ a0, 0x0123456789abcdef
  csrr a0, mscratch
  CHECK_EQ a0, 0xfedcba9876543210
  li a2, 0x0f
  csrrs a0, mscratch, a2
  CHECK_EQ a0, 0xfedcba9876543210
  CHECK_CSR mscratch, 0xfedcba987654321f
  li a2, 0xff00000000000001
  csrrc a0, mscratch, a2
  CHECK_EQ a0, 0xfedcba987654321f
  CHECK_CSR mscratch, 0x00dcba987654321e
  # rd == rs1 swaps
  li a0, 77
  csrrw a0, mscratch, a0
  CHECK_EQ a0, 0x00dcba987654321e
  CHECK_CSR mscratch, 77
  # rd = x0 writes, rs1 = x0 reads without writing
  li a0, 0x55
  csrrw x0, mscratch, a0
  csrrs a1, mscratch, x0
  CHECK_EQ a1, 0x55
  csrrc a1, mscratch, x0
  CHECK_EQ a1, 0x55
  # ---- immediate forms (zimm is zero-extended 5 bits) ----
  csrrwi a0, mscratch, 31
  CHECK_EQ a0, 0x55
  CHECK_CSR mscratch, 31
  csrrci a0, mscratch, 0x15
  CHECK_EQ a0, 31
  CHECK_CSR mscratch, 0x0a
  csrrsi a0, mscratch, 0x10
  CHECK_EQ a0, 0x0a
  CHECK_CSR mscratch, 0x1a
  csrrsi a0, mscratch, 0
  CHECK_EQ a0, 0x1a
  csrrci a0, mscratch, 0
  CHECK_EQ a0, 0x1a
  csrwi mscratch, 0
  CHECK_CSR mscratch, 0
  # ---- read-only CSRs ----
  csrrs a0, mhartid, x0
  CHECK_EQ a0, 0
  csrrc a0, mhartid, x0
  CHECK_EQ a0, 0
  csrrsi a0, mvendorid, 0
  CHECK_EQ a0, 0
  csrrci a0, mhartid, 0
  CHECK_EQ a0, 0
  csrr a0, cycle
  csrr a0, instret
  li a1, 0
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrw mhartid, a1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrw x0, mhartid, a1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrwi a0, marchid, 0
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrsi a0, mimpid, 1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrci a0, mhartid, 1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrw cycle, a1
  li a2, 1
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrs a0, mhartid, a2
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrc a0, mvendorid, a2
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrs a0, instret, a2
  # (CSRRS/CSRRC with rs1 != x0 holding zero: conv_csr_ro_write0.S, QEMU 7.2 deviates)
  # the illegal write leaves rd untouched
  li a0, 0x1234
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrrw a0, mhartid, a1
  CHECK_EQ a0, 0x1234
  # mtval holds the instruction bits or 0
  la tp, 1f
2:
  csrrw a0, mhartid, a1
  FAIL_NOW
1:
  li tp, 0
  csrr a0, mtval
  beqz a0, 3f
  lwu a1, 2b
  CHECK_REGS a0, a1
3:
  # an unimplemented CSR number
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrr a0, 0x0ff
  EXPECT_TRAP_M CAUSE_ILLEGAL, csrw 0x0ff, a1
  # ---- views and WARL fields ----
  li t0, MSTATUS_SIE
  csrs sstatus, t0
  CHECK_CSR_MASK mstatus, MSTATUS_SIE, MSTATUS_SIE
  csrc mstatus, t0
  CHECK_CSR_MASK sstatus, MSTATUS_SIE, 0
  li t0, MSTATUS_SUM
  csrs mstatus, t0
  CHECK_CSR_MASK sstatus, MSTATUS_SUM, MSTATUS_SUM
  csrc sstatus, t0
  CHECK_CSR_MASK mstatus, MSTATUS_SUM, 0
  li t0, MSTATUS_MIE | MSTATUS_MPP        # M-only fields are not visible through sstatus
  csrs mstatus, t0
  CHECK_CSR_MASK sstatus, (MSTATUS_MIE | MSTATUS_MPP), 0
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  li a0, 0x80001236
  csrw mepc, a0
  CHECK_CSR mepc, 0x80001236
  csrw sepc, a0
  CHECK_CSR sepc, 0x80001236
  # (bit 0 of mepc/sepc reading as zero: conv_epc_bit0.S, QEMU 7.2 deviates)
  li a0, -1
  csrw sscratch, a0
  CHECK_CSR sscratch, -1
  csrw sscratch, zero

  # ---- privilege of CSR numbers ----
  PMP_ALLOW_ALL
  SET_RESUME s_done1
  GOTO_MODE PRV_S, s_code1
s_code1:
  csrw sscratch, a0             # S may use S CSRs
  csrr a0, mscratch             # ... but not M CSRs -> trap to M
  FAIL_NOW
RESUME_HERE s_done1
  CHECK_CSR mcause, CAUSE_ILLEGAL
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, MSTATUS_MPP_S
  CHECK_CSR sscratch, -1
  SET_RESUME u_done1
  GOTO_MODE PRV_U, u_code1
u_code1:
  csrr a0, sscratch             # U may not use S CSRs
  FAIL_NOW
RESUME_HERE u_done1
  CHECK_CSR mcause, CAUSE_ILLEGAL
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, 0
  SET_RESUME u_done2
  GOTO_MODE PRV_U, u_code2
u_code2:
  csrr a0, mstatus
  FAIL_NOW
RESUME_HERE u_done2
  CHECK_CSR mcause, CAUSE_ILLEGAL
TEST_END
