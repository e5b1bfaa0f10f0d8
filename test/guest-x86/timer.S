/*
 * Timer interrupts through the in-kernel irqchip: an IDT with 64-bit gates, then
 *  1. the PIT (channel 0, 1 kHz) through the 8259 PIC (remapped to vectors 0x20-0x2f) and LAPIC LINT0
 *     (ExtINT): counts TICKS interrupts on vector 0x20, halting in between;
 *  2. the LAPIC timer (periodic, vector 0x40): counts TICKS interrupts.
 * Prints each count and resets through the i8042.
 */
        .set TICKS, 10
        .set LAPIC, 0xfee00000
        .include "header.inc"
        movq $0x80000, %rsp
        /* IDT: every vector to `unexpected`, 0x20 to pit_isr, 0x40 to lapic_isr. */
        xorl %ecx, %ecx
1:      leaq unexpected(%rip), %rax
        cmpl $0x20, %ecx
        jne 2f
        leaq pit_isr(%rip), %rax
2:      cmpl $0x40, %ecx
        jne 3f
        leaq lapic_isr(%rip), %rax
3:      call set_gate
        incl %ecx
        cmpl $256, %ecx
        jne 1b
        lidt idtr(%rip)

        /* 8259 PICs: ICW1-4, master at vector 0x20, slave at 0x28; unmask only IRQ 0. */
        movb $0x11, %al
        outb %al, $0x20
        outb %al, $0xa0
        movb $0x20, %al
        outb %al, $0x21
        movb $0x28, %al
        outb %al, $0xa1
        movb $0x04, %al
        outb %al, $0x21
        movb $0x02, %al
        outb %al, $0xa1
        movb $0x01, %al
        outb %al, $0x21
        outb %al, $0xa1
        movb $0xfe, %al
        outb %al, $0x21
        movb $0xff, %al
        outb %al, $0xa1

        /* PIT channel 0, mode 2 (rate generator), 1193182 Hz / 1193 = 1 kHz. */
        movb $0x34, %al
        outb %al, $0x43
        movw $1193, %ax
        outb %al, $0x40
        movb %ah, %al
        outb %al, $0x40

        sti
4:      hlt
        cmpl $TICKS, pit_count(%rip)
        jb 4b
        cli
        movb $0xff, %al                 /* mask the PIC again */
        outb %al, $0x21
        leaq pit_msg(%rip), %rsi
        call puts
        movl pit_count(%rip), %edi
        call putdec
        movl $'\n', %edi
        call putc

        /* LAPIC timer: divide by 16, periodic, vector 0x40. */
        movl $LAPIC, %ebx
        orl $0x100, 0xf0(%rbx)          /* spurious vector register: APIC software enable */
        movl $0x3, 0x3e0(%rbx)          /* divide configuration: /16 */
        movl $0x20040, 0x320(%rbx)      /* LVT timer: periodic, vector 0x40 */
        movl $100000, 0x380(%rbx)       /* initial count */
        sti
5:      hlt
        cmpl $TICKS, lapic_count(%rip)
        jb 5b
        cli
        movl $0x10000, 0x320(%rbx)      /* mask the timer */
        leaq lapic_msg(%rip), %rsi
        call puts
        movl lapic_count(%rip), %edi
        call putdec
        movl $'\n', %edi
        call putc
        jmp reset

/* set_gate: vector %ecx -> handler %rax (interrupt gate, CS 0x10). */
set_gate:
        movl %ecx, %edx
        shll $4, %edx
        leaq idt(%rip), %rdi
        addq %rdx, %rdi
        movw %ax, (%rdi)
        movw $0x10, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shrq $16, %rax
        movw %ax, 6(%rdi)
        shrq $16, %rax
        movl %eax, 8(%rdi)
        movl $0, 12(%rdi)
        ret

pit_isr:
        pushq %rax
        incl pit_count(%rip)
        movb $0x20, %al                 /* EOI to the master PIC */
        outb %al, $0x20
        popq %rax
        iretq

lapic_isr:
        pushq %rax
        incl lapic_count(%rip)
        movl $LAPIC+0xb0, %eax          /* LAPIC EOI */
        movl $0, (%rax)
        popq %rax
        iretq

unexpected:
        leaq unexpected_msg(%rip), %rsi
        call puts
        jmp reset

        .include "lib.inc"

        .section .rodata
pit_msg:        .asciz "pit ticks: "
lapic_msg:      .asciz "lapic ticks: "
unexpected_msg: .asciz "unexpected interrupt\n"
idtr:   .word 256 * 16 - 1
        .quad idt

        .data
pit_count:      .long 0
lapic_count:    .long 0
        .balign 16
idt:    .fill 256 * 16, 1, 0
