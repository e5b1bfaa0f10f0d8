/*
 * Secondary vCPUs brought up the way an OS does it: the BSP copies a real-mode trampoline to 0x3000,
 * sends INIT and two STARTUP IPIs (vector 3) to each AP through its local APIC's ICR, and waits for
 * every AP to check in. Each AP goes real mode -> protected mode -> long mode on the boot page tables,
 * takes a lock, prints its APIC ID, increments a shared counter with a locked add, and halts.
 * The BSP then prints the counter and resets through the i8042.
 */
        .set LAPIC, 0xfee00000
        .set TRAMPOLINE, 0x3000
        .set CPU_COUNT_ADDR, 0x5000     /* the number of CPUs, read by the BSP from the MADT below */
        .include "header.inc"
        movq $0x80000, %rsp
        leaq bsp_msg(%rip), %rsi
        call puts

        /* Count CPUs from the ACPI MADT: RSDP at 0xe0000 -> XSDT -> "APIC" -> type-0 entries. */
        call count_cpus
        movl %eax, cpus(%rip)
        leaq cpus_msg(%rip), %rsi
        call puts
        movl cpus(%rip), %edi
        call putdec
        movl $'\n', %edi
        call putc

        /* Copy the trampoline below 1 MiB. */
        leaq trampoline_start(%rip), %rsi
        movl $TRAMPOLINE, %edi
        movl $trampoline_end - trampoline_start, %ecx
        rep movsb

        /* For each AP (APIC IDs 1..cpus-1): INIT, then STARTUP twice. */
        movl $LAPIC, %ebx
        orl $0x100, 0xf0(%rbx)          /* APIC software enable */
        movl $1, %r12d
1:      cmpl cpus(%rip), %r12d
        jae 3f
        movl %r12d, %eax
        shll $24, %eax
        movl %eax, 0x310(%rbx)          /* ICR high: destination */
        movl $0x4500, 0x300(%rbx)       /* INIT, assert */
        call delay
        movl $2, %r13d
2:      movl %r12d, %eax
        shll $24, %eax
        movl %eax, 0x310(%rbx)
        movl $0x4600 | (TRAMPOLINE >> 12), 0x300(%rbx)  /* STARTUP, vector 3 */
        call delay
        decl %r13d
        jnz 2b
        incl %r12d
        jmp 1b

        /* Wait for every AP to check in. */
3:      movl cpus(%rip), %eax
        decl %eax
4:      pause
        cmpl %eax, ap_counter(%rip)
        jb 4b
        call lock
        leaq done_msg(%rip), %rsi
        call puts
        movl ap_counter(%rip), %edi
        call putdec
        movl $'\n', %edi
        call putc
        call unlock
        jmp reset

/* A short busy wait between IPIs. */
delay:
        movl $100000, %ecx
1:      pause
        decl %ecx
        jnz 1b
        ret

lock:
        movl $1, %eax
1:      xchgl %eax, print_lock(%rip)
        testl %eax, %eax
        jz 2f
        pause
        jmp 1b
2:      ret

unlock:
        movl $0, print_lock(%rip)
        ret

/* count_cpus: %eax = processor-local-APIC entries in the MADT (1 if there is none). */
count_cpus:
        movl $0xe0000, %esi
        cmpl $0x20445352, (%rsi)        /* "RSD " */
        jne 9f
        movq 24(%rsi), %rsi             /* XSDT */
        movl 4(%rsi), %ecx              /* length */
        leaq 36(%rsi), %rdi
        addq %rsi, %rcx
1:      cmpq %rcx, %rdi
        jae 9f
        movq (%rdi), %rdx
        addq $8, %rdi
        cmpl $0x43495041, (%rdx)        /* "APIC" */
        jne 1b
        movl 4(%rdx), %ecx
        addq %rdx, %rcx                 /* end of the MADT */
        leaq 44(%rdx), %rdx             /* first entry */
        xorl %eax, %eax
2:      cmpq %rcx, %rdx
        jae 3f
        cmpb $0, (%rdx)
        jne 4f
        incl %eax
4:      movzbq 1(%rdx), %r8
        addq %r8, %rdx
        jmp 2b
3:      ret
9:      movl $1, %eax
        ret

/* Long-mode AP entry (from the trampoline): own stack, print, count, halt. */
ap_main:
        movl $LAPIC, %ebx
        movl 0x20(%rbx), %r12d
        shrl $24, %r12d                 /* APIC ID */
        movl %r12d, %eax
        shll $12, %eax
        movl $0x70000, %esp
        subl %eax, %esp                 /* 4 KiB of stack per AP below 0x70000 */
        call lock
        leaq ap_msg(%rip), %rsi
        call puts
        movl %r12d, %edi
        call putdec
        leaq online_msg(%rip), %rsi
        call puts
        call unlock
        lock incl ap_counter(%rip)
1:      cli
        hlt
        jmp 1b

/* The trampoline: runs at TRAMPOLINE in real mode (CS = 0x300, IP = 0), so it only uses offsets. */
        .set T, trampoline_start
        .code16
trampoline_start:
        cli
        movw %cs, %ax
        movw %ax, %ds
        lgdtl tgdt_ptr - T
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $0x08, $TRAMPOLINE + (t32 - T)
        .code32
t32:    movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movl %cr4, %eax
        orl $0x20, %eax                 /* PAE */
        movl %eax, %cr4
        movl $0x9000, %eax              /* the boot identity page tables */
        movl %eax, %cr3
        movl $0xc0000080, %ecx          /* EFER.LME */
        rdmsr
        orl $0x100, %eax
        wrmsr
        movl %cr0, %eax
        orl $0x80000000, %eax           /* paging: long mode */
        movl %eax, %cr0
        ljmpl $0x18, $TRAMPOLINE + (t64 - T)
        .code64
t64:    movabsq $ap_main, %rax
        jmp *%rax
        .balign 8
tgdt:   .quad 0
        .quad 0x00cf9b000000ffff        /* 0x08: 32-bit code */
        .quad 0x00cf93000000ffff        /* 0x10: data */
        .quad 0x00af9b000000ffff        /* 0x18: 64-bit code */
tgdt_ptr:
        .word 4 * 8 - 1
        .long TRAMPOLINE + (tgdt - T)
trampoline_end:

        .include "lib.inc"

        .section .rodata
bsp_msg:        .asciz "BSP up\n"
cpus_msg:       .asciz "cpus in MADT: "
ap_msg:         .asciz "AP "
online_msg:     .asciz " online\n"
done_msg:       .asciz "APs checked in: "

        .data
        .balign 4
cpus:           .long 1
ap_counter:     .long 0
print_lock:     .long 0
