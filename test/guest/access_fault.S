# Access faults on physical addresses where nothing is mapped: loads (5), stores (7) and
# instruction fetches (1) from M-mode and S-mode, with mtval = the address and mepc = the
# faulting instruction (or the fetch target); narrow and misaligned accesses too.
#include "common.h"

TEST_BEGIN
  PMP_ALLOW_ALL
  li s0, UNMAPPED_ADDR
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, ld a0, 0(s0)
  CHECK_CSR mtval, UNMAPPED_ADDR
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, lbu a0, 0x11(s0)
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x11
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, lh a0, 0x22(s0)
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x22
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, lwu a0, 0x34(s0)
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, lw a0, 0x41(s0)   # misaligned: mtval not checked
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, fld f1, 0x48(s0)
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sd a0, 0x50(s0)
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x50
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sb a0, 0x5f(s0)
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x5f
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sw a0, 0x63(s0)
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, fsw f1, 0x68(s0)
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, lr.d a0, (s0)
  CHECK_CSR mtval, UNMAPPED_ADDR
  # the destination register is not written by a faulting load
  li a0, 0x1234
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, ld a0, 0(s0)
  CHECK_EQ a0, 0x1234
  # instruction fetch
  li s1, UNMAPPED_ADDR + 0x100
  SET_RESUME f1
  jalr ra, 0(s1)
  FAIL_NOW
RESUME_HERE f1
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  CHECK_CSR mepc, UNMAPPED_ADDR + 0x100
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x100
  # the same from S-mode (taken in M)
  SET_RESUME s1_back
  GOTO_MODE PRV_S, s1_code
s1_code:
  ld a0, 0x8(s0)
RESUME_HERE s1_back
  CHECK_CSR mcause, CAUSE_LOAD_ACCESS
  CHECK_CSR mtval, UNMAPPED_ADDR + 8
  CHECK_CSR_MASK mstatus, MSTATUS_MPP, MSTATUS_MPP_S
  SET_RESUME s2_back
  GOTO_MODE PRV_S, s2_code
s2_code:
  sh a0, 0x10(s0)
RESUME_HERE s2_back
  CHECK_CSR mcause, CAUSE_STORE_ACCESS
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x10
  SET_RESUME s3_back
  GOTO_MODE PRV_S, s3_code
s3_code:
  jalr ra, 0x200(s0)
RESUME_HERE s3_back
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  CHECK_CSR mepc, UNMAPPED_ADDR + 0x200
  CHECK_CSR mtval, UNMAPPED_ADDR + 0x200
  # delegated to S: scause / stval
  li t0, (1 << CAUSE_LOAD_ACCESS)
  csrw medeleg, t0
  SET_STVEC
  SET_RESUME s4_trap
  GOTO_MODE PRV_S, s4_code
s4_code:
  lb a0, 0x3(s0)
s4_trap:
  li tp, 0
  csrr s5, scause
  csrr s6, stval
  SET_RESUME s4_back
  ecall
RESUME_HERE s4_back
  CHECK_EQ s5, CAUSE_LOAD_ACCESS
  CHECK_EQ s6, UNMAPPED_ADDR + 3
  csrw medeleg, zero
TEST_END
