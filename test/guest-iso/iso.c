/*
 * The isolation guests: one bare-metal riscv64 M-mode program built in two modes.
 *
 * FILL (VM A): writes the 64-byte SECRET (a generated header, random per test run) at every 64-byte
 *   step of its free RAM (from the end of its image to the end of RAM), prints "FILLED", then idles in WFI.
 * SCAN (VM B): waits for one byte on its UART (the host sends it once A has filled), then searches every
 *   byte of its own RAM for the secret. It holds only KEY = SECRET ^ MASK, and compares ram ^ MASK with
 *   KEY, so the secret itself never appears in B's RAM unless it came from outside. Prints
 *   "SCAN found=N". Then it programs virtio queues with addresses beyond its RAM: the rng device's rings
 *   outside RAM, and a virtio-blk request whose data buffer lies outside RAM. For each it prints
 *   "BADQ <dev> status=<device status> used=<0|1> blkstatus=<status byte>" and powers off.
 * RAM_SIZE (bytes) is given at build time.
 */
#include "../guest-include/bare-metal.h"

#define MASK 0x5au

#ifdef FILL
#include "secret.h" /* static const u8 SECRET[64] */

int main(void) {
  u64 start = ((u64)_stack_top + 63) & ~63ul;
  for (u64 a = start; a + 64 <= RAM_BASE + RAM_SIZE; a += 64)
    for (int i = 0; i < 64; i += 8) {
      u64 w = 0;
      for (int j = 7; j >= 0; j--) w = w << 8 | SECRET[i + j];
      *(volatile u64 *)(a + (u64)i) = w;
    }
  fence();
  puts_("FILLED\n");
  for (;;) __asm__ volatile("wfi");
}
#else
#include "key.h" /* static const u8 KEY[64] = SECRET ^ MASK */

static void putx(u64 v) {
  char b[20];
  int n = 0;
  do b[n++] = "0123456789abcdef"[v & 15]; while (v >>= 4);
  puts_("0x");
  while (n) putc_(b[--n]);
}


#define QSIZE 8
struct desc { u64 addr; u32 len; u16 flags, next; };
struct queue {
  struct desc desc[QSIZE];
  u16 avail_flags, avail_idx, avail_ring[QSIZE], used_event;
  u8 pad[4096 - 16 * QSIZE - 6 - 2 * QSIZE];
  u16 used_flags;
  volatile u16 used_idx;
  struct { u32 id, len; } used_ring[QSIZE];
} __attribute__((aligned(4096)));

static struct queue blkq;
static u8 hdr[16];
static volatile u8 status_byte;

static u64 find(u32 id) {
  for (int i = 0; i < 8; i++) {
    u64 b = VIRTIO0 + 0x1000ul * (u64)i;
    if (rd(b + R_MAGIC) == 0x74726976 && rd(b + R_VERSION) == 2 && rd(b + R_DEVICE_ID) == id) return b;
  }
  return 0;
}

/* Negotiates VERSION_1 only and sets queue 0 to the given ring addresses. */
static void setup(u64 b, u64 desc, u64 avail, u64 used) {
  wr(b + R_STATUS, 0);
  wr(b + R_STATUS, S_ACK | S_DRIVER);
  wr(b + R_DRV_FEAT_SEL, 0); wr(b + R_DRV_FEAT, 0);
  wr(b + R_DRV_FEAT_SEL, 1); wr(b + R_DRV_FEAT, 1);
  wr(b + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  wr(b + R_QUEUE_SEL, 0);
  wr(b + R_QUEUE_NUM, QSIZE);
  wr(b + R_DESC_LO, (u32)desc); wr(b + R_DESC_HI, (u32)(desc >> 32));
  wr(b + R_AVAIL_LO, (u32)avail); wr(b + R_AVAIL_HI, (u32)(avail >> 32));
  wr(b + R_USED_LO, (u32)used); wr(b + R_USED_HI, (u32)(used >> 32));
  wr(b + R_QUEUE_READY, 1);
  wr(b + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* Waits up to a second of guest time for NEEDS_RESET or a used entry. */
static void settle(u64 b, const char *name, volatile u16 *used_idx) {
  u64 deadline = *(volatile u64 *)MTIME + TICKS_PER_SEC;
  while (!(rd(b + R_STATUS) & S_NEEDS_RESET) && !(used_idx && *used_idx) &&
         *(volatile u64 *)MTIME < deadline) fence();
  puts_("BADQ "); puts_(name);
  puts_(" status="); putx(rd(b + R_STATUS));
  puts_(" used="); putu(used_idx ? *used_idx : 0);
  puts_(" blkstatus="); putx(status_byte);
  putc_('\n');
}

int main(void) {
  while (!(*(volatile u8 *)(UART + 5) & 1)) {}
  (void)*(volatile u8 *)UART;
  u64 found = 0;
  const volatile u8 *ram = (const volatile u8 *)RAM_BASE;
  for (u64 i = 0; i + 64 <= RAM_SIZE; i++) {
    if ((u8)(ram[i] ^ MASK) != KEY[0]) continue;
    int j = 1;
    while (j < 64 && (u8)(ram[i + (u64)j] ^ MASK) == KEY[j]) j++;
    if (j == 64) found++;
  }
  puts_("SCAN found="); putu(found); putc_('\n');

  /* rng: all three rings just past the end of RAM, and far beyond it. */
  u64 rng = find(4);
  if (!rng) { puts_("BADQ error no rng\n"); wr(FINISHER, 0x13333); for (;;) {} }
  u64 past = RAM_BASE + RAM_SIZE;
  setup(rng, past, past + 0x1000, past + 0x2000);
  wr(rng + R_QUEUE_NOTIFY, 0);
  settle(rng, "rng", 0);
  setup(rng, 0x7f0000000ul, 0x7f0001000ul, 0x7f0002000ul);
  wr(rng + R_QUEUE_NOTIFY, 0);
  settle(rng, "rngfar", 0);

  /* blk: a valid ring, a read request whose data buffer lies past the end of RAM. */
  u64 blk = find(2);
  if (!blk) { puts_("BADQ error no blk\n"); wr(FINISHER, 0x13333); for (;;) {} }
  setup(blk, (u64)blkq.desc, (u64)&blkq.avail_flags, (u64)&blkq.used_flags);
  for (int i = 0; i < 16; i++) hdr[i] = 0; /* type 0 = read, sector 0 */
  status_byte = 0xee;
  blkq.desc[0] = (struct desc){(u64)hdr, 16, D_NEXT, 1};
  blkq.desc[1] = (struct desc){past - 256, 4096, D_NEXT | D_WRITE, 2};
  blkq.desc[2] = (struct desc){(u64)&status_byte, 1, D_WRITE, 0};
  blkq.avail_ring[0] = 0;
  fence();
  blkq.avail_idx = 1;
  fence();
  wr(blk + R_QUEUE_NOTIFY, 0);
  settle(blk, "blk", &blkq.used_idx);
  puts_("DONE\n");
  fence();
  wr(FINISHER, 0x5555);
  for (;;) {}
}
#endif
