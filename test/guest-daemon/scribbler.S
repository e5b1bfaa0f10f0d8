/*
 * A guest that keeps writing memory, for live-migration tests: each round it checks that the first
 * doubleword of each of PAGES pages from AREA holds the round number (a lost page write would break
 * that: it prints "bad" and stops), writes the next number there, then prints "tick " and the round on
 * the 16550 UART and spins for DELAY iterations.
 */
        .equ UART, 0x10000000
        .equ AREA, 0x80100000
        .equ PAGES, 512
        .equ DELAY, 20000

        .section .text.init
        .globl _start
_start:
        li s0, UART
        li s1, 0                /* the round */
round:  li s2, AREA
        li s3, PAGES
        addi s4, s1, 1
page:   ld t0, 0(s2)
        bne t0, s1, bad
        sd s4, 0(s2)
        li t1, 4096
        add s2, s2, t1
        addi s3, s3, -1
        bnez s3, page
        call print_tick
        addi s1, s1, 1
        li t0, DELAY
spin:   addi t0, t0, -1
        bnez t0, spin
        j round

bad:    la a1, badmsg
        call puts
1:      j 1b

#include "tick.inc"

        .section .rodata
badmsg: .asciz "bad\n"
