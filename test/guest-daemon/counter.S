/*
 * Runs until it is stopped: prints "tick " and a 16-digit hex counter on the 16550 UART, then spins
 * for DELAY iterations, for ever. The daemon tests read its console and count its instructions.
 */
        .equ UART, 0x10000000
        .equ DELAY, 200000

        .section .text.init
        .globl _start
_start:
        li s0, UART
        li s1, 0                /* the counter */
line:   call print_tick
        addi s1, s1, 1
        li t0, DELAY
spin:   addi t0, t0, -1
        bnez t0, spin
        j line

#include "tick.inc"
