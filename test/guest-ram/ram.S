/*
 * Finds how much RAM the machine has from 0x8000_0000, by binary search over the pages that load
 * without an access fault, then uses the last page the way a kernel would: stores and loads at its
 * last doubleword, an AMO, a misaligned doubleword across the last two pages, and a store just past
 * the end that must fault. Prints "RAM <size in hex>" over HTIF and exits 0; a failed check exits
 * with its number. Only a handful of pages are touched, whatever the RAM size.
 */
#define RAM_BASE 0x80000000
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_STORE_ACCESS 7

  .section .text.start
  .globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  li s11, RAM_BASE

  /* Pages [0, s0) load; page s1 - 1 does not (4 GiB + 1 page is beyond any RAM the board allows). */
  li s0, 1
  li s1, (1 << 20) + 1
search:
  sub t0, s1, s0
  li t1, 1
  ble t0, t1, found
  add a1, s0, s1
  srli a1, a1, 1
  addi a0, a1, -1
  slli a0, a0, 12
  add a0, a0, s11
  jal ra, probe_load
  beqz a0, 1f
  mv s0, a1
  j search
1:
  mv s1, a1
  j search

found:
  slli s2, s0, 12          /* s2 = RAM size in bytes */
  add s3, s11, s2          /* s3 = end of RAM */

  li gp, 1                 /* the last doubleword keeps what is stored there */
  li t0, 0x0123456789abcdef
  sd t0, -8(s3)
  ld t1, -8(s3)
  bne t0, t1, fail

  li gp, 2                 /* an AMO on the last page */
  addi t2, s3, -16
  sd zero, 0(t2)
  li t0, 41
  amoadd.d t1, t0, (t2)
  bnez t1, fail
  li t0, 1
  amoadd.d t1, t0, (t2)
  li t0, 41
  bne t1, t0, fail
  ld t1, 0(t2)
  li t0, 42
  bne t1, t0, fail

  li gp, 3                 /* a misaligned doubleword across the last two pages */
  li t3, 4096 + 4
  sub t2, s3, t3
  li t0, 0x1122334455667788
  sd t0, 0(t2)
  lwu t1, 0(t2)
  lwu t4, 4(t2)
  slli t4, t4, 32
  or t1, t1, t4
  bne t0, t1, fail
  ld t1, 0(t2)
  bne t0, t1, fail

  li gp, 4                 /* a store just past the end of RAM is an access fault */
  mv a0, s3
  jal ra, probe_store
  bnez a0, fail

  li gp, 5                 /* and the search found the end: the last page is readable */
  li t0, 4096
  sub a0, s3, t0
  jal ra, probe_load
  beqz a0, fail

  la a0, msg
  jal ra, puts
  mv a0, s2
  jal ra, puthex
  li a0, '\n'
  jal ra, putchar
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b

fail:
  slli t0, gp, 1
  ori t0, t0, 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b

/* a0 = address; returns a0 = 1 when a doubleword load there did not fault. */
probe_load:
  li t6, 0
  .option push
  .option norvc
  ld t5, 0(a0)
  .option pop
  seqz a0, t6
  ret

/* a0 = address; returns a0 = 1 when a doubleword store there did not fault. */
probe_store:
  li t6, 0
  .option push
  .option norvc
  sd zero, 0(a0)
  .option pop
  seqz a0, t6
  ret

/* Only the probes may fault: they are told through t6 and resume after the access. */
  .balign 4
trap:
  csrr t5, mcause
  li t4, CAUSE_LOAD_ACCESS
  beq t5, t4, 1f
  li t4, CAUSE_STORE_ACCESS
  beq t5, t4, 1f
  li gp, 100
  j fail
1:
  li t6, 1
  csrr t5, mepc
  addi t5, t5, 4
  csrw mepc, t5
  mret

putchar:
  li t0, 0x0101
  slli t0, t0, 48
  or t0, t0, a0
  la t1, tohost
  sd t0, 0(t1)
  ret

puts:
  mv t2, ra
  mv t3, a0
1:
  lbu a0, 0(t3)
  beqz a0, 2f
  jal ra, putchar
  addi t3, t3, 1
  j 1b
2:
  mv ra, t2
  ret

/* Prints a0 in hex with a 0x prefix and no leading zeros. */
puthex:
  mv t2, ra
  mv t3, a0
  li a0, '0'
  jal ra, putchar
  li a0, 'x'
  jal ra, putchar
  li t4, 60
  li t5, 0                 /* set once a non-zero digit was printed */
1:
  srl a0, t3, t4
  andi a0, a0, 15
  bnez a0, 2f
  bnez t5, 2f
  bnez t4, 3f
2:
  li t5, 1
  li t6, 10
  blt a0, t6, 4f
  addi a0, a0, 'a' - 10 - '0'
4:
  addi a0, a0, '0'
  jal ra, putchar
3:
  addi t4, t4, -4
  bgez t4, 1b
  mv ra, t2
  ret

  .section .rodata
msg: .string "RAM "

  .section .tohost, "aw", @progbits
  .balign 64
  .globl tohost
tohost: .dword 0
  .globl fromhost
fromhost: .dword 0
