/*
 * Dirties 1024 pages (4 MiB at 4 MiB) each round: checks that every page still holds the last round's
 * number, writes the next one into all of them and prints it; a page that lost its number prints "bad"
 * and stops. For live migration: every page the guest wrote must arrive, whichever pass carried it.
 */
        .include "header.inc"
        .set BASE, 0x400000
        .set PAGES, 1024
        xorq %r12, %r12
1:      movq $BASE, %rbx
        movl $PAGES, %ecx
2:      cmpq %r12, (%rbx)
        jne bad
        addq $4096, %rbx
        decl %ecx
        jnz 2b
        incq %r12
        movq $BASE, %rbx
        movl $PAGES, %ecx
3:      movq %r12, (%rbx)
        addq $4096, %rbx
        decl %ecx
        jnz 3b
        movq %r12, %rdi
        call putdec
        movl $'\n', %edi
        call putc
        jmp 1b

bad:    leaq badmsg(%rip), %rsi
        call puts
4:      cli
        hlt
        jmp 4b

        .include "lib.inc"

        .section .rodata
badmsg: .asciz "bad\n"
