/*
 * Prints "echo ready\n" on the 16550 UART, then sends back every byte it receives, upper-cased
 * (a-z only), so that a test can tell the guest's answer from anything a terminal echoes locally.
 */
        .equ UART, 0x10000000
        .equ LSR_DR, 0x01
        .equ LSR_THRE, 0x20

        .section .text.init
        .globl _start
_start:
        li s0, UART
        la a1, banner
1:      lbu a0, 0(a1)
        beqz a0, loop
        call putc
        addi a1, a1, 1
        j 1b

loop:   lbu t0, 5(s0)
        andi t0, t0, LSR_DR
        beqz t0, loop
        lbu a0, 0(s0)
        li t1, 'a'
        bltu a0, t1, 2f
        li t1, 'z'
        bgtu a0, t1, 2f
        addi a0, a0, -32
2:      call putc
        j loop

/* a0: one byte, once the transmitter holds none */
putc:   lbu t3, 5(s0)
        andi t3, t3, LSR_THRE
        beqz t3, putc
        sb a0, 0(s0)
        ret

        .section .rodata
banner: .asciz "echo ready\n"
