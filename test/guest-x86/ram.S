/*
 * Finds the end of RAM from the e820 table in boot_params (%rsi) and uses the last page: maps the GiB
 * it lies in when that is above the boot page tables' 4 GiB (a page directory of 2 MiB pages of its
 * own), then writes and reads back its first and last quadwords. Prints "RAM end <bytes>" (or
 * "RAM FAIL <n>") and resets. Only a few pages are touched, whatever the RAM size.
 */
        .include "header.inc"
        .set ZERO_PAGE_E820_TABLE, 0x2d0
        .set E820_ENTRY, 20
        .set E820_RAM, 1
        movq %rsi, %r12

        /* %r13 = the highest end of an E820_RAM entry. */
        xorl %r13d, %r13d
        movzbl ZERO_PAGE_E820_ENTRIES(%r12), %ecx
        leaq ZERO_PAGE_E820_TABLE(%r12), %rbx
1:      testl %ecx, %ecx
        jz 3f
        cmpl $E820_RAM, 16(%rbx)
        jne 2f
        movq (%rbx), %rax
        addq 8(%rbx), %rax
        cmpq %r13, %rax
        jbe 2f
        movq %rax, %r13
2:      addq $E820_ENTRY, %rbx
        decl %ecx
        jmp 1b
3:
        movl $1, %r14d                  /* check number */
        movabsq $0x100000000, %rax
        cmpq %rax, %r13
        jbe 5f
        /* Above 4 GiB: point the PDPT entry of the last page's GiB at our page directory. */
        movl $2, %r14d
        leaq -8(%r13), %rax
        shrq $30, %rax                  /* GiB index */
        cmpq $512, %rax
        jae fail
        movq %cr3, %rbx
        andq $-4096, %rbx               /* PML4 */
        movq (%rbx), %rbx
        andq $-4096, %rbx               /* PDPT for 0..512 GiB */
        movq %rax, %rdx
        shlq $30, %rdx
        orq $0x83, %rdx                 /* present, writable, 2 MiB page */
        leaq pd(%rip), %rdi
        xorl %ecx, %ecx
4:      movq %rdx, (%rdi,%rcx,8)
        addq $0x200000, %rdx
        incl %ecx
        cmpl $512, %ecx
        jne 4b
        orq $3, %rdi
        movq %rdi, (%rbx,%rax,8)
        movq %cr3, %rax
        movq %rax, %cr3                 /* flush the TLB */
5:
        movl $3, %r14d
        movabsq $0x0123456789abcdef, %rax
        movq %rax, -8(%r13)
        movq -8(%r13), %rdx
        cmpq %rax, %rdx
        jne fail
        movl $4, %r14d
        notq %rax
        movq %rax, -4096(%r13)
        movq -4096(%r13), %rdx
        cmpq %rax, %rdx
        jne fail
        movq -8(%r13), %rdx
        notq %rax
        cmpq %rax, %rdx
        jne fail

        leaq ok(%rip), %rsi
        call puts
        movq %r13, %rdi
        call putdec
        movl $'\n', %edi
        call putc
        jmp reset

fail:
        leaq bad(%rip), %rsi
        call puts
        movq %r14, %rdi
        call putdec
        movl $'\n', %edi
        call putc
        jmp reset

        .include "lib.inc"

        .section .rodata
ok:     .asciz "RAM end "
bad:    .asciz "RAM FAIL "

        .bss
        .balign 4096
pd:     .skip 4096
