/*
 * What the bare-metal C test guests (test/guest-fuzz/fuzz.c, test/guest-iso/iso.c, test/net/chatter.c)
 * share: fixed-width types, the entry stub (stack, main, spin), the virt board's addresses, the
 * virtio-mmio registers and status bits, MMIO access and polled UART output. Included by relative path.
 */
#ifndef VIREO_BARE_METAL_H
#define VIREO_BARE_METAL_H

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

__asm__(".section .text.init\n.globl _start\n_start:\n  la sp, _stack_top\n  call main\n1: j 1b\n");
extern u8 _stack_top[];

#define UART 0x10000000ul
#define FINISHER 0x100000ul
#define MTIME 0x0200bff8ul
#define VIRTIO0 0x10001000ul
#define RAM_BASE 0x80000000ul
#define TICKS_PER_SEC 10000000ul

enum {
  R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_DEV_FEAT = 0x010, R_DEV_FEAT_SEL = 0x014,
  R_DRV_FEAT = 0x020, R_DRV_FEAT_SEL = 0x024, R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034,
  R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050, R_INT_STATUS = 0x060,
  R_INT_ACK = 0x064, R_STATUS = 0x070, R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_AVAIL_LO = 0x090,
  R_AVAIL_HI = 0x094, R_USED_LO = 0x0a0, R_USED_HI = 0x0a4, R_CONFIG = 0x100,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 64 };
enum { D_NEXT = 1, D_WRITE = 2 };

static inline u32 rd(u64 a) { return *(volatile u32 *)a; }
static inline void wr(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void fence(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }
static inline u64 now(void) { return *(volatile u64 *)MTIME; }

static inline void putc_(char c) {
  while (!(*(volatile u8 *)(UART + 5) & 0x20)) {}
  *(volatile u8 *)UART = (u8)c;
}
static inline void puts_(const char *s) { while (*s) putc_(*s++); }
static inline void putu(u64 v) {
  char b[24];
  int n = 0;
  do b[n++] = (char)('0' + v % 10); while (v /= 10);
  while (n) putc_(b[--n]);
}

#endif
