/*
 * Exit-rate probe for the KVM benchmark (a PVH kernel, so QEMU can boot it too): the initrd holds
 * { u16 port; u16 in; u32 count }. The guest does `count` single-byte OUTs (or INs when `in` is
 * non-zero) to `port`, each a KVM_EXIT_IO, then prints "pio done" and ends the run (exit32). Under
 * Vireo, port 0x80 is answered in the vCPU thread and 0x3ff (the UART's scratch register) is forwarded
 * to the main thread; QEMU handles both in its vCPU thread.
 */
        .code32
        .text
        .globl pvh_start
pvh_start:
        movl $0x80000, %esp
        call params32
        movzwl (%eax), %edx             /* port */
        movzwl 2(%eax), %edi            /* in? */
        movl 4(%eax), %ecx              /* count */
        movb $0x5a, %al
        testl %ecx, %ecx
        jz 3f
        testl %edi, %edi
        jnz 2f
1:      outb %al, %dx
        decl %ecx
        jnz 1b
        jmp 3f
2:      inb %dx, %al
        decl %ecx
        jnz 2b
3:      movl $done, %esi
        call puts32
        jmp exit32

        .include "pvh.inc"

        .section .rodata
done:   .asciz "pio done\n"

        .section .note.Xen, "a"
        .balign 4
        .long 4                         /* namesz */
        .long 4                         /* descsz */
        .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start
