# Convention / spec: every fault of an AMO or SC is a store/AMO fault. A misaligned SC or AMO
# raises cause 6 (mtval = address, memory unchanged) whether or not a reservation exists, an AMO
# to an unmapped physical address raises cause 7, and an AMO to an unmapped or read-only page
# raises cause 15. (QEMU 7.2 deviates: a misaligned SC without a matching reservation just
# fails, and AMO faults are reported with the load causes 4 / 5 / 13.)
#include "common.h"
#include "vm.h"

#define VA_RO    0x20001000
#define VA_NOMAP 0x20002000

TEST_BEGIN
  la s0, cell
  li a1, 0x77
  sd a1, 0(s0)
  # ---- misaligned ----
  addi s2, s0, 1
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, amoadd.w a0, a1, (s2)
  csrr a0, mtval
  CHECK_REGS a0, s2
  addi s2, s0, 6
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, amoswap.w a0, a1, (s2)
  addi s2, s0, 4
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, amoor.d a0, a1, (s2)
  csrr a0, mtval
  CHECK_REGS a0, s2
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, amomaxu.d.aqrl a0, a1, (s2)
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, sc.d a0, a1, (s2)
  csrr a0, mtval
  CHECK_REGS a0, s2
  addi s2, s0, 2
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, sc.w a0, a1, (s2)
  lr.d a0, (s0)
  addi s2, s0, 1
  EXPECT_TRAP_M CAUSE_MISALIGNED_STORE, sc.w.rl a0, a1, (s2)
  ld a0, 0(s0)
  CHECK_EQ a0, 0x77
  # ---- access fault ----
  li s2, UNMAPPED_ADDR
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, amoadd.d a0, a1, (s2)
  CHECK_CSR mtval, UNMAPPED_ADDR
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, amoswap.w a0, a1, (s2)
  # ---- page faults (Sv39, S-mode) ----
  PMP_ALLOW_ALL
  li a0, 3
  call vm_init
  MAP RAM_BASE, RAM_BASE, (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D), 1
  MAP_SYM VA_RO, cell, (PTE_V | PTE_R | PTE_A), 0
  ld t0, vm_root
  srli t0, t0, 12
  li t1, SATP_SV39
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  li a2, VA_NOMAP + 8
  SET_RESUME pf1
  GOTO_MODE PRV_S, pf1_code
pf1_code:
  amoadd.w a1, a1, (a2)
RESUME_HERE pf1
  CHECK_CSR mcause, CAUSE_STORE_PAGE
  CHECK_CSR mtval, VA_NOMAP + 8
  li a2, VA_RO
  SET_RESUME pf2
  GOTO_MODE PRV_S, pf2_code
pf2_code:
  amoor.d a1, a1, (a2)
RESUME_HERE pf2
  CHECK_CSR mcause, CAUSE_STORE_PAGE
  CHECK_CSR mtval, VA_RO
  csrw satp, zero
  sfence.vma
  j done

  VM_LIB
  .data
  .balign 4096
cell:
  .skip 16
  .text
done:
TEST_END
