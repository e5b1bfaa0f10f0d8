/*
 * Powers off the way Linux does on hardware-reduced ACPI: SLP_TYP = 5 (\_S5) with SLP_EN written to the
 * FADT's sleep control register, whose port it reads from the tables (RSDP at 0xe0000 -> XSDT -> FACP).
 */
        .include "header.inc"
        movl $0xe0000, %esi
        movq 24(%rsi), %rsi             /* XSDT */
        movl 4(%rsi), %ecx
        leaq 36(%rsi), %rdi
        addq %rsi, %rcx
1:      cmpq %rcx, %rdi
        jae fail
        movq (%rdi), %rdx
        addq $8, %rdi
        cmpl $0x50434146, (%rdx)        /* "FACP" */
        jne 1b
        movq 244+4(%rdx), %r12          /* SLEEP_CONTROL_REG.address */
        leaq msg(%rip), %rsi
        call puts
        movl %r12d, %edi
        call putdec
        movl $'\n', %edi
        call putc
        movw %r12w, %dx
        movb $(5 << 2) | 0x20, %al
        outb %al, %dx
2:      cli
        hlt
        jmp 2b
fail:   leaq nofadt(%rip), %rsi
        call puts
        jmp reset

        .include "lib.inc"

        .section .rodata
msg:    .asciz "powering off via port "
nofadt: .asciz "no FADT\n"
