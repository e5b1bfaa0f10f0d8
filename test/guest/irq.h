/* Interrupt helpers shared by the irq_* guest programs (include after common.h). */
#ifndef VIREO_GUEST_IRQ_H
#define VIREO_GUEST_IRQ_H
#ifdef __ASSEMBLER__

/* Spin for a while: an expected interrupt must arrive before the end, else fail. */
.macro WAIT_IRQ
  li t3, 2000000
.Lwi\@:
  addi t3, t3, -1
  bnez t3, .Lwi\@
  FAIL_NOW
.endm

/* Spin for a while without expecting anything. */
.macro SPIN n=1000
  li t3, \n
.Lsp\@:
  addi t3, t3, -1
  bnez t3, .Lsp\@
.endm

.macro MSIP_SET v
  li t0, CLINT_MSIP
  li t1, \v
  sw t1, 0(t0)
.endm

.macro MTIMECMP_SET_NEVER
  li t0, CLINT_MTIMECMP
  li t1, -1
  sd t1, 0(t0)
.endm

.macro MTIMECMP_SET_NOW
  li t0, CLINT_MTIMECMP
  sd zero, 0(t0)
.endm

#endif /* __ASSEMBLER__ */
#endif /* VIREO_GUEST_IRQ_H */
