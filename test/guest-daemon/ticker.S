/*
 * Prints "tick " and a 16-digit hex counter on the 16550 UART every 10 ms, for ever, and sleeps in WFI
 * in between (the machine timer wakes it; interrupts stay masked, so no handler runs). Unlike
 * counter.S it leaves the host's thread idle: a test can run it beside other work in one process.
 */
        .equ UART, 0x10000000
        .equ MTIMECMP, 0x02004000
        .equ MTIME, 0x0200bff8
        .equ PERIOD, 100000     /* timer ticks at 10 MHz: 10 ms */
        .equ MIP_MTIP, 0x80

        .section .text.init
        .globl _start
_start:
        li s0, UART
        li s1, 0                /* the counter */
        li s2, MTIMECMP
        li s3, MTIME
        csrci mstatus, 8        /* MIE off: WFI wakes on a pending timer without taking a trap */
        li t0, MIP_MTIP
        csrw mie, t0
line:   call print_tick
        addi s1, s1, 1
        ld t0, 0(s3)
        li t1, PERIOD
        add t0, t0, t1
        sd t0, 0(s2)            /* also clears MTIP until then */
sleep:  wfi
        csrr t0, mip
        andi t0, t0, MIP_MTIP
        beqz t0, sleep
        j line

#include "tick.inc"
