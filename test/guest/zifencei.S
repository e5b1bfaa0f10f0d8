# Zifencei: self-modifying code. An instruction of a function that has already run (many times)
# is overwritten with a store, FENCE.I is executed, and the new instruction must run; also a code
# buffer written from scratch (32-bit and compressed instructions) and a patch to an instruction
# in the same page as the patching code.
#include "common.h"

#define ADDI_A0_ZERO(imm) ((((imm) & 0xfff) << 20) | 0x513)
#define ADDI_A0_A0(imm)   ((((imm) & 0xfff) << 20) | 0x50513)
#define RET               0x00008067

TEST_BEGIN
  call smc_slot
  CHECK_EQ a0, 1
  # run it often enough to be "hot"
  li s1, 200
1:
  call smc_slot
  addi s1, s1, -1
  bnez s1, 1b
  CHECK_EQ a0, 1
  la s0, smc_slot
  li a1, ADDI_A0_ZERO(2)
  sw a1, 0(s0)
  fence.i
  call smc_slot
  CHECK_EQ a0, 2
  # patch repeatedly: value k for k = 3..20
  li s1, 3
2:
  slli a1, s1, 20
  ori a1, a1, 0x513
  sw a1, 0(s0)
  fence.i
  call smc_slot
  bne a0, s1, 3f
  addi s1, s1, 1
  li a2, 21
  blt s1, a2, 2b
3:
  CHECK_EQ s1, 21
  # patch the second instruction (the ret) into "addi a0, a0, 100; ret" continuing below
  li a1, ADDI_A0_A0(100)
  sw a1, 4(s0)
  li a1, RET
  sw a1, 8(s0)
  fence.i
  call smc_slot
  CHECK_EQ a0, 120
  # a patch very close to the executing code (same page)
  li a1, ADDI_A0_ZERO(0x55)
  la a2, near_patch
  sw a1, 0(a2)
  fence.i
near_patch:
  li a0, 0x11
  CHECK_EQ a0, 0x55

  # ---- code written from scratch into a data buffer ----
  la s2, code_buf
  li a1, ADDI_A0_A0(5)
  sw a1, 0(s2)
  li a1, ADDI_A0_A0(-3)
  sw a1, 4(s2)
  li a1, RET
  sw a1, 8(s2)
  fence.i
  li a0, 10
  jalr ra, 0(s2)
  CHECK_EQ a0, 12
  # replace with compressed code: c.li a0, 7 ; c.addi a0, 1 ; c.jr ra
  li a1, 0x451d
  sh a1, 0(s2)
  li a1, 0x0505
  sh a1, 2(s2)
  li a1, 0x8082
  sh a1, 4(s2)
  fence.i
  li a0, 0
  jalr ra, 0(s2)
  CHECK_EQ a0, 8
  # byte-wise patch of one immediate: c.li a0, 7 -> c.li a0, 9 (low byte 0x1d -> 0x25)
  li a1, 0x25
  sb a1, 0(s2)
  fence.i
  jalr ra, 0(s2)
  CHECK_EQ a0, 10
  j zifencei_done

  .balign 16
smc_slot:
  li a0, 1
  ret
  nop
  nop

zifencei_done:
  .data
  .balign 64
code_buf:
  .skip 64
  .text
TEST_END
