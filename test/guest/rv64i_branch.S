# RV64I control transfer: BEQ/BNE/BLT/BGE/BLTU/BGEU taken and not taken (signed/unsigned edges,
# forward and backward), JAL (link value, backward, x0), JALR (offsets, odd target with bit 0
# cleared, rd == rs1, x0 link), and jumps to 2-byte-aligned targets (legal with C).
#include "common.h"

# Branch `insn` on a, b: check it is taken (taken=1) or not (taken=0).
.macro T_BR insn, a, b, taken
  li a1, \a
  li a2, \b
  li a0, 0
  \insn a1, a2, .Lbt\@
  li a0, 1
  j .Lbd\@
.Lbt\@:
  li a0, 2
.Lbd\@:
  CHECK_EQ a0, (1 + \taken)
.endm

# Same, but the target is behind the branch.
.macro T_BR_BACK insn, a, b, taken
  li a1, \a
  li a2, \b
  li a0, 0
  j .Lbb\@
.Lbt\@:
  li a0, 2
  j .Lbd\@
.Lbb\@:
  \insn a1, a2, .Lbt\@
  li a0, 1
.Lbd\@:
  CHECK_EQ a0, (1 + \taken)
.endm

TEST_BEGIN
  T_BR beq, 0, 0, 1
  T_BR beq, 1, 0, 0
  T_BR beq, -1, -1, 1
  T_BR beq, 0x100000000, 0, 0
  T_BR beq, 0x8000000000000000, 0, 0
  T_BR bne, 0, 0, 0
  T_BR bne, 1, 0, 1
  T_BR bne, 0x100000000, 0, 1
  T_BR bne, -1, -1, 0
  T_BR blt, -1, 0, 1
  T_BR blt, 0, -1, 0
  T_BR blt, 5, 5, 0
  T_BR blt, 0x8000000000000000, 0x7fffffffffffffff, 1
  T_BR blt, 0x7fffffffffffffff, 0x8000000000000000, 0
  T_BR blt, 0xffffffff, 0x100000000, 1
  T_BR bge, 0, -1, 1
  T_BR bge, -1, 0, 0
  T_BR bge, 5, 5, 1
  T_BR bge, 0x7fffffffffffffff, 0x8000000000000000, 1
  T_BR bge, 0x8000000000000000, 0x7fffffffffffffff, 0
  T_BR bltu, 0, -1, 1
  T_BR bltu, -1, 0, 0
  T_BR bltu, 5, 5, 0
  T_BR bltu, 0x7fffffffffffffff, 0x8000000000000000, 1
  T_BR bltu, 0x8000000000000000, 0x7fffffffffffffff, 0
  T_BR bgeu, -1, 0, 1
  T_BR bgeu, 0, -1, 0
  T_BR bgeu, 5, 5, 1
  T_BR bgeu, 0x8000000000000000, 0x7fffffffffffffff, 1
  T_BR bgeu, 0xffffffff, 0x100000000, 0
  T_BR_BACK beq, 3, 3, 1
  T_BR_BACK beq, 3, 4, 0
  T_BR_BACK bne, 3, 4, 1
  T_BR_BACK blt, -3, 4, 1
  T_BR_BACK bge, -3, 4, 0
  T_BR_BACK bltu, -3, 4, 0
  T_BR_BACK bgeu, -3, 4, 1

  # A counted backward loop: 10 iterations.
  li a0, 0
  li a1, 10
1:
  addi a0, a0, 3
  addi a1, a1, -1
  bnez a1, 1b
  CHECK_EQ a0, 30

  # ---- JAL ----
  li a0, 0
  jal ra, 2f
jal_ret1:
  li a0, 99                  # must be skipped
2:
  la a1, jal_ret1
  CHECK_REGS ra, a1
  CHECK_EQ a0, 0
  # backward JAL with a link in another register
  j 4f
3:
  li a0, 0x33
  j 5f
4:
  jal s1, 3b
jal_ret2:
5:
  CHECK_EQ a0, 0x33
  la a1, jal_ret2
  CHECK_REGS s1, a1
  # JAL x0 (plain jump) leaves registers alone
  li ra, 0x1234
  jal x0, 6f
  li ra, 0
6:
  CHECK_EQ ra, 0x1234

  # ---- JALR ----
  la a1, jalr_t1
  li a0, 0
  jalr ra, 0(a1)
jalr_ret1:
  li a0, 0x77                # must be skipped
jalr_t1:
  CHECK_EQ a0, 0
  la a1, jalr_ret1
  CHECK_REGS ra, a1
  # positive and negative offsets
  la a1, jalr_t2 - 0x100
  jalr ra, 0x100(a1)
  li a0, 0x55
jalr_t2:
  CHECK_EQ a0, 0
  la a1, jalr_t3 + 0x7f0
  jalr ra, -0x7f0(a1)
  li a0, 0x56
jalr_t3:
  CHECK_EQ a0, 0
  # odd target: bit 0 of the sum is cleared
  la a1, jalr_t4
  addi a1, a1, 1
  jalr ra, 0(a1)
  li a0, 0x57
jalr_t4:
  CHECK_EQ a0, 0
  la a1, jalr_t5 - 1
  jalr ra, 2(a1)             # (t5 - 1) + 2 = t5 + 1 -> t5
  li a0, 0x58
jalr_t5:
  CHECK_EQ a0, 0
  # rd == rs1: the target uses the old value, rd gets the link
  la s1, jalr_t6
  jalr s1, 0(s1)
jalr_ret6:
  li a0, 0x59
jalr_t6:
  CHECK_EQ a0, 0
  la a1, jalr_ret6
  CHECK_REGS s1, a1
  # jalr x0 (no link), a called subroutine returning via ret
  li ra, 0x4321
  la a1, jalr_t7
  jalr x0, 0(a1)
  li a0, 0x5a
jalr_t7:
  CHECK_EQ ra, 0x4321
  CHECK_EQ a0, 0
  li a0, 5
  call double_it
  CHECK_EQ a0, 10
  call double_it
  CHECK_EQ a0, 20

  # ---- 2-byte-aligned targets (legal because C is implemented) ----
  la a1, half_target
  andi a2, a1, 3
  CHECK_EQ a2, 2
  li a0, 0
  jalr ra, 0(a1)
half_ret:
  CHECK_EQ a0, 0x61
  la a1, half_ret
  CHECK_REGS ra, a1
  li a0, 0
  jal ra, half_target
  CHECK_EQ a0, 0x61
  li a0, 1
  beqz zero, half_target2
  li a0, 0x62
half_back:
  CHECK_EQ a0, 0x63
  j branch_done

  .balign 4
  .option push
  .option rvc
  c.nop
  .option pop
half_target:
  li a0, 0x61
  ret
half_target2:                # still at 2 mod 4

  li a0, 0x63
  j half_back

double_it:
  add a0, a0, a0
  ret
branch_done:
TEST_END
