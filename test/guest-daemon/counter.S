/*
 * Runs until it is stopped: prints "tick " and a 16-digit hex counter on the 16550 UART, then spins
 * for DELAY iterations, for ever. The daemon tests read its console and count its instructions.
 */
        .equ UART, 0x10000000
        .equ LSR_THRE, 0x20
        .equ DELAY, 200000

        .section .text.init
        .globl _start
_start:
        li s0, UART
        li s1, 0                /* the counter */
line:   la a1, prefix
        call puts
        li t5, 60               /* shift: the top nibble first */
digit:  srl t0, s1, t5
        andi t0, t0, 15
        la t1, hex
        add t1, t1, t0
        lbu a0, 0(t1)
        call putc
        addi t5, t5, -4
        bgez t5, digit
        li a0, '\n'
        call putc
        addi s1, s1, 1
        li t0, DELAY
spin:   addi t0, t0, -1
        bnez t0, spin
        j line

/* a1: a NUL-terminated string */
puts:   mv t6, ra
1:      lbu a0, 0(a1)
        beqz a0, 2f
        call putc
        addi a1, a1, 1
        j 1b
2:      mv ra, t6
        ret

/* a0: one byte, once the transmitter holds none */
putc:   lbu t3, 5(s0)
        andi t3, t3, LSR_THRE
        beqz t3, putc
        sb a0, 0(s0)
        ret

        .section .rodata
prefix: .asciz "tick "
hex:    .ascii "0123456789abcdef"
