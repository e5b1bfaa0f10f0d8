# RV64I loads and stores: LB/LH/LW/LD/LBU/LHU/LWU sign and zero extension with positive and
# negative offsets, SB/SH/SW/SD byte-exact effects, misaligned loads and stores (no trap,
# also across a page boundary), loads into x0, rd == base, and every FENCE form.
#include "common.h"

.macro T_LD insn, exp, off, base=s0
  \insn a0, \off(\base)
  CHECK_EQ a0, \exp
.endm

TEST_BEGIN
  la s0, ldata
  # ---- aligned loads, sign / zero extension ----
  T_LD lb,  0xffffffffffffff81, 0
  T_LD lbu, 0x81, 0
  T_LD lb,  0x13, 2
  T_LD lbu, 0x13, 2
  T_LD lb,  0xffffffffffffffef, 8
  T_LD lb,  0x01, 15
  T_LD lbu, 0xa8, 7
  T_LD lh,  0xfffffffffffff281, 0
  T_LD lhu, 0xf281, 0
  T_LD lh,  0xffffffffffff8413, 2
  T_LD lhu, 0x8413, 2
  T_LD lh,  0x0123, 14
  T_LD lhu, 0x0123, 14
  T_LD lh,  0xffffffffffffcdef, 8
  T_LD lw,  0xffffffff8413f281, 0
  T_LD lwu, 0x8413f281, 0
  T_LD lw,  0xffffffffa8379625, 4
  T_LD lw,  0x01234567, 12
  T_LD lwu, 0x01234567, 12
  T_LD lw,  0xffffffff89abcdef, 8
  T_LD lwu, 0x89abcdef, 8
  T_LD ld,  0xa83796258413f281, 0
  T_LD ld,  0x0123456789abcdef, 8
  # negative offsets
  addi s1, s0, 16
  T_LD lw,  0x01234567, -4, s1
  T_LD ld,  0xa83796258413f281, -16, s1
  T_LD lb,  0xffffffffffffffa8, -9, s1
  addi s1, s0, 2047
  addi s1, s1, 1
  T_LD ld,  0x0123456789abcdef, -2040, s1
  # rd == base
  mv a1, s0
  ld a1, 8(a1)
  CHECK_EQ a1, 0x0123456789abcdef
  # load into x0 is discarded
  ld x0, 0(s0)
  lb x0, 0(s0)
  mv a0, x0
  CHECK_EQ a0, 0

  # ---- misaligned loads ----
  T_LD ld,  0xefa83796258413f2, 1
  T_LD ld,  0x23456789abcdefa8, 7
  T_LD lw,  0x37962584, 3
  T_LD lw,  0xffffffffcdefa837, 6
  T_LD lwu, 0xefa83796, 5
  T_LD lh,  0xffffffffffffefa8, 7
  T_LD lhu, 0x13f2, 1
  T_LD lhu, 0xefa8, 7

  # ---- stores ----
  la s1, sbuf
  sd zero, 0(s1)
  sd zero, 8(s1)
  sd zero, 16(s1)
  sd zero, 24(s1)
  sd zero, 32(s1)
  sd zero, 40(s1)
  li a1, 0x12345678abcdef99
  sb a1, 3(s1)
  T_LD ld, 0x0000000099000000, 0, s1
  li a1, 0x1111111122334455
  sh a1, 6(s1)
  T_LD ld, 0x4455000099000000, 0, s1
  li a1, 0xffffffff11223344
  sw a1, 8(s1)
  T_LD ld, 0x0000000011223344, 8, s1
  sw a1, 12(s1)
  T_LD ld, 0x1122334411223344, 8, s1
  li a1, 0x8877665544332211
  sd a1, 16(s1)
  T_LD ld, 0x8877665544332211, 16, s1
  addi s2, s1, 24
  li a1, 0xfe
  sb a1, -1(s2)
  T_LD ld, 0xfe77665544332211, 16, s1
  # misaligned stores
  li a1, 0x0102030405060708
  sd a1, 25(s1)
  T_LD ld, 0x0203040506070800, 24, s1
  T_LD ld, 0x0000000000000001, 32, s1
  li a1, 0xaabbccdd
  sw a1, 38(s1)
  T_LD ld, 0xccdd000000000001, 32, s1
  T_LD ld, 0x000000000000aabb, 40, s1
  li a1, 0x5a6b
  sh a1, 35(s1)
  T_LD ld, 0xccdd005a6b000001, 32, s1
  # store of x0
  sd x0, 32(s1)
  T_LD ld, 0, 32, s1

  # ---- misaligned accesses across a page boundary ----
  la s2, pagebuf + 4096
  sd zero, -8(s2)
  sd zero, 0(s2)
  li a1, 0x1122334455667788
  sd a1, -3(s2)
  T_LD ld, 0x1122334455667788, -3, s2
  T_LD ld, 0x6677880000000000, -8, s2
  T_LD ld, 0x0000001122334455, 0, s2
  T_LD lbu, 0x66, -1, s2
  T_LD lbu, 0x55, 0, s2
  T_LD lw, 0x44556677, -2, s2
  T_LD lwu, 0x55667788, -3, s2
  T_LD lh, 0x5566, -1, s2
  li a1, 0xdeadbeef
  sw a1, -1(s2)
  T_LD ld, 0x0000001122deadbe, 0, s2
  T_LD lbu, 0xef, -1, s2
  T_LD lwu, 0xdeadbeef, -1, s2
  li a1, 0x9abc
  sh a1, -1(s2)
  T_LD lhu, 0x9abc, -1, s2
  T_LD lw, 0xffffffffdead9abc, -1, s2

  # ---- FENCE forms (must execute as no-ops here) ----
  li a1, 0x77
  sd a1, 0(s1)
  fence
  fence rw, rw
  fence r, r
  fence w, w
  fence r, rw
  fence rw, w
  fence i, o
  fence iorw, iorw
  fence.tso
  .word 0x0100000f           # PAUSE hint (fence w, 0)
  ld a0, 0(s1)
  CHECK_EQ a0, 0x77

  .data
  .balign 16
ldata:
  .byte 0x81, 0xf2, 0x13, 0x84, 0x25, 0x96, 0x37, 0xa8
  .dword 0x0123456789abcdef
  .balign 16
sbuf:
  .skip 64
  .balign 4096
pagebuf:
  .skip 8192
  .text
TEST_END
