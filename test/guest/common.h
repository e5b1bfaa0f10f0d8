/*
 * Shared header of Vireo's bare-metal RISC-V guest test programs (see README.md).
 *
 * A program is:
 *     #include "common.h"
 *     TEST_BEGIN
 *         ... checks ...
 *     TEST_END
 *
 * Register conventions:
 *   gp (TESTNUM)  number of the current check; a failure exits with code gp (tohost = gp<<1 | 1).
 *   tp            "resume address": when non-zero, any trap (M handler or S handler) jumps there
 *                 (in the mode that took the trap, CSRs untouched). RESUME_HERE clears it again.
 *   t4, t5, t6    clobbered by the CHECK_* macros (t6 holds the expected value).
 */
#ifndef VIREO_GUEST_COMMON_H
#define VIREO_GUEST_COMMON_H

#define TESTNUM gp

/* ---- Machine layout ---------------------------------------------------------------------- */
#define RAM_BASE        0x80000000
#define CLINT_BASE      0x02000000
#define CLINT_MSIP      (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xBFF8)
/* A physical address with nothing mapped (accesses fault with an access fault). */
#define UNMAPPED_ADDR   0x40000000

/* ---- CSR fields -------------------------------------------------------------------------- */
#define MSTATUS_SIE     (1 << 1)
#define MSTATUS_MIE     (1 << 3)
#define MSTATUS_SPIE    (1 << 5)
#define MSTATUS_MPIE    (1 << 7)
#define MSTATUS_SPP     (1 << 8)
#define MSTATUS_MPP     (3 << 11)
#define MSTATUS_MPP_S   (1 << 11)
#define MSTATUS_MPP_M   (3 << 11)
#define MSTATUS_FS      (3 << 13)
#define MSTATUS_FS_INIT (1 << 13)
#define MSTATUS_FS_DIRTY (3 << 13)
#define MSTATUS_MPRV    (1 << 17)
#define MSTATUS_SUM     (1 << 18)
#define MSTATUS_MXR     (1 << 19)
#define MSTATUS_TVM     (1 << 20)
#define MSTATUS_TW      (1 << 21)
#define MSTATUS_TSR     (1 << 22)
#define MSTATUS_SD      0x8000000000000000

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* Interrupt numbers (bit positions in mip/mie) */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1 << IRQ_SSI)
#define MIP_MSIP (1 << IRQ_MSI)
#define MIP_STIP (1 << IRQ_STI)
#define MIP_MTIP (1 << IRQ_MTI)
#define MIP_SEIP (1 << IRQ_SEI)
#define MIP_MEIP (1 << IRQ_MEI)
#define CAUSE_INTR      0x8000000000000000

/* Exception causes */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

/* Page-table entries */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define SATP_SV39 (8 << 60)
#define SATP_SV48 (9 << 60)
#define SATP_SV57 (10 << 60)

/* PMP configuration bits */
#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80

#ifdef __ASSEMBLER__

/* ---- Test numbering and checks ------------------------------------------------------------ */

/* Advance the check number (automatically numbered 1, 2, 3, ... in source order). */
.macro TEST_NEXT
  .set __testnum, __testnum + 1
  li gp, __testnum
.endm

/* Set the check number explicitly (later TEST_NEXTs continue from it). */
.macro TEST_NUM n
  .set __testnum, \n
  li gp, __testnum
.endm

.macro __no_t6 reg
  .ifc \reg, t6
    .error "CHECK_*: the checked register must not be t6"
  .endif
  .ifc \reg, x31
    .error "CHECK_*: the checked register must not be x31"
  .endif
.endm

/* Fail (with the current TESTNUM) unless integer register `reg` equals the 64-bit constant `val`. */
.macro CHECK_EQ reg, val
  __no_t6 \reg
  TEST_NEXT
  li t6, \val
  beq \reg, t6, .Lck_ok\@
  mv t5, \reg
  jal t4, test_fail
.Lck_ok\@:
.endm

/* Fail unless registers a and b are equal. */
.macro CHECK_REGS a, b
  TEST_NEXT
  beq \a, \b, .Lck_ok\@
  mv t5, \a
  mv t6, \b
  jal t4, test_fail
.Lck_ok\@:
.endm

/* Fail unless the integer register `reg` is not equal to the constant `val`. */
.macro CHECK_NE reg, val
  __no_t6 \reg
  TEST_NEXT
  li t6, \val
  bne \reg, t6, .Lck_ok\@
  mv t5, \reg
  jal t4, test_fail
.Lck_ok\@:
.endm

/* Unsigned a < b (registers). */
.macro CHECK_LTU a, b
  TEST_NEXT
  bltu \a, \b, .Lck_ok\@
  mv t5, \a
  mv t6, \b
  jal t4, test_fail
.Lck_ok\@:
.endm

/* Unsigned a <= b (registers). */
.macro CHECK_LEU a, b
  TEST_NEXT
  bgeu \b, \a, .Lck_ok\@
  mv t5, \a
  mv t6, \b
  jal t4, test_fail
.Lck_ok\@:
.endm

/* Fail unless CSR `csr` equals `val`. */
.macro CHECK_CSR csr, val
  csrr t5, \csr
  CHECK_EQ t5, \val
.endm

/* Fail unless (CSR & mask) == val. */
.macro CHECK_CSR_MASK csr, mask, val
  csrr t5, \csr
  li t6, \mask
  and t5, t5, t6
  CHECK_EQ t5, \val
.endm

/* Fail unless the raw 64-bit pattern of f-register `freg` equals `val`. */
.macro CHECK_FD freg, val
  fmv.x.d t5, \freg
  CHECK_EQ t5, \val
.endm

/* Fail unless `freg` holds the single-precision pattern `val`, properly NaN-boxed. */
.macro CHECK_FS freg, val
  fmv.x.d t5, \freg
  CHECK_EQ t5, (0xffffffff00000000 | (\val))
.endm

/* Fail unless the accrued flags equal `val`; clears fflags. */
.macro CHECK_FFLAGS val
  csrrci t5, fflags, 0x1f
  CHECK_EQ t5, \val
.endm

/* Unconditional failure with the next test number. */
.macro FAIL_NOW
  TEST_NEXT
  li t5, 0
  li t6, 0
  jal t4, test_fail
.endm

/* ---- Traps ------------------------------------------------------------------------------- */

/* The next trap (in any mode) jumps to `label` instead of being fatal. */
.macro SET_RESUME label
  la tp, \label
.endm

/* Define the resume point `label` (clears the resume address). */
.macro RESUME_HERE label
\label:
  li tp, 0
.endm

/*
 * Run the instruction(s) `insn` expecting a trap, then check mcause == cause and
 * mepc == address of the first instruction. Trap handled in M-mode.
 */
.macro EXPECT_TRAP_M cause, insn:vararg
  la tp, .Ltr_res\@
.Ltr_pc\@:
  \insn
  FAIL_NOW                /* no trap happened */
.Ltr_res\@:
  li tp, 0
  CHECK_CSR mcause, \cause
  la t4, .Ltr_pc\@
  csrr t5, mepc
  CHECK_REGS t5, t4
.endm

/* Same for a trap delegated to S-mode (checks scause, sepc). */
.macro EXPECT_TRAP_S cause, insn:vararg
  la tp, .Ltr_res\@
.Ltr_pc\@:
  \insn
  FAIL_NOW
.Ltr_res\@:
  li tp, 0
  CHECK_CSR scause, \cause
  la t4, .Ltr_pc\@
  csrr t5, sepc
  CHECK_REGS t5, t4
.endm

/*
 * Switch from M-mode to privilege `prv` (PRV_U/PRV_S/PRV_M) at `label` via MRET.
 * Clobbers t0. MPIE is left as is.
 */
.macro GOTO_MODE prv, label
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, ((\prv) << 11)
  csrs mstatus, t0
  la t0, \label
  csrw mepc, t0
  mret
.endm

/* Let S/U-mode access everything (PMP entry 0 = NAPOT covering all addresses, RWX). */
.macro PMP_ALLOW_ALL
  li t0, -1
  csrw pmpaddr0, t0
  li t0, (PMP_NAPOT | PMP_R | PMP_W | PMP_X)
  csrw pmpcfg0, t0
.endm

/* Install the S-mode handler (which also honours tp) in stvec. */
.macro SET_STVEC
  la t0, trap_s_entry
  csrw stvec, t0
.endm

/* ---- Program frame ----------------------------------------------------------------------- */

.macro TEST_BEGIN
  .set __testnum, 0
  .option norvc            /* programs opt in to compressed encodings with .option rvc */
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  li x1, 0
  li x2, 0
  li x3, 0
  li x4, 0
  li x5, 0
  li x6, 0
  li x7, 0
  li x8, 0
  li x9, 0
  li x10, 0
  li x11, 0
  li x12, 0
  li x13, 0
  li x14, 0
  li x15, 0
  li x16, 0
  li x17, 0
  li x18, 0
  li x19, 0
  li x20, 0
  li x21, 0
  li x22, 0
  li x23, 0
  li x24, 0
  li x25, 0
  li x26, 0
  li x27, 0
  li x28, 0
  li x29, 0
  li x30, 0
  li x31, 0
  la t0, trap_m_entry
  csrw mtvec, t0
  la sp, _stack_top
  csrw mie, zero
  csrw mip, zero
  csrw medeleg, zero
  csrw mideleg, zero
  csrw satp, zero
  csrw mscratch, zero
  /* mstatus: everything off except FS = Initial; MPP = M. */
  li t0, (MSTATUS_FS_INIT | MSTATUS_MPP_M)
  csrw mstatus, t0
  csrwi fcsr, 0
  li tp, 0
  li gp, 0
  j test_main
  .text
test_main:
.endm

.macro TEST_END
  /* All checks passed. */
  j test_pass

  .text
  .balign 4
test_pass:
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b

/*
 * Failure: gp = check number, t4 = return address just after the check, t5 = actual, t6 = expected.
 * Prints "FAIL #<gp> at <pc> got <t5> expected <t6>" on the HTIF console, then exits with gp.
 * From S/U-mode the CSR read traps to M (tp points back here) before anything is printed.
 */
test_fail:
  la tp, test_fail
  csrr t0, mscratch
  li tp, 0
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
  mv s2, t4
  mv s3, t5
  mv s4, t6
  la a0, str_fail
  jal ra, print_str
  mv a0, gp
  jal ra, print_hex
  la a0, str_at
  jal ra, print_str
  addi a0, s2, -4
  jal ra, print_hex
  la a0, str_got
  jal ra, print_str
  mv a0, s3
  jal ra, print_hex
  la a0, str_exp
  jal ra, print_str
  mv a0, s4
  jal ra, print_hex
  li a0, '\n'
  jal ra, putchar
test_exit_gp:
  bnez gp, 1f
  li gp, 0x3ff
1:
  slli t0, gp, 1
  ori t0, t0, 1
  la t1, tohost
  sd t0, 0(t1)
2: j 2b

/* M-mode trap entry (direct mode). */
  .balign 256
trap_m_entry:
  beqz tp, trap_unexpected
  jr tp

trap_unexpected:
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
  la a0, str_trap
  jal ra, print_str
  csrr a0, mcause
  jal ra, print_hex
  la a0, str_mepc
  jal ra, print_str
  csrr a0, mepc
  jal ra, print_hex
  la a0, str_mtval
  jal ra, print_str
  csrr a0, mtval
  jal ra, print_hex
  la a0, str_scause
  jal ra, print_str
  csrr a0, scause
  jal ra, print_hex
  la a0, str_sepc
  jal ra, print_str
  csrr a0, sepc
  jal ra, print_hex
  la a0, str_test
  jal ra, print_str
  mv a0, gp
  jal ra, print_hex
  li a0, '\n'
  jal ra, putchar
  j test_exit_gp

/* S-mode trap entry: resume at tp, or escalate to M with ECALL (reported there). */
  .balign 256
trap_s_entry:
  beqz tp, 1f
  jr tp
1:
  ecall
  j 1b

/* Console output through HTIF (device 1, command 1). Clobbers t0, t1. */
putchar:
  li t0, 0x0101000000000000
  andi a0, a0, 0xff
  or t0, t0, a0
  la t1, tohost
  sd t0, 0(t1)
  ret

/* Print the zero-terminated string at a0. Clobbers a0, a1, t0, t1, s0, s1. */
print_str:
  mv s0, ra
  mv a1, a0
1:
  lbu a0, 0(a1)
  beqz a0, 2f
  jal ra, putchar
  addi a1, a1, 1
  j 1b
2:
  mv ra, s0
  ret

/* Print a0 as 16 hex digits. Clobbers a0..a2, t0, t1, s0, s1. */
print_hex:
  mv s0, ra
  mv a1, a0
  li a2, 60
1:
  srl a0, a1, a2
  andi a0, a0, 0xf
  li t0, 10
  blt a0, t0, 2f
  addi a0, a0, 'a' - 10 - '0'
2:
  addi a0, a0, '0'
  jal ra, putchar
  addi a2, a2, -4
  bgez a2, 1b
  mv ra, s0
  ret

  .section .rodata
str_fail:   .asciz "FAIL #"
str_at:     .asciz " at "
str_got:    .asciz " got "
str_exp:    .asciz " expected "
str_trap:   .asciz "UNEXPECTED TRAP mcause="
str_mepc:   .asciz " mepc="
str_mtval:  .asciz " mtval="
str_scause: .asciz " scause="
str_sepc:   .asciz " sepc="
str_test:   .asciz " after check #"

  .section .tohost, "aw", @progbits
  .balign 64
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
  .balign 64
.endm

#endif /* __ASSEMBLER__ */
#endif /* VIREO_GUEST_COMMON_H */
