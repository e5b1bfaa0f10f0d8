/*
 * An ELF "kernel" booted through the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): starts in 32-bit protected
 * mode with paging off and %ebx = hvm_start_info. Checks the magic, prints the command line, the number
 * of memory map entries and whether an initrd module was passed, then resets through the i8042.
 */
        .code32
        .text
        .globl pvh_start
pvh_start:
        movl $0x80000, %esp
        cmpl $0x336ec578, (%ebx)        /* hvm_start_info magic */
        jne bad
        movl $hello, %esi
        call puts32
        movl 24(%ebx), %esi             /* cmdline_paddr */
        call puts32
        movl $'\n', %eax
        call putc32
        movl $memmap, %esi
        call puts32
        movl 48(%ebx), %eax             /* memmap_entries */
        addl $'0', %eax
        call putc32
        movl $modules, %esi
        call puts32
        movl 12(%ebx), %eax             /* nr_modules */
        addl $'0', %eax
        call putc32
        movl $'\n', %eax
        call putc32
        jmp reset32
bad:    movl $badmsg, %esi
        call puts32
reset32:
        movb $0xfe, %al
        outb %al, $0x64
1:      cli
        hlt
        jmp 1b

/* putc32: %al to COM1 once THR is empty. */
putc32:
        movb %al, %cl
        movw $0x3fd, %dx
1:      inb %dx, %al
        testb $0x20, %al
        jz 1b
        movw $0x3f8, %dx
        movb %cl, %al
        outb %al, %dx
        ret

puts32:
1:      movb (%esi), %al
        testb %al, %al
        jz 2f
        call putc32
        incl %esi
        jmp 1b
2:      ret

        .section .rodata
hello:  .asciz "PVH entry, cmdline: "
memmap: .asciz "memmap entries: "
modules: .asciz " modules: "
badmsg: .asciz "bad hvm_start_info magic\n"

        .section .note.Xen, "a"
        .balign 4
        .long 4                         /* namesz */
        .long 4                         /* descsz */
        .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start
