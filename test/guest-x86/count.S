/*
 * Counts forever into guest RAM at COUNTER (1 MiB + 2 MiB: above this image, below 64 MiB), with two
 * exits per iteration: an OUT to port 0x80 (answered in the vCPU thread) and an IN from COM1's LSR
 * (forwarded to the main thread). For pause/resume: the host reads the counter from guest RAM.
 */
        .include "header.inc"
        .set COUNTER, 0x300000
        leaq msg(%rip), %rsi
        call puts
        movq $COUNTER, %rbx
        movq $0, (%rbx)
1:      incq (%rbx)
        outb %al, $0x80
        movw $COM1+5, %dx
        inb %dx, %al
        jmp 1b

        .include "lib.inc"

        .section .rodata
msg:    .asciz "counting\n"
