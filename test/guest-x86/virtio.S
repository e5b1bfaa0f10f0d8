/*
 * A virtio-mmio driver in miniature: scans the board's eight virtio-mmio slots (window 0xc0001000 +
 * 0x1000 * slot, GSI 5 + slot: the board's fixed table, no ACPI parsing), and for each virtio-blk
 * (ID 2) and virtio-rng (ID 4) found:
 *  1. routes its GSI through the IOAPIC (level-triggered, active-high) to vector 0x30 + slot;
 *  2. resets the device, negotiates VERSION_1 only, sets up split virtqueue 0 (8 entries) in RAM at
 *     0x400000 + 0x1000 * slot, sets DRIVER_OK;
 *  3. posts one request (virtio-blk: read sector 0; virtio-rng: 32 bytes), writes the queue index to
 *     QueueNotify (the board's ioeventfd: no exit) and halts until the interrupt handler has run
 *     (it reads InterruptStatus, acknowledges it and sends the LAPIC EOI);
 *  4. prints what the interrupt, the used ring and the buffer say.
 * Then prints "virtio done" and resets through the i8042.
 */
        .set LAPIC, 0xfee00000
        .set IOAPIC, 0xfec00000
        .set MMIO_BASE, 0xc0001000
        .set FIRST_GSI, 5
        .set VECTOR_BASE, 0x30
        .set SLOTS, 8
        .set QUEUE_RAM, 0x400000
        .set QSIZE, 8

        /* virtio-mmio registers */
        .set MAGIC, 0x000
        .set VERSION, 0x004
        .set DEVICE_ID, 0x008
        .set DEVICE_FEATURES, 0x010
        .set DEVICE_FEATURES_SEL, 0x014
        .set DRIVER_FEATURES, 0x020
        .set DRIVER_FEATURES_SEL, 0x024
        .set QUEUE_SEL, 0x030
        .set QUEUE_SIZE_MAX, 0x034
        .set QUEUE_SIZE, 0x038
        .set QUEUE_READY, 0x044
        .set QUEUE_NOTIFY, 0x050
        .set INTERRUPT_STATUS, 0x060
        .set INTERRUPT_ACK, 0x064
        .set STATUS, 0x070
        .set QUEUE_DESC_LOW, 0x080
        .set QUEUE_DESC_HIGH, 0x084
        .set QUEUE_DRIVER_LOW, 0x090
        .set QUEUE_DRIVER_HIGH, 0x094
        .set QUEUE_DEVICE_LOW, 0x0a0
        .set QUEUE_DEVICE_HIGH, 0x0a4

        /* queue memory, relative to QUEUE_RAM + 0x1000 * slot */
        .set Q_DESC, 0x000
        .set Q_AVAIL, 0x100
        .set Q_USED, 0x200
        .set Q_HEADER, 0x400
        .set Q_STATUS, 0x410
        .set Q_DATA, 0x800

        .set DESC_NEXT, 1
        .set DESC_WRITE, 2

        .include "header.inc"
        movq $0x80000, %rsp
        /* IDT: every vector to `unexpected`, 0x30 + slot to that slot's stub. */
        xorl %ecx, %ecx
1:      leaq unexpected(%rip), %rax
        movl %ecx, %edx
        subl $VECTOR_BASE, %edx
        cmpl $SLOTS, %edx
        jae 2f
        leaq isr_stubs(%rip), %rax
        shll $4, %edx
        addq %rdx, %rax
2:      call set_gate
        incl %ecx
        cmpl $256, %ecx
        jne 1b
        lidt idtr(%rip)
        /* LAPIC software enable (spurious vector 0xff), TPR 0. */
        movl $LAPIC, %eax
        movl $0x1ff, 0xf0(%rax)
        movl $0, 0x80(%rax)

        xorl %r12d, %r12d               /* slot */
scan:   movl %r12d, %ebx
        shll $12, %ebx
        addl $MMIO_BASE, %ebx           /* %rbx = window */
        cmpl $0x74726976, MAGIC(%rbx)   /* "virt" */
        jne next
        cmpl $2, VERSION(%rbx)
        jne next
        movl DEVICE_ID(%rbx), %eax
        cmpl $2, %eax
        je 3f
        cmpl $4, %eax
        jne next
        call setup
        call rng_request
        jmp next
3:      call setup
        call blk_request
next:   incl %r12d
        cmpl $SLOTS, %r12d
        jne scan
        leaq done_msg(%rip), %rsi
        call puts
        jmp reset

/*
 * setup: slot %r12, window %rbx. IOAPIC route, device init, queue 0 at %r13 = QUEUE_RAM + 0x1000 * slot
 * (zeroed). Fails (prints, resets) when the device does not offer VERSION_1 or refuses FEATURES_OK.
 */
setup:
        movl %r12d, %r13d
        shll $12, %r13d
        addl $QUEUE_RAM, %r13d
        movq %r13, %rdi
        movl $512, %ecx
        xorl %eax, %eax
        rep stosq
        /* IOAPIC redirection entry GSI: vector 0x30 + slot, level (bit 15), active high, unmasked, APIC 0. */
        leal FIRST_GSI(%r12), %ecx
        shll $1, %ecx
        addl $0x10, %ecx
        movl $IOAPIC, %edi
        leal 1(%rcx), %eax
        movl %eax, (%rdi)               /* IOREGSEL: high dword */
        movl $0, 0x10(%rdi)             /* IOWIN: destination APIC ID 0 */
        movl %ecx, (%rdi)               /* low dword */
        leal VECTOR_BASE(%r12), %eax
        orl $0x8000, %eax
        movl %eax, 0x10(%rdi)

        movl $0, STATUS(%rbx)           /* reset */
        movl $1, STATUS(%rbx)           /* ACKNOWLEDGE */
        movl $3, STATUS(%rbx)           /* DRIVER */
        movl $1, DEVICE_FEATURES_SEL(%rbx)
        testl $1, DEVICE_FEATURES(%rbx) /* VERSION_1 = feature bit 32 */
        jz no_version_1
        movl $1, DRIVER_FEATURES_SEL(%rbx)
        movl $1, DRIVER_FEATURES(%rbx)
        movl $0, DRIVER_FEATURES_SEL(%rbx)
        movl $0, DRIVER_FEATURES(%rbx)
        movl $0xb, STATUS(%rbx)         /* FEATURES_OK */
        testl $8, STATUS(%rbx)
        jz features_refused
        movl $0, QUEUE_SEL(%rbx)
        cmpl $QSIZE, QUEUE_SIZE_MAX(%rbx)
        jb queue_too_small
        movl $QSIZE, QUEUE_SIZE(%rbx)
        leal Q_DESC(%r13), %eax
        movl %eax, QUEUE_DESC_LOW(%rbx)
        movl $0, QUEUE_DESC_HIGH(%rbx)
        leal Q_AVAIL(%r13), %eax
        movl %eax, QUEUE_DRIVER_LOW(%rbx)
        movl $0, QUEUE_DRIVER_HIGH(%rbx)
        leal Q_USED(%r13), %eax
        movl %eax, QUEUE_DEVICE_LOW(%rbx)
        movl $0, QUEUE_DEVICE_HIGH(%rbx)
        movl $1, QUEUE_READY(%rbx)
        movl $0xf, STATUS(%rbx)         /* DRIVER_OK */
        ret

/* desc: descriptor %edi of the queue at %r13 := {addr %esi, len %edx, flags %ecx, next %edi + 1}. */
desc:
        movl %edi, %eax
        shll $4, %eax
        addq %r13, %rax
        movq %rsi, (%rax)
        movl %edx, 8(%rax)
        movw %cx, 12(%rax)
        leal 1(%rdi), %ecx
        movw %cx, 14(%rax)
        ret

/* submit: head 0 into avail ring slot 0, avail idx 1, doorbell, then wait for this slot's interrupt. */
submit:
        movw $0, Q_AVAIL+4(%r13)        /* ring[0] = head 0 */
        mfence
        movw $1, Q_AVAIL+2(%r13)        /* idx */
        mfence
        movl $0, QUEUE_NOTIFY(%rbx)     /* queue 0: an ioeventfd, no exit */
        leaq irq_count(%rip), %rdx
1:      cli
        cmpl $0, (%rdx,%r12,4)
        jne 2f
        sti
        hlt                             /* sti's shadow: no interrupt is lost between the two */
        jmp 1b
2:      ret

/* report: "<name> slot S: irqs N status N used N id N len N" (%rsi = name). */
report:
        call puts
        leaq slot_msg(%rip), %rsi
        movq %r12, %rdi
        call putfield
        leaq irqs_msg(%rip), %rsi
        leaq irq_count(%rip), %rax
        movl (%rax,%r12,4), %edi
        call putfield
        leaq isr_msg(%rip), %rsi
        leaq isr_seen(%rip), %rax
        movl (%rax,%r12,4), %edi
        call putfield
        leaq used_msg(%rip), %rsi
        movzwl Q_USED+2(%r13), %edi
        call putfield
        leaq id_msg(%rip), %rsi
        movl Q_USED+4(%r13), %edi
        call putfield
        leaq len_msg(%rip), %rsi
        movl Q_USED+8(%r13), %edi
        call putfield
        ret

/* putfield: the string at %rsi, then %rdi in decimal. */
putfield:
        pushq %rdi
        call puts
        popq %rdi
        call putdec
        ret

/* virtio-blk: read sector 0 (header, 512-byte data buffer, status byte). */
blk_request:
        movl $0, Q_HEADER(%r13)         /* type IN */
        movl $0, Q_HEADER+4(%r13)
        movq $0, Q_HEADER+8(%r13)       /* sector 0 */
        movb $0xff, Q_STATUS(%r13)
        xorl %edi, %edi
        leaq Q_HEADER(%r13), %rsi
        movl $16, %edx
        movl $DESC_NEXT, %ecx
        call desc
        movl $1, %edi
        leaq Q_DATA(%r13), %rsi
        movl $512, %edx
        movl $DESC_NEXT|DESC_WRITE, %ecx
        call desc
        movl $2, %edi
        leaq Q_STATUS(%r13), %rsi
        movl $1, %edx
        movl $DESC_WRITE, %ecx
        call desc
        call submit
        leaq blk_msg(%rip), %rsi
        call report
        leaq blk_status_msg(%rip), %rsi
        movzbl Q_STATUS(%r13), %edi
        call putfield
        movl $'\n', %edi
        call putc
        leaq sector_msg(%rip), %rsi
        call puts
        /* the sector's first line (at most 64 bytes) */
        leaq Q_DATA(%r13), %r14
        xorl %r15d, %r15d
1:      movzbl (%r14,%r15), %edi
        cmpl $'\n', %edi
        je 2f
        testl %edi, %edi
        jz 2f
        call putc
        incl %r15d
        cmpl $64, %r15d
        jne 1b
2:      movl $'\n', %edi
        call putc
        ret

/* virtio-rng: one 32-byte device-writable buffer; counts its non-zero bytes. */
rng_request:
        xorl %edi, %edi
        leaq Q_DATA(%r13), %rsi
        movl $32, %edx
        movl $DESC_WRITE, %ecx
        call desc
        call submit
        leaq rng_msg(%rip), %rsi
        call report
        xorl %ecx, %ecx
        xorl %edi, %edi
1:      cmpb $0, Q_DATA(%r13,%rcx)
        je 2f
        incl %edi
2:      incl %ecx
        cmpl $32, %ecx
        jne 1b
        xorl %eax, %eax
        testl %edi, %edi
        setnz %al
        movl %eax, %edi
        leaq random_msg(%rip), %rsi
        call putfield
        movl $'\n', %edi
        call putc
        ret

no_version_1:
        leaq no_v1_msg(%rip), %rsi
        call puts
        jmp reset
features_refused:
        leaq refused_msg(%rip), %rsi
        call puts
        jmp reset
queue_too_small:
        leaq small_msg(%rip), %rsi
        call puts
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

/* One 16-byte stub per slot: push the slot number, go to the common handler. */
        .balign 16
isr_stubs:
        .irp slot, 0, 1, 2, 3, 4, 5, 6, 7
        .balign 16
        pushq $\slot
        jmp isr_common
        .endr

/*
 * Reads the slot's InterruptStatus, acknowledges those bits, counts the interrupt if any bit was set,
 * EOI. An interrupt with nothing pending is possible and harmless with a level-triggered line whose
 * resample notification can arrive before the driver's acknowledgement (seen on nested kvm_pvm hosts,
 * which acknowledge at injection): the line is asserted once more and finds InterruptStatus 0.
 */
isr_common:
        pushq %rax
        pushq %rbx
        pushq %rcx
        movq 24(%rsp), %rax             /* slot */
        movl %eax, %ebx
        shll $12, %ebx
        addl $MMIO_BASE, %ebx
        movl INTERRUPT_STATUS(%rbx), %ecx
        movl %ecx, INTERRUPT_ACK(%rbx)
        leaq isr_seen(%rip), %rbx
        orl %ecx, (%rbx,%rax,4)
        testl %ecx, %ecx                /* nothing pending: spurious, not counted (see below) */
        jz 1f
        leaq irq_count(%rip), %rbx
        incl (%rbx,%rax,4)
1:      movl $LAPIC+0xb0, %eax
        movl $0, (%rax)                 /* EOI: KVM deasserts the GSI and signals the resample eventfd */
        popq %rcx
        popq %rbx
        popq %rax
        addq $8, %rsp
        iretq

unexpected:
        leaq unexpected_msg(%rip), %rsi
        call puts
        jmp reset

        .include "lib.inc"

        .section .rodata
blk_msg:        .asciz "virtio-blk"
rng_msg:        .asciz "virtio-rng"
slot_msg:       .asciz " slot "
irqs_msg:       .asciz ": irqs "
isr_msg:        .asciz " isr "
used_msg:       .asciz " used "
id_msg:         .asciz " id "
len_msg:        .asciz " len "
blk_status_msg: .asciz " status "
random_msg:     .asciz " random "
sector_msg:     .asciz "sector 0: "
done_msg:       .asciz "virtio done\n"
no_v1_msg:      .asciz "no VERSION_1\n"
refused_msg:    .asciz "FEATURES_OK refused\n"
small_msg:      .asciz "queue too small\n"
unexpected_msg: .asciz "unexpected interrupt\n"
idtr:   .word 256 * 16 - 1
        .quad idt

        .data
irq_count:      .fill SLOTS, 4, 0
isr_seen:       .fill SLOTS, 4, 0
        .balign 16
idt:    .fill 256 * 16, 1, 0
