/*
 * Reads the keyboard as a polling driver does: waits for OBF in the i8042 status (port 0x64), reads the
 * byte from port 0x60 and prints it in hex; after 8 bytes (Ctrl-Alt-Del pressed and released, set 1) it
 * prints a newline and resets through the i8042. For the host's power-off request (Ctrl-Alt-Del).
 */
        .include "header.inc"
        leaq msg(%rip), %rsi
        call puts
        movl $8, %ebx
1:      inb $0x64, %al
        testb $1, %al
        jz 1b
        inb $0x60, %al
        movzbl %al, %r12d
        movl %r12d, %edi
        shrl $4, %edi
        call hexdigit
        movl %r12d, %edi
        andl $15, %edi
        call hexdigit
        movl $' ', %edi
        call putc
        decl %ebx
        jnz 1b
        movl $'\n', %edi
        call putc
        jmp reset

/* hexdigit: the low nibble of %edi, as one lower-case hex digit. */
hexdigit:
        leaq digits(%rip), %rax
        movzbl (%rax,%rdi), %edi
        jmp putc

        .include "lib.inc"

        .section .rodata
msg:    .asciz "keyboard\n"
digits: .ascii "0123456789abcdef"
