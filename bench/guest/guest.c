/*
 * Guest side of the CPU benchmark: runs the workload, prints the checksum through the HTIF console and
 * reports pass (tohost = 1). Built twice from this file: with SV39 defined it runs in S-mode under Sv39
 * (start.S and sv39.c set that up) and first checks that translation is really on.
 * With COUNT defined it also prints "instret <n>" (the guest's instruction count so far), which is how
 * bench/cpu.ts counts instructions under QEMU with -icount. With EMPTY defined it passes at once (to time
 * an emulator's start-up and exit).
 */
#include <stdint.h>

#include "work.h"

/* HTIF mailboxes, found by the host through these symbol names; 64-byte aligned as in riscv-tests. */
__attribute__((section(".tohost"), aligned(64))) volatile uint64_t tohost = 0;
__attribute__((section(".tohost"), aligned(64))) volatile uint64_t fromhost = 0;

#define HTIF_CONSOLE_PUTCHAR ((1ull << 56) | (1ull << 48))

static void put_char(char c) {
  /* One store per character; the host consumes it synchronously, so fromhost is not polled. */
  tohost = HTIF_CONSOLE_PUTCHAR | (uint8_t)c;
}

static void put_str(const char *s) {
  while (*s) put_char(*s++);
}

static void put_hex(uint64_t v) {
  for (int shift = 60; shift >= 0; shift -= 4) put_char("0123456789abcdef"[(v >> shift) & 15u]);
}

#ifdef COUNT
static void put_dec(uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  while (n > 0) put_char(digits[--n]);
}
#endif

static __attribute__((noreturn)) void finish(uint64_t code) {
  tohost = code;
  for (;;) __asm__ volatile("wfi");
}

#ifdef SV39
int sv39_check(void);
#endif

void guest_main(void) {
#ifdef EMPTY
  finish(1); /* cpu-empty.elf: only the host's start-up and exit cost */
#else
#ifdef SV39
  if (!sv39_check()) {
    put_str("sv39: alias page did not reach its physical page\n");
    finish((2u << 1) | 1u);
  }
#endif
  uint64_t sum = bench_run();
  put_hex(sum);
  put_char('\n');
#ifdef COUNT
  uint64_t instret;
  __asm__ volatile("rdinstret %0" : "=r"(instret));
  put_str("instret ");
  put_dec(instret);
  put_char('\n');
#endif
  finish(1);
#endif
}

/* Any trap ends up here in M-mode (nothing is delegated): print it and fail with code 64 + mcause. */
void m_trap(uint64_t cause, uint64_t epc, uint64_t tval) {
  put_str("trap: mcause 0x");
  put_hex(cause);
  put_str(" mepc 0x");
  put_hex(epc);
  put_str(" mtval 0x");
  put_hex(tval);
  put_char('\n');
  finish(((64u + (cause & 63u)) << 1) | 1u);
}
