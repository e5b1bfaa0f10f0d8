/*
 * Exit-rate probe: the initrd holds { u16 port; u16 in; u32 count }. The guest does `count` single-byte
 * OUTs (or INs when `in` is non-zero) to `port`, each a KVM_EXIT_IO, then prints "pio done" and resets.
 * Port 0x80 is answered inside the vCPU thread; 0x3ff (the UART's scratch register) goes to the device on
 * the main thread.
 */
        .include "header.inc"
        movl ZERO_PAGE_RAMDISK_IMAGE(%rsi), %ebx
        movzwl (%rbx), %edx             /* port */
        movzwl 2(%rbx), %r9d            /* in? */
        movl 4(%rbx), %ecx              /* count */
        movb $0x5a, %al
        testl %r9d, %r9d
        jnz 2f
1:      outb %al, %dx
        decl %ecx
        jnz 1b
        jmp 3f
2:      inb %dx, %al
        decl %ecx
        jnz 2b
3:      leaq done(%rip), %rsi
        call puts
        jmp reset

        .include "lib.inc"

        .section .rodata
done:   .asciz "pio done\n"
