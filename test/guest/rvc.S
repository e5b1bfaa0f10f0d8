# RV64C: every compressed instruction (Q0: C.ADDI4SPN C.FLD C.LW C.LD C.FSD C.SW C.SD;
# Q1: C.NOP C.ADDI C.ADDIW C.LI C.ADDI16SP C.LUI C.SRLI C.SRAI C.ANDI C.SUB C.XOR C.OR C.AND
# C.SUBW C.ADDW C.J C.BEQZ C.BNEZ; Q2: C.SLLI C.FLDSP C.LWSP C.LDSP C.JR C.MV C.EBREAK C.JALR
# C.ADD C.FSDSP C.SWSP C.SDSP), immediate edges, C.JALR linking pc+2, 32-bit instructions at
# 2-byte-aligned addresses, and the illegal encodings C.UNIMP (0x0000) and C.ADDI4SPN with 0.
#include "common.h"

TEST_BEGIN
  .option rvc
  mv s11, sp
  # ---- constants and immediates ----
  c.li a0, -32
  CHECK_EQ a0, -32
  c.li a0, 31
  CHECK_EQ a0, 31
  c.lui a1, 1
  CHECK_EQ a1, 0x1000
  c.lui a1, 31
  CHECK_EQ a1, 0x1f000
  c.lui a1, 0xfffe0
  CHECK_EQ a1, 0xfffffffffffe0000
  c.lui a1, 0xfffff
  CHECK_EQ a1, 0xfffffffffffff000
  li a0, 100
  c.addi a0, -32
  CHECK_EQ a0, 68
  c.addi a0, 31
  CHECK_EQ a0, 99
  c.nop
  li a0, 0x80000000
  c.addiw a0, -1
  CHECK_EQ a0, 0x7fffffff
  li a0, 0x7fffffff
  c.addiw a0, 1
  CHECK_EQ a0, 0xffffffff80000000
  li a0, 0x1ffffffff
  c.addiw a0, 0
  CHECK_EQ a0, -1
  # ---- stack-pointer adjustments ----
  c.addi16sp sp, -512
  addi a0, s11, -512
  CHECK_REGS sp, a0
  c.addi16sp sp, 496
  addi a0, s11, -16
  CHECK_REGS sp, a0
  c.addi16sp sp, 16
  CHECK_REGS sp, s11
  c.addi4spn a0, sp, 4
  addi a1, sp, 4
  CHECK_REGS a0, a1
  c.addi4spn s1, sp, 1020
  addi a1, sp, 1020
  CHECK_REGS s1, a1
  # ---- shifts and logic ----
  li a0, 1
  c.slli a0, 63
  CHECK_EQ a0, 0x8000000000000000
  li a0, 0x0123456789abcdef
  c.slli a0, 4
  CHECK_EQ a0, 0x123456789abcdef0
  li s0, 0x8000000000000000
  c.srli s0, 63
  CHECK_EQ s0, 1
  li s0, 0x8000000000000000
  c.srai s0, 1
  CHECK_EQ s0, 0xc000000000000000
  li s0, 0x8000000000000000
  c.srai s0, 63
  CHECK_EQ s0, -1
  li a5, 0xffffffffffff00ff
  c.srli a5, 32
  CHECK_EQ a5, 0xffffffff
  li s0, 0x12345
  c.andi s0, -32
  CHECK_EQ s0, 0x12340
  li s0, 0x12345
  c.andi s0, 31
  CHECK_EQ s0, 0x5
  li a1, 0x1234
  c.mv a0, a1
  CHECK_EQ a0, 0x1234
  li a0, 5
  li a1, -7
  c.add a0, a1
  CHECK_EQ a0, -2
  li s0, 5
  li s1, 7
  c.sub s0, s1
  CHECK_EQ s0, -2
  li s0, 0xff00ff00
  li s1, 0x0ff00ff0
  c.xor s0, s1
  CHECK_EQ s0, 0xf0f0f0f0
  li s0, 0xff00ff00
  c.or s0, s1
  CHECK_EQ s0, 0xfff0fff0
  li s0, 0xff00ff00
  c.and s0, s1
  CHECK_EQ s0, 0x0f000f00
  li a2, 0
  li a3, 0x80000000
  c.subw a2, a3
  CHECK_EQ a2, 0xffffffff80000000
  li a2, 0x7fffffff
  li a3, 0x100000001
  c.addw a2, a3
  CHECK_EQ a2, 0xffffffff80000000
  # ---- loads and stores ----
  la s0, cbuf
  li a1, 0x80000001
  c.sw a1, 4(s0)
  c.lw a2, 4(s0)
  CHECK_EQ a2, 0xffffffff80000001
  li a1, 0x1122334455667788
  c.sd a1, 248(s0)
  c.ld a3, 248(s0)
  CHECK_EQ a3, 0x1122334455667788
  c.lw a4, 124(s0)
  CHECK_EQ a4, 0
  li a1, -1
  c.sw a1, 124(s0)
  c.lw a4, 124(s0)
  CHECK_EQ a4, -1
  li a1, 0x4008000000000000
  fmv.d.x fa0, a1
  c.fsd fa0, 16(s0)
  c.fld fa1, 16(s0)
  CHECK_FD fa1, 0x4008000000000000
  ld a0, 16(s0)
  CHECK_EQ a0, 0x4008000000000000
  # sp-relative
  mv s10, sp
  la sp, cbuf + 0x100
  li a1, 0xfedcba9876543210
  c.sdsp a1, 504(sp)
  c.ldsp a5, 504(sp)
  CHECK_EQ a5, 0xfedcba9876543210
  c.swsp a1, 252(sp)
  c.lwsp a5, 252(sp)
  CHECK_EQ a5, 0x76543210
  li a1, 0x98765432
  c.swsp a1, 0(sp)
  c.lwsp a5, 0(sp)
  CHECK_EQ a5, 0xffffffff98765432
  c.fsdsp fa0, 8(sp)
  c.fldsp ft0, 8(sp)
  CHECK_FD ft0, 0x4008000000000000
  c.ldsp a5, 8(sp)
  CHECK_EQ a5, 0x4008000000000000
  mv sp, s10
  # ---- control transfer ----
  li a0, 0
  c.j 1f
  li a0, 1
1:
  CHECK_EQ a0, 0
  c.j 3f
2:
  li a0, 0x22
  c.j 4f
3:
  c.j 2b
4:
  CHECK_EQ a0, 0x22
  li s0, 0
  li a0, 0
  c.beqz s0, 5f
  li a0, 1
5:
  CHECK_EQ a0, 0
  li s0, 1
  c.beqz s0, 6f
  li a0, 2
6:
  CHECK_EQ a0, 2
  c.bnez s0, 7f
  li a0, 3
7:
  CHECK_EQ a0, 2
  li s0, 0
  c.bnez s0, 8f
  li a0, 4
8:
  CHECK_EQ a0, 4
  # c.jr / c.jalr
  la a1, cj_target
  li a0, 0
  c.jr a1
  li a0, 1
cj_target:
  CHECK_EQ a0, 0
  la a1, sub_double
  li a0, 21
cjalr_at:
  c.jalr a1
cjalr_ret:
  CHECK_EQ a0, 42
  la a2, cjalr_at + 2
  CHECK_REGS ra, a2
  la a2, cjalr_ret
  CHECK_REGS ra, a2
  # a 32-bit instruction at a 2 mod 4 address
  .balign 4
  c.nop
odd_insn:
  li a0, 0x345
  la a1, odd_insn
  andi a1, a1, 3
  CHECK_EQ a1, 2
  CHECK_EQ a0, 0x345
  # ---- C.EBREAK ----
  EXPECT_TRAP_M CAUSE_BREAKPOINT, c.ebreak
  # ---- illegal compressed encodings ----
  EXPECT_TRAP_M CAUSE_ILLEGAL, c.unimp
  CHECK_CSR mtval, 0
  la tp, 9f
10:
  .half 0x0004                 # C.ADDI4SPN x9, sp, 0: reserved
  FAIL_NOW
9:
  li tp, 0
  CHECK_CSR mcause, CAUSE_ILLEGAL
  csrr a0, mepc
  la a1, 10b
  CHECK_REGS a0, a1
  csrr a0, mtval                # 0 or the 16 instruction bits
  beqz a0, 11f
  CHECK_EQ a0, 0x0004
11:
  .option norvc
  j rvc_done

  .option rvc
sub_double:
  c.add a0, a0
  c.jr ra
  .option norvc

rvc_done:
  .data
  .balign 16
cbuf:
  .skip 1024
  .text
TEST_END
