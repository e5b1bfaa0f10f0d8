/*
 * The guest-side fuzzer: a bare-metal riscv64 M-mode program (no interrupts, polling) that drives the
 * real virtio-mmio devices of `vireo run --bios none` with random split-ring requests, most of them
 * valid, some mutated (bad lengths, sectors, types, addresses outside RAM, chains that loop or link past
 * the ring, buffers in the wrong direction). It finds the devices by probing the eight virt slots.
 *
 * Parameters come from sector 0 of the first virtio-blk disk: "VFZ1", then the seed and the number of
 * requests per device (little-endian u32s). Per device it prints one line
 *   FUZZ <dev> ok=<valid requests completed as expected> err=<error statuses> reset=<NEEDS_RESET>
 *        timeout=<no answer> bad=<valid requests answered wrongly> [rx=<frames received>]
 * then "FUZZ done" and powers off through the test finisher. A missing device or parameter block is
 * reported as "FUZZ error <what>" with a failing exit status.
 */
#include "../guest-include/bare-metal.h"

/* Far beyond any --memory the test gives, and an MMIO address: neither is guest RAM. */
#define OUTSIDE_RAM 0x7f0000000ul

enum { ID_NET = 1, ID_BLK = 2, ID_CONSOLE = 3, ID_RNG = 4 };

static void kv(const char *k, u64 v) { putc_(' '); puts_(k); putc_('='); putu(v); }

static __attribute__((noreturn)) void power_off(u32 code) {
  fence();
  wr(FINISHER, code ? (0x3333u | code << 16) : 0x5555u);
  for (;;) {}
}
static __attribute__((noreturn)) void fail(const char *what) {
  puts_("FUZZ error ");
  puts_(what);
  putc_('\n');
  power_off(1);
}

static u64 rng_state;
static u64 rnd(void) {
  u64 x = rng_state;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1dul;
}
static u32 below(u32 n) { return (u32)(rnd() % n); }

static void fill(u8 *p, u8 v, u64 n) { for (u64 i = 0; i < n; i++) ((volatile u8 *)p)[i] = v; }

/* ---- split virtqueues ---- */

#define QSIZE 8
struct desc { u64 addr; u32 len; u16 flags, next; };
struct queue {
  struct desc desc[QSIZE];
  u16 avail_flags, avail_idx, avail_ring[QSIZE], used_event;
  u8 pad[4096 - 16 * QSIZE - 6 - 2 * QSIZE];
  u16 used_flags;
  volatile u16 used_idx;
  struct { u32 id, len; } used_ring[QSIZE];
  u16 avail_event;
  u16 last_used;
} __attribute__((aligned(4096)));

struct dev { u64 base; struct queue *q; int nq; };

static struct queue queues[8] __attribute__((aligned(4096)));
static int next_queue;

static int init_dev(struct dev *d) {
  u64 b = d->base;
  wr(b + R_STATUS, 0);
  wr(b + R_STATUS, S_ACK);
  wr(b + R_STATUS, S_ACK | S_DRIVER);
  wr(b + R_DEV_FEAT_SEL, 1);
  if (!(rd(b + R_DEV_FEAT) & 1)) return 0; /* VIRTIO_F_VERSION_1 */
  wr(b + R_DRV_FEAT_SEL, 0);
  wr(b + R_DRV_FEAT, 0);
  wr(b + R_DRV_FEAT_SEL, 1);
  wr(b + R_DRV_FEAT, 1);
  wr(b + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  if (!(rd(b + R_STATUS) & S_FEATURES_OK)) return 0;
  for (int i = 0; i < d->nq; i++) {
    struct queue *q = &d->q[i];
    fill((u8 *)q, 0, sizeof *q);
    wr(b + R_QUEUE_SEL, (u32)i);
    if (rd(b + R_QUEUE_NUM_MAX) < QSIZE) return 0;
    wr(b + R_QUEUE_NUM, QSIZE);
    u64 da = (u64)q->desc, aa = (u64)&q->avail_flags, ua = (u64)&q->used_flags;
    wr(b + R_DESC_LO, (u32)da); wr(b + R_DESC_HI, (u32)(da >> 32));
    wr(b + R_AVAIL_LO, (u32)aa); wr(b + R_AVAIL_HI, (u32)(aa >> 32));
    wr(b + R_USED_LO, (u32)ua); wr(b + R_USED_HI, (u32)(ua >> 32));
    wr(b + R_QUEUE_READY, 1);
  }
  wr(b + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  return 1;
}

static int find_dev(struct dev *d, u32 id, int nq, int nth) {
  for (int i = 0; i < 8; i++) {
    u64 b = VIRTIO0 + 0x1000ul * (u64)i;
    if (rd(b + R_MAGIC) != 0x74726976 || rd(b + R_VERSION) != 2 || rd(b + R_DEVICE_ID) != id) continue;
    if (nth-- > 0) continue;
    d->base = b;
    d->nq = nq;
    d->q = &queues[next_queue];
    next_queue += nq;
    return init_dev(d);
  }
  return 0;
}

/* A request as a list of buffers; the fuzzer writes it as one chain from descriptor 0. */
struct buf { u64 addr; u32 len; u16 flags; };

enum { DONE, NEEDS_RESET, TIMEOUT };

static void publish(struct dev *d, int qi, const struct buf *bufs, int n, int mutation_next) {
  struct queue *q = &d->q[qi];
  for (int i = 0; i < n; i++) {
    q->desc[i].addr = bufs[i].addr;
    q->desc[i].len = bufs[i].len;
    q->desc[i].flags = (u16)(bufs[i].flags | (i + 1 < n ? D_NEXT : 0));
    q->desc[i].next = (u16)(i + 1);
  }
  /* Mutations of the chain itself: 1 = the last buffer links back to the first, 2 = past the ring. */
  if (mutation_next) {
    q->desc[n - 1].flags |= D_NEXT;
    q->desc[n - 1].next = mutation_next == 1 ? 0 : (u16)(QSIZE + below(100));
  }
  q->avail_ring[q->avail_idx % QSIZE] = 0;
  fence();
  q->avail_idx++;
  fence();
  wr(d->base + R_QUEUE_NOTIFY, (u32)qi);
}

/* Waits (guest time) for the next used entry of queue qi, or for the device to ask for a reset. */
static int wait_used(struct dev *d, int qi, u64 seconds, u32 *len) {
  struct queue *q = &d->q[qi];
  u64 deadline = *(volatile u64 *)MTIME + seconds * TICKS_PER_SEC;
  for (;;) {
    fence();
    if (q->used_idx != q->last_used) {
      *len = q->used_ring[q->last_used % QSIZE].len;
      q->last_used++;
      wr(d->base + R_INT_ACK, rd(d->base + R_INT_STATUS));
      return DONE;
    }
    if (rd(d->base + R_STATUS) & S_NEEDS_RESET) return NEEDS_RESET;
    if (*(volatile u64 *)MTIME > deadline) return TIMEOUT;
  }
}

struct counts { u64 ok, err, reset, timeout, bad, rx; };

static void report(const char *name, const struct counts *c, int net) {
  puts_("FUZZ ");
  puts_(name);
  kv("ok", c->ok); kv("err", c->err); kv("reset", c->reset); kv("timeout", c->timeout); kv("bad", c->bad);
  if (net) kv("rx", c->rx);
  putc_('\n');
}

/* Buffers the requests use, and where mutated ones point instead. */
static u8 data[64 * 1024] __attribute__((aligned(4096)));
static u8 hdr[16], status_byte;
static u8 rx_bufs[QSIZE][2048] __attribute__((aligned(16)));

static u64 outside_address(void) {
  switch (below(3)) {
  case 0: return OUTSIDE_RAM;
  case 1: return 0x1000;                 /* MMIO space */
  default: return RAM_BASE - 512;         /* straddles the start of RAM */
  }
}

/* Settles a request: a valid one must complete as `expect_ok` says; a mutated one may fail either way. */
static void settle(struct dev *d, int qi, struct counts *c, int valid, int (*ok)(u32 len), u64 seconds) {
  u32 len = 0;
  int r = wait_used(d, qi, seconds, &len);
  if (r == TIMEOUT) { c->timeout++; init_dev(d); return; }
  if (r == NEEDS_RESET) {
    if (valid) c->bad++; else c->reset++;
    init_dev(d);
    return;
  }
  if (ok(len)) { if (valid) c->ok++; else c->err++; }
  else if (valid) c->bad++;
  else c->err++;
}

/* ---- virtio-blk ---- */

static u64 capacity;
static int blk_ok(u32 len) { (void)len; return status_byte == 0; }

static void blk_request(struct dev *d, u32 type, u64 sector, u32 bytes, int mutation, struct counts *c) {
  struct buf b[4];
  int n = 0, next = 0;
  fill(hdr, 0, 16);
  *(u32 *)hdr = type;
  *(u64 *)(hdr + 8) = sector;
  b[n++] = (struct buf){(u64)hdr, 16, 0};
  if (bytes) b[n++] = (struct buf){(u64)data, bytes, (u16)(type == 0 || type == 8 ? D_WRITE : 0)};
  b[n++] = (struct buf){(u64)&status_byte, 1, D_WRITE};
  switch (mutation) {
  case 1: *(u64 *)(hdr + 8) = capacity + below(1000); break;        /* past the end */
  case 2: *(u32 *)hdr = 0x40 + below(1000); break;                   /* unknown type */
  case 3: if (n == 3) b[1].len = 1 + below(511); break;             /* not whole sectors */
  case 4: if (n == 3) b[1].addr = outside_address(); break;         /* data outside RAM */
  case 5: b[0].len = 8; break;                                       /* short header */
  case 6: next = 1; break;                                           /* chain loops */
  case 7: next = 2; break;                                           /* links past the ring */
  case 8: b[n - 1].addr = outside_address(); break;                  /* status outside RAM */
  }
  status_byte = 0xee;
  publish(d, 0, b, n, next);
  settle(d, 0, c, mutation == 0, blk_ok, 5);
}

/* ---- virtio-rng, virtio-console, virtio-net ---- */

static int rng_ok(u32 len) { return len > 0; }
static int any_ok(u32 len) { (void)len; return 1; }

static void post_rx(struct dev *net) {
  struct queue *q = &net->q[0];
  for (int i = 0; i < QSIZE; i++) {
    q->desc[i] = (struct desc){(u64)rx_bufs[i], sizeof rx_bufs[i], D_WRITE, 0};
    q->avail_ring[i] = (u16)i;
  }
  fence();
  q->avail_idx = (u16)(q->last_used + QSIZE);
  fence();
  wr(net->base + R_QUEUE_NOTIFY, 0);
}

/* Frames received by `rx` (one NIC on the same switch) so far; its buffers are given back at once. */
static u64 drain_rx(struct dev *rx, u64 seconds) {
  struct queue *q = &rx->q[0];
  u64 deadline = *(volatile u64 *)MTIME + seconds * TICKS_PER_SEC, got = 0;
  for (;;) {
    fence();
    while (q->used_idx != q->last_used) {
      u16 id = (u16)q->used_ring[q->last_used % QSIZE].id;
      q->avail_ring[q->avail_idx % QSIZE] = id;
      q->last_used++;
      fence();
      q->avail_idx++;
      got++;
    }
    fence();
    wr(rx->base + R_QUEUE_NOTIFY, 0);
    wr(rx->base + R_INT_ACK, rd(rx->base + R_INT_STATUS));
    if (got || *(volatile u64 *)MTIME > deadline) return got;
  }
}

int main(void) {
  struct dev blk, rng, con, net0, net1;
  struct counts cb = {0}, cr = {0}, cc = {0}, cn = {0};
  if (!find_dev(&blk, ID_BLK, 1, 0)) fail("no virtio-blk");
  capacity = *(volatile u64 *)(blk.base + R_CONFIG);
  /* The parameter block: sector 0 read with a plain valid request. */
  blk_request(&blk, 0, 0, 512, 0, &cb);
  if (cb.ok != 1 || *(u32 *)data != 0x315a4656) fail("no parameter block in sector 0");
  u32 seed = *(u32 *)(data + 4), count = *(u32 *)(data + 8);
  rng_state = 0x9e3779b97f4a7c15ul ^ ((u64)seed << 1 | 1);
  if (!find_dev(&rng, ID_RNG, 1, 0)) fail("no virtio-rng");
  if (!find_dev(&con, ID_CONSOLE, 2, 0)) fail("no virtio-console");
  if (!find_dev(&net0, ID_NET, 2, 0) || !find_dev(&net1, ID_NET, 2, 1)) fail("no pair of virtio-net NICs");
  post_rx(&net1);

  for (u32 i = 0; i < count; i++) {
    /* virtio-blk: reads, writes (never sector 0), flushes, IDs; one request in five mutated. */
    int m = below(5) == 0 ? 1 + (int)below(8) : 0;
    u32 kind = below(10), sectors = 1 + below(8);
    u64 sector = 1 + rnd() % (capacity - 9);
    if (kind < 4) blk_request(&blk, 0, sector, 512 * sectors, m, &cb);
    else if (kind < 8) { fill(data, (u8)i, 512 * sectors); blk_request(&blk, 1, sector, 512 * sectors, m, &cb); }
    else if (kind < 9) blk_request(&blk, 4, 0, 0, m == 3 || m == 4 ? 0 : m, &cb);
    else blk_request(&blk, 8, 0, 20, m, &cb);

    /* virtio-rng: a writable buffer; mutated: outside RAM, loops, past the ring, read-only. */
    struct buf b = {(u64)data, 1 + below(256), D_WRITE};
    m = below(5) == 0 ? 1 + (int)below(4) : 0;
    if (m == 1) b.addr = outside_address();
    if (m == 4) b.flags = 0;
    publish(&rng, 0, &b, 1, m == 2 ? 1 : m == 3 ? 2 : 0);
    settle(&rng, 0, &cr, m == 0, m == 4 ? any_ok : rng_ok, 5);

    /* virtio-console transmitq: a line of text; mutated: outside RAM, loops, past the ring. */
    static char line[] = "hvc fuzz line\n";
    b = (struct buf){(u64)line, sizeof line - 1, 0};
    m = below(5) == 0 ? 1 + (int)below(3) : 0;
    if (m == 1) b.addr = outside_address();
    publish(&con, 1, &b, 1, m == 2 ? 1 : m == 3 ? 2 : 0);
    settle(&con, 1, &cc, m == 0, any_ok, 5);

    /* virtio-net: a broadcast frame from NIC 0 to NIC 1 through the switch; mutated as above. */
    u8 *f = data;
    fill(f, 0, 12);                                 /* virtio_net_hdr (no offloads) */
    fill(f + 12, 0xff, 6);                          /* broadcast */
    for (int k = 0; k < 6; k++) f[18 + k] = *(volatile u8 *)(net0.base + R_CONFIG + (u64)k);
    f[30] = 0x88; f[31] = 0xb5;                     /* local experimental EtherType */
    u32 flen = 60 + below(1400);
    for (u32 k = 32; k < 12 + flen; k++) f[k] = (u8)(k + i);
    b = (struct buf){(u64)f, 12 + flen, 0};
    m = below(5) == 0 ? 1 + (int)below(3) : 0;
    if (m == 1) b.addr = outside_address();
    publish(&net0, 1, &b, 1, m == 2 ? 1 : m == 3 ? 2 : 0);
    settle(&net0, 1, &cn, m == 0, any_ok, 5);
    if (m == 0) cn.rx += drain_rx(&net1, 2);
  }
  report("blk", &cb, 0);
  report("rng", &cr, 0);
  report("console", &cc, 0);
  report("net", &cn, 1);
  puts_("FUZZ done\n");
  power_off(0);
}
