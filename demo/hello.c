/* The built-in demo guest: draws the Mandelbrot set in 64-bit fixed point through the HTIF console.
 * Bare metal, no libc: everything it needs is here. */
#include <stdint.h>

extern volatile uint64_t tohost;

static void putchar_htif(char c) {
  tohost = (1ULL << 56) | (1ULL << 48) | (uint8_t)c;
}

static void puts_htif(const char *s) {
  while (*s) putchar_htif(*s++);
}

#define FRAC 28
#define ONE ((int64_t)1 << FRAC)

static char shade(int iterations) {
  static const char ramp[] = " .:-=+*#%@";
  return iterations >= 64 ? ' ' : ramp[iterations % 10];
}

int main(void) {
  puts_htif("Hello from a RISC-V guest running on Vireo (RV64GC, interpreted in WebAssembly).\n\n");
  for (int row = 0; row < 24; row++) {
    int64_t ci = -ONE + (2 * ONE / 24) * row;
    for (int col = 0; col < 72; col++) {
      int64_t cr = -2 * ONE + (3 * ONE / 72) * col;
      int64_t zr = 0, zi = 0;
      int n = 0;
      while (n < 64) {
        int64_t zr2 = (zr * zr) >> FRAC, zi2 = (zi * zi) >> FRAC;
        if (zr2 + zi2 > 4 * ONE) break;
        zi = ((2 * zr * zi) >> FRAC) + ci;
        zr = zr2 - zi2 + cr;
        n++;
      }
      putchar_htif(shade(n));
    }
    putchar_htif('\n');
  }
  puts_htif("\nThe next milestone boots Debian Linux here. Bye!\n");
  return 0;
}
