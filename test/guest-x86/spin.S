/* Spins forever with interrupts off after saying so: only the host can stop it (a vCPU kick). */
        .include "header.inc"
        leaq msg(%rip), %rsi
        call puts
        cli
1:      jmp 1b

        .include "lib.inc"

        .section .rodata
msg:    .asciz "spinning\n"
