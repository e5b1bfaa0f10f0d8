# RV64M: MUL/MULH/MULHSU/MULHU/MULW, DIV/DIVU/REM/REMU and DIVW/DIVUW/REMW/REMUW, including
# signed/unsigned high products, division by zero, signed overflow, truncation toward zero,
# sign extension of W results and upper input bits ignored by W forms.
#include "common.h"

.macro T_RR insn, exp, a, b
  li a1, \a
  li a2, \b
  \insn a0, a1, a2
  CHECK_EQ a0, \exp
.endm

TEST_BEGIN
  T_RR mul, 21, 3, 7
  T_RR mul, 1, -1, -1
  T_RR mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 2
  T_RR mul, 0x8000000000000000, 0x8000000000000000, -1
  T_RR mul, 0x123456789abcdef0, 0x0123456789abcdef, 0x10
  T_RR mul, 0x2236d88fe5618cf0, 0x0123456789abcdef, 0xfedcba9876543210
  T_RR mul, 0, 0, -1
  T_RR mulh, 0, -1, -1
  T_RR mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000
  T_RR mulh, 0xffffffffffffffff, -1, 1
  T_RR mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff
  T_RR mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff
  T_RR mulh, 0xfffeb49923cc0953, 0x0123456789abcdef, 0xfedcba9876543210
  T_RR mulh, 0, 5, 7
  T_RR mulhsu, 0xffffffffffffffff, -1, -1
  T_RR mulhsu, 0xffffffffffffffff, -1, 1
  T_RR mulhsu, 0, 1, -1
  T_RR mulhsu, 0x8000000000000000, 0x8000000000000000, -1
  T_RR mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, -1
  T_RR mulhsu, 0x0121fa00ad77d742, 0x0123456789abcdef, 0xfedcba9876543210
  T_RR mulhu, 0xfffffffffffffffe, -1, -1
  T_RR mulhu, 1, 0x8000000000000000, 2
  T_RR mulhu, 0x0121fa00ad77d742, 0x0123456789abcdef, 0xfedcba9876543210
  T_RR mulhu, 0, 0xffffffff, 0xffffffff
  T_RR mulw, 0xfffffffffffffffe, 0x7fffffff, 2
  T_RR mulw, 15, 0x100000003, 0x100000005
  T_RR mulw, 0, 0x80000000, 0x80000000
  T_RR mulw, 0xffffffff80000000, 0x10000, 0x8000
  T_RR mulw, 1, -1, -1
  # division
  T_RR div, 3, 20, 6
  T_RR div, -3, -20, 6
  T_RR div, -3, 20, -6
  T_RR div, 3, -20, -6
  T_RR div, 0xffffffffffffffff, 20, 0
  T_RR div, 0xffffffffffffffff, -20, 0
  T_RR div, 0x8000000000000000, 0x8000000000000000, -1
  T_RR div, 0, 5, 7
  T_RR divu, 3, 20, 6
  T_RR divu, 0x7fffffffffffffff, -1, 2
  T_RR divu, 0xffffffffffffffff, 20, 0
  T_RR divu, 0, 0x8000000000000000, -1
  T_RR divu, 1, -1, -1
  T_RR rem, 2, 20, 6
  T_RR rem, -2, -20, 6
  T_RR rem, 2, 20, -6
  T_RR rem, -2, -20, -6
  T_RR rem, 20, 20, 0
  T_RR rem, -20, -20, 0
  T_RR rem, 0, 0x8000000000000000, -1
  T_RR remu, 2, 20, 6
  T_RR remu, 5, -1, 10
  T_RR remu, -20, -20, 0
  T_RR remu, 0x8000000000000000, 0x8000000000000000, -1
  # 32-bit division
  T_RR divw, 0xffffffff80000000, 0x80000000, -1
  T_RR divw, 0xffffffffffffffff, 20, 0
  T_RR divw, 0xffffffffffffffff, 0x123456789, 0xffffffff00000000
  T_RR divw, -3, -20, 6
  T_RR divw, 3, 0x100000014, 6
  T_RR divw, 0xffffffffc0000000, 0x80000000, 2
  T_RR divuw, 0x7fffffff, 0xffffffff, 2
  T_RR divuw, 0xffffffff80000000, 0x80000000, 1
  T_RR divuw, 0xffffffffffffffff, 5, 0
  T_RR divuw, 0x40000000, 0x80000000, 0x100000002
  T_RR divuw, 3, 0xffffffff00000014, 6
  T_RR remw, -2, -20, 6
  T_RR remw, 0, 0x80000000, -1
  T_RR remw, 0xffffffff80000001, 0x180000001, 0
  T_RR remw, 2, 0x100000014, 0x200000006
  T_RR remw, 0xffffffffffffffff, 0x80000001, 2
  T_RR remuw, 5, 0xffffffff, 10
  T_RR remuw, 0xffffffff80000005, 0x80000005, 0
  T_RR remuw, 1, 0x100000007, 3
  T_RR remuw, 0xffffffff80000001, 0x80000001, 0x80000002
  # aliasing and x0 destination
  li a1, 9
  mul a1, a1, a1
  CHECK_EQ a1, 81
  li a1, 7
  li a2, 0
  div x0, a1, a2
  divu a2, a1, a2
  CHECK_EQ a2, -1
TEST_END
