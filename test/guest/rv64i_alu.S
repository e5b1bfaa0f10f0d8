# RV64I integer computation: every register-register, register-immediate and *W operation,
# shifts with edge amounts (0, 31, 32, 63, and amounts >= XLEN which use the low bits only),
# LUI/AUIPC, register aliasing, and writes to x0 being discarded.
#include "common.h"

.macro T_RR insn, exp, a, b
  li a1, \a
  li a2, \b
  \insn a0, a1, a2
  CHECK_EQ a0, \exp
.endm

.macro T_RI insn, exp, a, imm
  li a1, \a
  \insn a0, a1, \imm
  CHECK_EQ a0, \exp
.endm

TEST_BEGIN
  # ---- ADD / SUB ----
  T_RR add, 0, 0, 0
  T_RR add, 2, 1, 1
  T_RR add, 0x8000000000000000, 0x7fffffffffffffff, 1
  T_RR add, 0xfffffffffffffffe, -1, -1
  T_RR add, 0, 0xffffffffffffffff, 1
  T_RR add, 0x0000000100000000, 0xffffffff, 1
  T_RR sub, 0xffffffffffffffff, 0, 1
  T_RR sub, 0x7fffffffffffffff, 0x8000000000000000, 1
  T_RR sub, 2, 5, 3
  T_RR sub, 0x8000000000000000, 0, 0x8000000000000000
  # ---- ADDI ----
  T_RI addi, 0x8000000000000000, 0x7fffffffffffffff, 1
  T_RI addi, 0x7fe, -1, 0x7ff
  T_RI addi, 0xfffffffffffff800, 0, -2048
  T_RI addi, 0x00000000fffff800, 0x100000000, -2048
  # ---- SLT / SLTU / SLTI / SLTIU ----
  T_RR slt, 1, -1, 1
  T_RR slt, 0, 1, -1
  T_RR slt, 0, 7, 7
  T_RR slt, 1, 0x8000000000000000, 0x7fffffffffffffff
  T_RR slt, 0, 0x7fffffffffffffff, 0x8000000000000000
  T_RR sltu, 0, -1, 1
  T_RR sltu, 1, 1, -1
  T_RR sltu, 0, 0, 0
  T_RR sltu, 1, 0x7fffffffffffffff, 0x8000000000000000
  T_RI slti, 1, -1, 0
  T_RI slti, 0, 0, -2048
  T_RI slti, 1, -2049, -2048
  T_RI slti, 0, 0x7ff, 0x7ff
  T_RI slti, 1, 0x8000000000000000, 0
  T_RI sltiu, 1, 5, -1
  T_RI sltiu, 1, 0, 1
  T_RI sltiu, 0, 1, 1
  T_RI sltiu, 0, -1, -1
  T_RI sltiu, 1, 0xfffffffffffff7ff, -2048
  # ---- AND / OR / XOR and immediates ----
  T_RR and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0
  T_RR or,  0xfff0fff0fff0fff0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0
  T_RR xor, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0
  T_RI andi, 0xff00ff00ff00f800, 0xff00ff00ff00ff00, -2048
  T_RI andi, 0x0000000000000700, 0xff00ff00ff00ff00, 0x7f0
  T_RI ori,  0xff00ff00ff00fff0, 0xff00ff00ff00ff00, 0x0f0
  T_RI ori,  0xfffffffffffff80f, 0x000000000000000f, -2048
  T_RI xori, 0x00ff00ff00ff00ff, 0xff00ff00ff00ff00, -1
  T_RI xori, 0xff00ff00ff00fff0, 0xff00ff00ff00ff0f, 0x0ff
  # ---- SLL / SRL / SRA (shift amount = low 6 bits of rs2) ----
  T_RR sll, 1, 1, 0
  T_RR sll, 2, 1, 1
  T_RR sll, 0x0000000080000000, 1, 31
  T_RR sll, 0x0000000100000000, 1, 32
  T_RR sll, 0x8000000000000000, 1, 63
  T_RR sll, 1, 1, 64
  T_RR sll, 2, 1, 65
  T_RR sll, 0xffffffff00000000, -1, 32
  T_RR sll, 0x8000000000000000, 0x21, 0xffffffffffffffff
  T_RR srl, 1, 0x8000000000000000, 63
  T_RR srl, 0x8000000000000000, 0x8000000000000000, 0
  T_RR srl, 0x7fffffffffffffff, -1, 1
  T_RR srl, 0x00000000ffffffff, -1, 32
  T_RR srl, 0x0800000000000000, 0x8000000000000000, 68
  T_RR srl, 1, 0xffffffffffffffff, -1
  T_RR sra, 0xffffffffffffffff, 0x8000000000000000, 63
  T_RR sra, 0xc000000000000000, 0x8000000000000000, 1
  T_RR sra, 1, 0x7fffffffffffffff, 62
  T_RR sra, 0xffffffff80000000, 0x8000000000000000, 32
  T_RR sra, 0x8000000000000000, 0x8000000000000000, 64
  T_RR sra, 0x0000000000000001, 0x4000000000000000, 0xfe
  T_RI slli, 0x0123456789abcdef, 0x0123456789abcdef, 0
  T_RI slli, 0x2468acf13579bde0, 0x123456789abcdef0, 1
  T_RI slli, 0xc4d5e6f780000000, 0x0123456789abcdef, 31
  T_RI slli, 0x89abcdef00000000, 0x0123456789abcdef, 32
  T_RI slli, 0x8000000000000000, 0x0123456789abcdef, 63
  T_RI srli, 0x0123456789abcdef, 0x0123456789abcdef, 0
  T_RI srli, 0x7fffffffffffffff, 0xffffffffffffffff, 1
  T_RI srli, 0x00000001ffffffff, 0xffffffffffffffff, 31
  T_RI srli, 0x00000000ffffffff, 0xffffffffffffffff, 32
  T_RI srli, 1, 0xffffffffffffffff, 63
  T_RI srai, 0x8123456789abcdef, 0x8123456789abcdef, 0
  T_RI srai, 0xc091a2b3c4d5e6f7, 0x8123456789abcdef, 1
  T_RI srai, 0xffffffff02468acf, 0x8123456789abcdef, 31
  T_RI srai, 0xffffffff81234567, 0x8123456789abcdef, 32
  T_RI srai, 0xffffffffffffffff, 0x8123456789abcdef, 63
  T_RI srai, 0, 0x7123456789abcdef, 63
  # ---- W forms: 32-bit result, sign-extended; upper input bits ignored ----
  T_RR addw, 0xffffffff80000000, 0x7fffffff, 1
  T_RR addw, 0, 0xffffffff, 1
  T_RR addw, 0x23456789, 0x123456789, 0
  T_RR addw, 0xfffffffffffffffe, -1, -1
  T_RR addw, 0x7fffffff, 0xffffffff80000000, -1
  T_RR subw, 0xffffffff80000000, 0, 0x80000000
  T_RR subw, 0x7fffffff, 0x80000000, 1
  T_RR subw, 0, 0x1ffffffff, 0xffffffff
  T_RI addiw, 0xffffffff80000000, 0x7fffffff, 1
  T_RI addiw, 0xffffffffffffffff, 0x00000000ffffffff, 0
  T_RI addiw, 0xffffffff80000000, 0x180000000, 0
  T_RI addiw, 0x000000007ffff800, 0xfffffffffffff800 + 0x80000000, 0
  T_RI addiw, 0x7fffffff, 0x80000000, -1
  T_RI addiw, 0xfffffffffffff800, 0x100000000, -2048
  T_RR sllw, 0xffffffff80000000, 1, 31
  T_RR sllw, 1, 1, 32
  T_RR sllw, 0xffffffffffff0000, 0xffffffff, 16
  T_RR sllw, 0x12345678, 0xabcdef0012345678, 0
  T_RR sllw, 0x00000000, 0x80000000, 1
  T_RR srlw, 1, 0xffffffff80000000, 31
  T_RR srlw, 0xffffffff80000000, 0x80000000, 0
  T_RR srlw, 0x7fffffff, 0xffffffff, 1
  T_RR srlw, 0x7fffffff, 0xffffffff, 33
  T_RR srlw, 0x00000000, 0xffffffff00000000, 4
  T_RR sraw, 0xffffffffffffffff, 0x80000000, 31
  T_RR sraw, 1, 0x7fffffff, 30
  T_RR sraw, 0, 0x100000000, 0
  T_RR sraw, 0xfffffffff8000000, 0x80000000, 36
  T_RR sraw, 0x07ffffff, 0xffffffff7fffffff, 4
  T_RI slliw, 0xffffffff80000000, 1, 31
  T_RI slliw, 0x12345678, 0xabcdef0012345678, 0
  T_RI slliw, 0xffffffffabcdef00, 0x12345678abcdef, 8
  T_RI srliw, 1, 0x80000000, 31
  T_RI srliw, 0xffffffff80000000, 0x0000000180000000, 0
  T_RI srliw, 0x00ffffff, 0xffffffffffffffff, 8
  T_RI sraiw, 0xffffffffffffffff, 0x80000000, 31
  T_RI sraiw, 0xffffffffff800000, 0x80000000, 8
  T_RI sraiw, 0x00000000007fffff, 0x7fffffff, 8
  T_RI sraiw, 0x0000000012345678, 0xffffffff12345678, 0
  # ---- LUI / AUIPC ----
  lui a0, 0x80000
  CHECK_EQ a0, 0xffffffff80000000
  lui a0, 0x7ffff
  CHECK_EQ a0, 0x7ffff000
  lui a0, 0xfffff
  CHECK_EQ a0, 0xfffffffffffff000
  lui a0, 0
  CHECK_EQ a0, 0
  lui a0, 0x12345
  CHECK_EQ a0, 0x12345000
1:
  auipc a0, 0
  la a1, 1b
  CHECK_REGS a0, a1
2:
  auipc a0, 1
  la a1, 2b
  li a2, 0x1000
  add a1, a1, a2
  CHECK_REGS a0, a1
3:
  auipc a0, 0x80000          # pc - 0x80000000 (sign-extended offset)
  la a1, 3b
  li a2, 0xffffffff80000000
  add a1, a1, a2
  CHECK_REGS a0, a1
4:
  auipc a0, 0xfffff          # pc - 0x1000
  la a1, 4b
  addi a1, a1, -2048
  addi a1, a1, -2048
  CHECK_REGS a0, a1
  # ---- Aliasing rd == rs1 == rs2 ----
  li a1, 21
  add a1, a1, a1
  CHECK_EQ a1, 42
  li a1, 5
  sub a1, a1, a1
  CHECK_EQ a1, 0
  li a1, 3
  sll a1, a1, a1
  CHECK_EQ a1, 24
  li a1, 0x10
  addi a1, a1, 1
  CHECK_EQ a1, 0x11
  li a1, -1
  li a2, 4
  srl a2, a1, a2
  CHECK_EQ a2, 0x0fffffffffffffff
  # ---- x0 is hard-wired to zero ----
  addi x0, x0, 5
  mv a0, x0
  CHECK_EQ a0, 0
  li a1, 7
  li a2, 9
  add x0, a1, a2
  add a0, x0, x0
  CHECK_EQ a0, 0
  lui x0, 0x12345
  auipc x0, 1
  or a0, x0, zero
  CHECK_EQ a0, 0
  addi a0, x0, -1
  CHECK_EQ a0, -1
  sub a0, x0, a1
  CHECK_EQ a0, -7
  nop
  slli x0, a1, 3
  sltu a0, x0, a1               # snez
  CHECK_EQ a0, 1
  sltu a0, x0, x0
  CHECK_EQ a0, 0
TEST_END
