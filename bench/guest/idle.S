/* The manager benchmark's idle guest: its first instructions print "R" on the UART, then WFI for ever. */
.section .text.init
.globl _start
_start:
  li t0, 0x10000000
  li t1, 'R'
  sb t1, 0(t0)
1:
  wfi
  j 1b
