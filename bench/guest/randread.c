/*
 * randread: 4 KiB random reads with O_DIRECT from a block device, one at a time (queue depth 1), for the
 * virtio benchmark (docs/BENCHMARKS.md, "Virtio"). A static riscv64 Linux program without libc (the
 * bare-metal riscv64-unknown-elf-gcc builds it: raw system calls, no C library), so the guest's busybox
 * needs no fio.
 *
 *   randread DEVICE SPAN_MIB SECONDS [SEED]
 *
 * Reads 4 KiB blocks at offsets chosen uniformly (xorshift64) in the first SPAN_MIB MiB of DEVICE with
 * pread64, until SECONDS of CLOCK_MONOTONIC have passed (checked every 16 reads, at least 64 reads), and
 * prints one line:
 *
 *   RANDREAD reads=<n> ns=<elapsed> bytes=<n*4096>
 *
 * Exit status 0, or 1 with a `RANDREAD error ...` line when a system call fails.
 */
typedef unsigned long u64;
typedef long i64;

enum {
  SYS_openat = 56,
  SYS_close = 57,
  SYS_write = 64,
  SYS_pread64 = 67,
  SYS_exit_group = 94,
  SYS_clock_gettime = 113,
};
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_DIRECT 040000 /* asm-generic, as riscv64 uses */
#define CLOCK_MONOTONIC 1
#define BLOCK 4096

static i64 syscall4(i64 n, i64 a0, i64 a1, i64 a2, i64 a3) {
  register i64 r_a0 __asm__("a0") = a0;
  register i64 r_a1 __asm__("a1") = a1;
  register i64 r_a2 __asm__("a2") = a2;
  register i64 r_a3 __asm__("a3") = a3;
  register i64 r_a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a7) : "memory");
  return r_a0;
}

static u64 slen(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

static void put(const char *s) { syscall4(SYS_write, 1, (i64)s, (i64)slen(s), 0); }

/* Appends the decimal digits of v to p; returns the new end. */
static char *num(char *p, u64 v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

static char *str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

static u64 parse(const char *s) {
  u64 v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (u64)(*s++ - '0');
  return v;
}

static __attribute__((noreturn)) void quit(int code) {
  for (;;) syscall4(SYS_exit_group, code, 0, 0, 0);
}

static void fail(const char *what, i64 err) {
  char line[96];
  char *p = str(line, "RANDREAD error ");
  p = str(p, what);
  p = str(p, " errno=");
  p = num(p, (u64)-err);
  *p++ = '\n';
  *p = 0;
  put(line);
  quit(1);
}

struct timespec64 {
  i64 sec;
  i64 nsec;
};

static u64 now_ns(void) {
  struct timespec64 ts;
  i64 r = syscall4(SYS_clock_gettime, CLOCK_MONOTONIC, (i64)&ts, 0, 0);
  if (r < 0) fail("clock_gettime", r);
  return (u64)ts.sec * 1000000000ul + (u64)ts.nsec;
}

static unsigned char buffer[BLOCK] __attribute__((aligned(BLOCK)));

int entry(i64 argc, char **argv) {
  if (argc < 4) {
    put("usage: randread DEVICE SPAN_MIB SECONDS [SEED]\n");
    return 2;
  }
  u64 blocks = parse(argv[2]) * (1ul << 20) / BLOCK;
  u64 limit = parse(argv[3]) * 1000000000ul;
  u64 x = argc > 4 ? parse(argv[4]) : 0;
  if (x == 0) x = 0x9e3779b97f4a7c15ul;
  if (blocks == 0) {
    put("RANDREAD error span is 0\n");
    return 2;
  }
  i64 fd = syscall4(SYS_openat, AT_FDCWD, (i64)argv[1], O_RDONLY | O_DIRECT, 0);
  if (fd < 0) fail("open", fd);
  u64 start = now_ns();
  u64 reads = 0;
  u64 elapsed = 0;
  for (;;) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    i64 off = (i64)((x % blocks) * BLOCK);
    i64 r = syscall4(SYS_pread64, fd, (i64)buffer, BLOCK, off);
    if (r != BLOCK) fail("pread64", r < 0 ? r : -5);
    reads++;
    if (reads % 16 == 0) {
      elapsed = now_ns() - start;
      if (elapsed >= limit && reads >= 64) break;
    }
  }
  syscall4(SYS_close, fd, 0, 0, 0);
  char line[128];
  char *p = str(line, "RANDREAD reads=");
  p = num(p, reads);
  p = str(p, " ns=");
  p = num(p, elapsed);
  p = str(p, " bytes=");
  p = num(p, reads * BLOCK);
  *p++ = '\n';
  *p = 0;
  put(line);
  return 0;
}

/* The kernel starts us with sp -> argc, argv[0..argc-1], NULL, envp...; no gp set-up is needed (no
 * relaxation against __global_pointer$ is relied on: linked with --no-relax). */
__asm__(".section .text._start\n"
        ".globl _start\n"
        "_start:\n"
        "  ld a0, 0(sp)\n"
        "  addi a1, sp, 8\n"
        "  andi sp, sp, -16\n"
        "  call entry\n"
        "  li a7, 94\n"
        "  ecall\n");
