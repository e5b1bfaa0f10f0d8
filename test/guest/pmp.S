# Physical memory protection: 16 pmpaddr registers, S/U accesses denied without a matching
# entry (while other entries exist), NAPOT / TOR / NA4 regions, R/W/X permissions (load 5,
# store 7, fetch 1 with mtval), the lowest-numbered matching entry winning (and an access only
# partly inside it failing, in M-mode too), M-mode ignoring unlocked entries, and a locked entry
# (high region) applying to M-mode too and ignoring later writes.
#include "common.h"

#define REGION_BASE 0x80000000          /* the program: first 2 MiB of RAM */
#define REGION_NAPOT ((REGION_BASE >> 2) | ((0x200000 / 2 - 1) >> 2))
#define OUTSIDE     0x80200000
#define LOCKED_BASE 0x80300000          /* 8 KiB locked region */

.macro TRY_S insn:vararg
  SET_RESUME .Ltry_done\@
  GOTO_MODE PRV_S, .Ltry_code\@
.Ltry_code\@:
  \insn
  ecall
.Ltry_done\@:
  li tp, 0
  csrr a0, mcause
.endm

.macro TRY_U insn:vararg
  SET_RESUME .Ltry_done\@
  GOTO_MODE PRV_U, .Ltry_code\@
.Ltry_code\@:
  \insn
  ecall
.Ltry_done\@:
  li tp, 0
  csrr a0, mcause
.endm

.macro PMP_SYNC
  sfence.vma
.endm

TEST_BEGIN
  # ---- 16 address registers ----
  li a0, 0x12345
  csrw pmpaddr15, a0
  CHECK_CSR pmpaddr15, 0x12345
  csrw pmpaddr8, a0
  CHECK_CSR pmpaddr8, 0x12345
  csrw pmpaddr15, zero
  csrw pmpaddr8, zero
  csrw pmpcfg0, zero
  csrw pmpcfg2, zero
  PMP_SYNC

  # (no entry at all: conv_pmp_none.S, QEMU 7.2 deviates)

  # ---- one NAPOT region (RWX) around the program ----
  li t0, REGION_NAPOT
  csrw pmpaddr0, t0
  li t0, (PMP_NAPOT | PMP_R | PMP_W | PMP_X)
  csrw pmpcfg0, t0
  PMP_SYNC
  CHECK_CSR pmpcfg0, (PMP_NAPOT | PMP_R | PMP_W | PMP_X)
  la a2, pmp_data
  TRY_S ld a1, 0(a2)
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_EQ a1, 0x0123456789abcdef
  TRY_U sd a1, 8(a2)
  CHECK_EQ a0, CAUSE_ECALL_U
  li a2, OUTSIDE + 0x10
  TRY_S ld a1, 0(a2)
  CHECK_EQ a0, CAUSE_LOAD_ACCESS
  CHECK_CSR mtval, OUTSIDE + 0x10
  TRY_S sw a1, 0(a2)
  CHECK_EQ a0, CAUSE_STORE_ACCESS
  CHECK_CSR mtval, OUTSIDE + 0x10
  TRY_U lb a1, 0(a2)
  CHECK_EQ a0, CAUSE_LOAD_ACCESS
  TRY_S jalr ra, 0(a2)
  CHECK_EQ a0, CAUSE_FETCH_ACCESS
  CHECK_CSR mtval, OUTSIDE + 0x10
  CHECK_CSR mepc, OUTSIDE + 0x10
  # M-mode is not restricted by unlocked entries
  li a2, OUTSIDE + 0x10
  li a1, 0x77
  sd a1, 0(a2)
  ld a3, 0(a2)
  CHECK_EQ a3, 0x77

  # ---- TOR: entry 1 covers [pmpaddr0, pmpaddr1) ----
  li t0, (REGION_BASE >> 2)
  csrw pmpaddr0, t0
  li t0, ((REGION_BASE + 0x200000) >> 2)
  csrw pmpaddr1, t0
  li t0, ((PMP_TOR | PMP_R | PMP_W | PMP_X) << 8)
  csrw pmpcfg0, t0
  PMP_SYNC
  la a2, pmp_data
  TRY_S ld a1, 0(a2)
  CHECK_EQ a0, CAUSE_ECALL_S
  li a2, OUTSIDE
  TRY_S ld a1, 0(a2)
  CHECK_EQ a0, CAUSE_LOAD_ACCESS
  li a2, REGION_BASE - 8
  TRY_S ld a1, 0(a2)
  CHECK_EQ a0, CAUSE_LOAD_ACCESS
  li a2, OUTSIDE - 8
  TRY_S sd a1, 0(a2)
  CHECK_EQ a0, CAUSE_ECALL_S

  # ---- priority and permissions: NA4 read-only word, NAPOT 4 KiB no-execute page ----
  la t0, pmp_data
  srli t0, t0, 2
  csrw pmpaddr0, t0             # entry 0: NA4 at pmp_data, R only
  la t0, pmp_page
  srli t0, t0, 2
  ori t0, t0, (4096 / 2 - 1) >> 2
  csrw pmpaddr1, t0             # entry 1: NAPOT 4 KiB at pmp_page, R|W (no X)
  li t0, REGION_NAPOT
  csrw pmpaddr2, t0             # entry 2: the whole program, RWX
  li t0, ((PMP_NA4 | PMP_R) | ((PMP_NAPOT | PMP_R | PMP_W) << 8) | ((PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 16))
  csrw pmpcfg0, t0
  PMP_SYNC
  la a2, pmp_data
  TRY_S ld a1, 0(a2)            # 8 bytes, only partly inside entry 0: fails
  CHECK_EQ a0, CAUSE_LOAD_ACCESS
  la a2, pmp_data
  TRY_S lw a1, 0(a2)
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_EQ a1, 0xffffffff89abcdef
  TRY_S sw a1, 0(a2)
  CHECK_EQ a0, CAUSE_STORE_ACCESS
  la a1, pmp_data
  csrr a0, mtval
  CHECK_REGS a0, a1
  TRY_S sw a1, 4(a2)            # next word: entry 2 (RWX)
  CHECK_EQ a0, CAUSE_ECALL_S
  # M-mode ignores the unlocked R-only entry, but an access only partly inside it fails
  la a2, pmp_data
  li a1, 0x0123456789abcdef
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sd a1, 0(a2)
  sw a1, 0(a2)
  srli a1, a1, 32
  sw a1, 4(a2)
  EXPECT_TRAP_M CAUSE_LOAD_ACCESS, ld a1, 0(a2)
  lw a1, 4(a2)
  CHECK_EQ a1, 0x01234567
  la a2, pmp_page
  li a1, 0x00000073             # ecall
  sw a1, 0(a2)
  fence.i
  TRY_S lw a1, 0(a2)
  CHECK_EQ a0, CAUSE_ECALL_S
  CHECK_EQ a1, 0x73
  TRY_S jalr ra, 0(a2)          # no X in entry 1
  CHECK_EQ a0, CAUSE_FETCH_ACCESS
  la a1, pmp_page
  csrr a0, mtval
  CHECK_REGS a0, a1
  SET_RESUME m_exec
  jalr ra, 0(a2)                # M executes it fine: an ECALL from M
  FAIL_NOW
RESUME_HERE m_exec
  CHECK_CSR mcause, CAUSE_ECALL_M
  la a1, pmp_page
  csrr a0, mepc
  CHECK_REGS a0, a1
  # ---- locked entry 15: applies to M-mode ----
  csrw pmpcfg0, zero
  csrw pmpcfg2, zero
  li t0, (LOCKED_BASE >> 2) | ((8192 / 2 - 1) >> 2)
  csrw pmpaddr15, t0
  li t0, LOCKED_BASE
  li t1, 0x5a5a
  sd t1, 0(t0)
  li t1, 0x00000073
  sw t1, 0x100(t0)
  fence.i
  li t0, ((PMP_L | PMP_NAPOT | PMP_R) << 56)
  csrw pmpcfg2, t0
  PMP_SYNC
  CHECK_CSR pmpcfg2, ((PMP_L | PMP_NAPOT | PMP_R) << 56)
  li s0, LOCKED_BASE
  ld a1, 0(s0)
  CHECK_EQ a1, 0x5a5a
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sd a1, 8(s0)
  CHECK_CSR mtval, LOCKED_BASE + 8
  addi s1, s0, 0x100
  SET_RESUME lk_f
  jalr ra, 0(s1)
  FAIL_NOW
RESUME_HERE lk_f
  CHECK_CSR mcause, CAUSE_FETCH_ACCESS
  CHECK_CSR mtval, LOCKED_BASE + 0x100
  # locked: writes to its cfg and address are ignored
  li t0, -1
  csrw pmpcfg2, t0
  csrw pmpaddr15, t0
  PMP_SYNC
  CHECK_CSR_MASK pmpcfg2, (0xff << 56), ((PMP_L | PMP_NAPOT | PMP_R) << 56)
  CHECK_CSR pmpaddr15, (LOCKED_BASE >> 2) | ((8192 / 2 - 1) >> 2)
  EXPECT_TRAP_M CAUSE_STORE_ACCESS, sw a1, 0x7f0(s0)
  # outside the locked region M is unaffected
  li a2, OUTSIDE
  sd a1, 0(a2)

  .data
  .balign 16
pmp_data:
  .dword 0x0123456789abcdef
  .dword 0
  .balign 4096
pmp_page:
  .skip 4096
  .text
TEST_END
