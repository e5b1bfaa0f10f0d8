/*
 * Console backpressure probe: the initrd holds a u32 count. The guest prints that many bytes on COM1,
 * waiting for THRE before each (putc), byte i being i mod 251, then resets.
 */
        .include "header.inc"
        movl ZERO_PAGE_RAMDISK_IMAGE(%rsi), %ebx
        movl (%rbx), %r12d              /* count */
        xorl %r13d, %r13d               /* i mod 251 */
        testl %r12d, %r12d
        jz 3f
1:      movl %r13d, %edi
        call putc
        incl %r13d
        cmpl $251, %r13d
        jne 2f
        xorl %r13d, %r13d
2:      decl %r12d
        jnz 1b
3:      jmp reset

        .include "lib.inc"
