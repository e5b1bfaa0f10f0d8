/*
 * Entered through the 64-bit Linux boot path: prints a greeting, the command line and the initrd's first
 * line from boot_params (%rsi), the e820 entry count and the current CS/CR0/CR4/EFER long-mode bits, then
 * resets through the i8042.
 */
        .include "header.inc"
        movq %rsi, %r12                 /* boot_params */
        leaq hello(%rip), %rsi
        call puts
        leaq cmdline(%rip), %rsi
        call puts
        movl ZERO_PAGE_CMDLINE(%r12), %esi
        call puts
        movl $'\n', %edi
        call putc

        movl ZERO_PAGE_RAMDISK_SIZE(%r12), %ecx
        testl %ecx, %ecx
        jz 2f
        leaq initrd(%rip), %rsi
        call puts
        movl ZERO_PAGE_RAMDISK_IMAGE(%r12), %ebx
1:      movzbl (%rbx), %edi
        cmpb $'\n', %dil
        je 2f
        call putc
        incq %rbx
        jmp 1b
2:      movl $'\n', %edi
        call putc

        leaq e820(%rip), %rsi
        call puts
        movzbl ZERO_PAGE_E820_ENTRIES(%r12), %edi
        call putdec
        movl $'\n', %edi
        call putc

        leaq cs(%rip), %rsi
        call puts
        movw %cs, %di
        movzwl %di, %edi
        call putdec
        leaq lm(%rip), %rsi
        call puts
        movl $0xc0000080, %ecx          /* EFER */
        rdmsr
        shrl $10, %eax                  /* LMA */
        andl $1, %eax
        movl %eax, %edi
        call putdec
        movl $'\n', %edi
        call putc

        leaq bye(%rip), %rsi
        call puts
        jmp reset

        .include "lib.inc"

        .section .rodata
hello:  .asciz "Hello from a 64-bit guest on KVM\n"
cmdline: .asciz "cmdline: "
initrd: .asciz "initrd: "
e820:   .asciz "e820 entries: "
cs:     .asciz "cs="
lm:     .asciz " efer.lma="
bye:    .asciz "resetting\n"
