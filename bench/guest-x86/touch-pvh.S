/*
 * Memory probe for the KVM benchmark (a PVH kernel): the initrd holds { u32 pages }. The guest writes
 * one byte into each of `pages` 4 KiB pages from 4 MiB up (so the host has to back them), prints
 * "touched", then halts with interrupts off until the host stops it (the vCPU sleeps in KVM: no CPU).
 */
        .code32
        .text
        .globl pvh_start
pvh_start:
        movl $0x80000, %esp
        call params32
        movl (%eax), %ecx               /* pages */
        movl $0x400000, %edi
        testl %ecx, %ecx
        jz 2f
1:      movb $1, (%edi)
        addl $4096, %edi
        decl %ecx
        jnz 1b
2:      movl $touched, %esi
        call puts32
3:      cli
        hlt
        jmp 3b

        .include "pvh.inc"

        .section .rodata
touched: .asciz "touched\n"

        .section .note.Xen, "a"
        .balign 4
        .long 4                         /* namesz */
        .long 4                         /* descsz */
        .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start
