/*
 * Dies on purpose: loads an empty IDT and executes ud2. The #UD cannot be delivered, nor the #DF that
 * follows: a triple fault, which KVM reports as KVM_EXIT_SHUTDOWN. Vireo dumps the registers and exits
 * with status 3. %rbx carries a marker for the test to find in the dump.
 */
        .include "header.inc"
        leaq msg(%rip), %rsi
        call puts
        movabsq $0x5afec0debadc0de5, %rbx
        lidt empty_idtr(%rip)
        ud2

        .include "lib.inc"

        .section .rodata
msg:    .asciz "about to triple-fault\n"
empty_idtr:
        .word 0
        .quad 0
