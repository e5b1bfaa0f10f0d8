/*
 * Prints "tick " and a 16-digit hex counter on the 16550 UART every 10 ms, for ever, and sleeps in WFI
 * in between (the machine timer wakes it; interrupts stay masked, so no handler runs). Unlike
 * counter.S it leaves the host's thread idle: a test can run it beside other work in one process.
 */
        .equ UART, 0x10000000
        .equ LSR_THRE, 0x20
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
        ld t0, 0(s3)
        li t1, PERIOD
        add t0, t0, t1
        sd t0, 0(s2)            /* also clears MTIP until then */
sleep:  wfi
        csrr t0, mip
        andi t0, t0, MIP_MTIP
        beqz t0, sleep
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
