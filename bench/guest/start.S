/*
 * Entry point of the CPU benchmark guest (hart 0 at 0x8000_0000, M-mode, as after QEMU's or Vireo's
 * reset with -bios none). Sets a trap vector and a stack, zeroes .bss, then either calls guest_main in
 * M-mode (cpu-bare) or, with SV39 defined, builds Sv39 tables, opens PMP to everything, and MRETs into
 * guest_main in S-mode with satp set (cpu-sv39).
 */
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  csrr t0, mhartid
  bnez t0, park

  la t0, trap_entry
  csrw mtvec, t0
  csrw mie, zero
  li t0, 7
  csrw mcounteren, t0     /* let S-mode read cycle/time/instret (COUNT builds) */
  la sp, stack_top

  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 1b
2:

#ifdef SV39
  call sv39_setup         /* a0 = satp */
  li t0, -1
  csrw pmpaddr0, t0       /* NAPOT region covering all addresses */
  li t0, 0x1f
  csrw pmpcfg0, t0        /* R | W | X | A=NAPOT */
  csrw satp, a0
  sfence.vma
  li t0, 3 << 11
  csrc mstatus, t0
  li t0, 1 << 11
  csrs mstatus, t0        /* MPP = S */
  la t0, guest_main
  csrw mepc, t0
  mret
#else
  call guest_main
#endif

park:
  wfi
  j park

  .align 2
trap_entry:
  la sp, trap_stack_top
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call m_trap
  j park

  .bss
  .align 4
stack:
  .skip 16384
stack_top:
trap_stack:
  .skip 4096
trap_stack_top:
