/*
 * Counts 1, 2, 3, … forever, one number a line on COM1, with a busy delay between lines; the count is
 * also kept in guest RAM at COUNTER (1 MiB + 2 MiB). For snapshots: a restored guest must print the next
 * number, a clone counts on its own from the same one.
 */
        .include "header.inc"
        .set COUNTER, 0x300000
        movq $COUNTER, %r12
        movq $0, (%r12)
1:      incq (%r12)
        movq (%r12), %rdi
        call putdec
        movl $'\n', %edi
        call putc
        movl $10000, %ecx
2:      decl %ecx
        jnz 2b
        jmp 1b

        .include "lib.inc"
