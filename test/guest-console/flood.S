/*
 * Prints TOTAL bytes on the 16550 UART as fast as it can, polling LSR.THRE before each byte (as
 * OpenSBI and Linux's console do), then powers off through the test finisher. Byte i is i mod 251, so
 * the reader can check every byte and its order. TOTAL = 0 powers off at once.
 */
        .equ UART, 0x10000000
        .equ LSR_THRE, 0x20
        .equ FINISHER, 0x100000
        .equ FINISHER_PASS, 0x5555

        .section .text.init
        .globl _start
_start:
        li t0, UART
        li t1, TOTAL
        li t2, 0
        li t4, 251
        beqz t1, done
1:      lbu t3, 5(t0)
        andi t3, t3, LSR_THRE
        beqz t3, 1b
        sb t2, 0(t0)
        addi t2, t2, 1
        bne t2, t4, 2f
        li t2, 0
2:      addi t1, t1, -1
        bnez t1, 1b
done:   li t0, FINISHER
        li t1, FINISHER_PASS
        sw t1, 0(t0)
3:      wfi
        j 3b
