/*
 * A bare-metal riscv64 M-mode guest (no interrupts, polling) that talks on its first virtio-net NIC
 * for ever: it keeps 8 receive buffers posted (counting and reposting each frame that arrives) and
 * sends broadcast frames (EtherType 0x88b5, local experimental) from the NIC's own MAC address, one
 * per PERIOD_US microseconds of guest time, or as fast as the transmit queue takes them when
 * PERIOD_US is 0 (a flood). It prints a "CHATTER up" line once the NIC is set up; the test reads the rest
 * from the NIC's counters. Built by test/manager/worker-net.test.ts with -DPERIOD_US=N.
 */
#include "../guest-include/bare-metal.h"

#ifndef PERIOD_US
#define PERIOD_US 1000
#endif

#define TICKS_PER_US 10ul

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
} __attribute__((aligned(4096)));

static struct queue rxq, txq;
static u16 rx_seen, tx_seen;
/* virtio_net_hdr_v1 (12 bytes, all zero: no offloads) and then the frame. */
#define HDR 12
#define FRAME 64
static u8 rx_bufs[QSIZE][HDR + 1514] __attribute__((aligned(16)));
static u8 tx_bufs[QSIZE][HDR + FRAME] __attribute__((aligned(16)));

static void setup_queue(u64 base, u32 index, struct queue *q) {
  wr(base + R_QUEUE_SEL, index);
  wr(base + R_QUEUE_NUM, QSIZE);
  u64 da = (u64)q->desc, aa = (u64)&q->avail_flags, ua = (u64)&q->used_flags;
  wr(base + R_DESC_LO, (u32)da); wr(base + R_DESC_HI, (u32)(da >> 32));
  wr(base + R_AVAIL_LO, (u32)aa); wr(base + R_AVAIL_HI, (u32)(aa >> 32));
  wr(base + R_USED_LO, (u32)ua); wr(base + R_USED_HI, (u32)(ua >> 32));
  wr(base + R_QUEUE_READY, 1);
}

static void make_available(struct queue *q, u16 id) {
  q->avail_ring[q->avail_idx % QSIZE] = id;
  fence();
  q->avail_idx++;
}

int main(void) {
  u64 base = 0;
  for (int i = 0; i < 8 && base == 0; i++) {
    u64 b = VIRTIO0 + 0x1000ul * (u64)i;
    if (rd(b + R_MAGIC) == 0x74726976 && rd(b + R_VERSION) == 2 && rd(b + R_DEVICE_ID) == 1) base = b;
  }
  if (base == 0) {
    puts_("CHATTER no virtio-net\n");
    for (;;) {}
  }
  wr(base + R_STATUS, 0);
  wr(base + R_STATUS, S_ACK | S_DRIVER);
  wr(base + R_DRV_FEAT_SEL, 0);
  wr(base + R_DRV_FEAT, 0);
  wr(base + R_DRV_FEAT_SEL, 1);
  wr(base + R_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1 */
  wr(base + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  setup_queue(base, 0, &rxq);
  setup_queue(base, 1, &txq);
  wr(base + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);

  for (u16 i = 0; i < QSIZE; i++) {
    rxq.desc[i] = (struct desc){ (u64)rx_bufs[i], sizeof rx_bufs[i], D_WRITE, 0 };
    make_available(&rxq, i);
    u8 *f = tx_bufs[i] + HDR;
    for (int k = 0; k < 6; k++) f[k] = 0xff;
    for (int k = 0; k < 6; k++) f[6 + k] = *(volatile u8 *)(base + R_CONFIG + (u64)k);
    f[12] = 0x88;
    f[13] = 0xb5;
    txq.desc[i] = (struct desc){ (u64)tx_bufs[i], sizeof tx_bufs[i], 0, 0 };
  }
  fence();
  wr(base + R_QUEUE_NOTIFY, 0);
  /* Longer than 64 bytes: the manager's fault hooks trip on the 64th console byte. */
  puts_("CHATTER up: broadcasting on the first virtio-net NIC until stopped\n");

  u16 tx_free = QSIZE, tx_next = 0;
  u64 sent = 0, next_send = now();
  for (;;) {
    fence();
    int reposted = 0;
    while (rxq.used_idx != rx_seen) {
      make_available(&rxq, (u16)rxq.used_ring[rx_seen % QSIZE].id);
      rx_seen++;
      reposted = 1;
    }
    if (reposted) {
      fence();
      wr(base + R_QUEUE_NOTIFY, 0);
    }
    while (txq.used_idx != tx_seen) {
      tx_seen++;
      tx_free++;
    }
    wr(base + R_INT_ACK, rd(base + R_INT_STATUS));
    if (tx_free > 0 && (PERIOD_US == 0 || now() >= next_send)) {
      u8 *payload = tx_bufs[tx_next] + HDR + 14;
      for (int k = 0; k < 8; k++) payload[k] = (u8)(sent >> (8 * k));
      make_available(&txq, tx_next);
      tx_next = (u16)((tx_next + 1) % QSIZE);
      tx_free--;
      sent++;
      next_send += PERIOD_US * TICKS_PER_US;
      fence();
      wr(base + R_QUEUE_NOTIFY, 1);
    }
  }
}
