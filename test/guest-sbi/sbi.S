/*
 * A supervisor-mode payload that exercises Vireo's built-in SBI directly (no Linux): entered on hart 0
 * at 0x80200000 in S-mode with a0 = hartid, a1 = DTB. Every check that fails prints "FAIL <n>" through
 * DBCN and ends with SRST shutdown, reason "system failure" (exit status 1); success prints "SBI-OK" and
 * shuts down cleanly (exit status 0).
 */
#define EXT_BASE   0x10
#define EXT_TIME   0x54494D45
#define EXT_IPI    0x735049
#define EXT_RFENCE 0x52464E43
#define EXT_HSM    0x48534D
#define EXT_SRST   0x53525354
#define EXT_DBCN   0x4442434E
#define SIE_SSIE   (1 << 1)
#define SIE_STIE   (1 << 5)
#define SSTATUS_SIE (1 << 1)

/* SBI call: EID, FID, args already in a0..a2. Result: a0 = error, a1 = value. */
.macro SBI eid, fid
  li a7, \eid
  li a6, \fid
  ecall
.endm

/* Fail with check number n unless reg == value. */
.macro EXPECT reg, value, n
  li t6, \value
  beq \reg, t6, 1f
  li s11, \n
  j fail
1:
.endm

  .section .text.start
  .globl _start
_start:
  bnez a0, park                 # only hart 0 enters here
  la sp, stack_top
  la t0, trap
  csrw stvec, t0

  # BASE: spec version 2.0, probe implemented and unknown extensions
  SBI EXT_BASE, 0
  EXPECT a0, 0, 1
  EXPECT a1, 0x2000000, 2
  li a0, EXT_HSM
  SBI EXT_BASE, 3
  EXPECT a1, 1, 3
  li a0, EXT_DBCN
  SBI EXT_BASE, 3
  EXPECT a1, 1, 4
  li a0, 0x12345678
  SBI EXT_BASE, 3
  EXPECT a1, 0, 5
  SBI 0x0A000000, 0             # an extension that does not exist
  EXPECT a0, -2, 6

  # DBCN: write from RAM; an address outside RAM is rejected
  li a0, 7
  la a1, hello
  li a2, 0
  SBI EXT_DBCN, 0
  EXPECT a0, 0, 7
  EXPECT a1, 7, 8
  li a0, 16
  li a1, 0x1000                 # not RAM
  li a2, 0
  SBI EXT_DBCN, 0
  EXPECT a0, -3, 9

  # TIME: a timer interrupt arrives after set_timer
  li t0, SIE_STIE
  csrs sie, t0
  csrs sstatus, SSTATUS_SIE
  rdtime a0
  li t0, 20000                  # 2 ms at 10 MHz
  add a0, a0, t0
  SBI EXT_TIME, 0
  EXPECT a0, 0, 10
  li s0, 100000000
1:
  lw t0, timer_fired
  bnez t0, 2f
  addi s0, s0, -1
  bnez s0, 1b
  li s11, 11
  j fail
2:

  # IPI to ourselves: a supervisor software interrupt
  csrs sie, SIE_SSIE
  li a0, 1                      # hart mask: hart 0
  li a1, 0                      # mask base
  SBI EXT_IPI, 0
  EXPECT a0, 0, 12
  li s0, 1000000
1:
  lw t0, ipi_fired
  bnez t0, 2f
  addi s0, s0, -1
  bnez s0, 1b
  li s11, 13
  j fail
2:
  li a0, 1 << 5                 # a hart that does not exist
  li a1, 0
  SBI EXT_IPI, 0
  EXPECT a0, -3, 14

  # RFENCE: remote SFENCE.VMA on all harts (mask base -1)
  li a0, 0
  li a1, -1
  li a2, 0
  li a3, -1
  SBI EXT_RFENCE, 1
  EXPECT a0, 0, 15

  # HSM: hart 1 is stopped, starts at second_hart with a1 = opaque, stops itself
  li a0, 1
  SBI EXT_HSM, 2
  EXPECT a0, 0, 16
  EXPECT a1, 1, 17              # STOPPED
  li a0, 1
  la a1, second_hart
  li a2, 0x5eed
  SBI EXT_HSM, 0
  EXPECT a0, 0, 18
  li s0, 100000000
1:
  lw t0, second_seen
  bnez t0, 2f
  addi s0, s0, -1
  bnez s0, 1b
  li s11, 19
  j fail
2:
  lw t0, second_opaque
  EXPECT t0, 0x5eed, 20
  li a0, 0                      # hart 0 is running: hart_start must refuse
  la a1, second_hart
  li a2, 0
  SBI EXT_HSM, 0
  EXPECT a0, -6, 21             # ALREADY_AVAILABLE
  li a0, 9                      # no such hart
  SBI EXT_HSM, 2
  EXPECT a0, -3, 22

  li a0, 7
  la a1, ok
  li a2, 0
  SBI EXT_DBCN, 0
  li a0, 0                      # shutdown
  li a1, 0                      # no reason
  SBI EXT_SRST, 0
  li s11, 23                    # SRST returned
  j fail

second_hart:                    # a0 = hartid, a1 = opaque
  la t0, second_opaque
  sw a1, 0(t0)
  fence
  li t1, 1
  la t0, second_seen
  sw t1, 0(t0)
  SBI EXT_HSM, 1                # hart_stop: never returns
park:
  wfi
  j park

fail:                           # prints "FAIL " and the check number in decimal, then shuts down
  la a1, failmsg
  li a0, 5
  li a2, 0
  SBI EXT_DBCN, 0
  li t0, 10
  divu t1, s11, t0
  remu t2, s11, t0
  addi a0, t1, '0'
  SBI EXT_DBCN, 2
  addi a0, t2, '0'
  SBI EXT_DBCN, 2
  li a0, '\n'
  SBI EXT_DBCN, 2
  li a0, 0
  li a1, 1                      # system failure
  SBI EXT_SRST, 0
  j park

  .align 2
trap:                           # timer: clear by set_timer(-1); software: clear sip.SSIP
  addi sp, sp, -32
  sd a0, 0(sp)
  sd a1, 8(sp)
  sd a6, 16(sp)
  sd a7, 24(sp)
  csrr a0, scause
  bgez a0, 3f                   # exceptions are not expected
  slli a0, a0, 1
  srli a0, a0, 1
  li a1, 5
  bne a0, a1, 1f
  li a0, -1
  SBI EXT_TIME, 0
  li a1, 1
  la a0, timer_fired
  sw a1, 0(a0)
  j 2f
1:
  csrc sip, SIE_SSIE
  li a1, 1
  la a0, ipi_fired
  sw a1, 0(a0)
2:
  ld a0, 0(sp)
  ld a1, 8(sp)
  ld a6, 16(sp)
  ld a7, 24(sp)
  addi sp, sp, 32
  sret
3:
  li s11, 99
  j fail

  .data
hello: .ascii "SBI-HI\n"
ok: .ascii "SBI-OK\n"
failmsg: .ascii "FAIL "
  .align 3
timer_fired: .word 0
ipi_fired: .word 0
second_seen: .word 0
second_opaque: .word 0
  .bss
  .align 4
  .space 4096
stack_top:
