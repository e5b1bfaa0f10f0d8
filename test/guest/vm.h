/*
 * Page-table helpers for the vm_* guest programs (include after common.h).
 *
 * VM_LIB emits:
 *   vm_init  (a0 = number of levels: 3 = Sv39, 4 = Sv48): zero the table pool, set the root
 *   vm_map   (a0 = va, a1 = pa, a2 = PTE flags, a3 = leaf level 0..3): install a leaf PTE,
 *            allocating intermediate tables; returns a0 = physical address of the leaf PTE.
 *   vm_root  (.data dword): physical address of the root table.
 * Clobbers t0-t5.
 */
#ifndef VIREO_GUEST_VM_H
#define VIREO_GUEST_VM_H

#define VM_POOL_PAGES 24

#ifdef __ASSEMBLER__

.macro VM_LIB
  .text
vm_init:
  la t0, vm_levels
  sd a0, 0(t0)
  la t1, vm_pool
  la t0, vm_root
  sd t1, 0(t0)
  li t2, 4096
  add t2, t1, t2
  la t0, vm_next
  sd t2, 0(t0)
  li t2, (VM_POOL_PAGES * 4096)
  add t2, t1, t2
1:
  sd zero, 0(t1)
  addi t1, t1, 8
  bltu t1, t2, 1b
  ret

vm_map:
  ld t0, vm_root
  ld t1, vm_levels
  addi t1, t1, -1               /* t1 = current level */
1:
  li t2, 9
  mul t2, t2, t1
  addi t2, t2, 12
  srl t3, a0, t2
  andi t3, t3, 511
  slli t3, t3, 3
  add t3, t0, t3                /* t3 = address of the PTE at this level */
  beq t1, a3, 3f
  ld t4, 0(t3)
  andi t5, t4, PTE_V
  bnez t5, 2f
  la t5, vm_next                /* allocate a new (zeroed) table */
  ld t4, 0(t5)
  li t2, 4096
  add t2, t4, t2
  sd t2, 0(t5)
  srli t4, t4, 12
  slli t4, t4, 10
  ori t4, t4, PTE_V
  sd t4, 0(t3)
2:
  srli t0, t4, 10
  slli t0, t0, 12
  addi t1, t1, -1
  j 1b
3:
  srli t5, a1, 12
  slli t5, t5, 10
  or t5, t5, a2
  sd t5, 0(t3)
  mv a0, t3
  ret

  .data
  .balign 8
vm_levels: .dword 0
vm_root:   .dword 0
vm_next:   .dword 0
  .bss
  .balign 4096
vm_pool:
  .skip (VM_POOL_PAGES * 4096)
  .text
.endm

/* Map va -> pa with flags at leaf level; stores the PTE address into the dword `var` if given. */
.macro MAP va, pa, flags, level, var=
  li a0, \va
  li a1, \pa
  li a2, \flags
  li a3, \level
  call vm_map
  .ifnb \var
  la t0, \var
  sd a0, 0(t0)
  .endif
.endm

/* Same, with the physical address taken from a symbol. */
.macro MAP_SYM va, sym, flags, level, var=
  li a0, \va
  la a1, \sym
  li a2, \flags
  li a3, \level
  call vm_map
  .ifnb \var
  la t0, \var
  sd a0, 0(t0)
  .endif
.endm

#endif /* __ASSEMBLER__ */
#endif /* VIREO_GUEST_VM_H */
