/*
 * Says "idle" on the 16550 UART, then waits in WFI for ever with every interrupt off: a guest with
 * nothing to do, for the tests that check an idle VM costs its host nothing.
 */
        .equ UART, 0x10000000

        .section .text.init
        .globl _start
_start:
        li s0, UART
        la a1, banner
1:      lbu a0, 0(a1)
        beqz a0, 2f
        sb a0, 0(s0)
        addi a1, a1, 1
        j 1b
2:      csrw mie, zero
3:      wfi
        j 3b

        .section .rodata
banner: .asciz "idle\n"
