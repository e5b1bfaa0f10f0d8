# Entry for the demo guest: one hart, M-mode, stack at the top of a small static area.
  .section .text.start
  .globl _start
_start:
  csrr t0, mhartid
  bnez t0, park
  la sp, stack_top
  call main
  # main's return value becomes the exit code through HTIF: tohost = (code << 1) | 1.
  slli a0, a0, 1
  ori a0, a0, 1
  la t0, tohost
  sd a0, 0(t0)
park:
  wfi
  j park

  .bss
  .align 4
  .space 16384
stack_top:

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .align 6
  .globl fromhost
fromhost: .dword 0
