/*
 * A CPU-bound, kernel-like mix of work, repeated for ROUNDS rounds:
 *   - table-driven CRC-64 (ECMA-182, reflected) over a 256 KiB buffer: byte loads, table loads, shifts;
 *   - a sieve of Eratosthenes over a bitmap of 64-bit words (2^18 bits): read-modify-write of words,
 *     variable shifts, then a branch-free popcount of every word;
 *   - a Fisher-Yates shuffle of a 32 Ki-entry permutation, indices drawn with a 64-bit remainder (remu);
 *   - a 32 Ki-node linked list rebuilt in that random order with values from an LCG (mul), then chased
 *     for several passes mixing values with an FNV multiply and a signed compare (cache-unfriendly loads);
 *   - a rotate plus div, divu and remu folding the round's results into the checksum.
 *
 * Rules, because the checksum is compared with the same file compiled natively for the host: only
 * fixed-width types, no library calls, no undefined behaviour (no shift by >= 64, no division by zero,
 * no INT64_MIN / -1), and nothing that depends on addresses. Dynamic instruction count on RV64GC at -O2
 * is ~11.0 M per round, 198.6 M for the whole run (see docs/BENCHMARKS.md).
 */
#include "work.h"

#ifndef ROUNDS
#define ROUNDS 18
#endif

#define CRC_BYTES (256u * 1024u)
#define SIEVE_BITS (1u << 18)
#define SIEVE_WORDS (SIEVE_BITS / 64u)
#define LIST_NODES (32u * 1024u)
#define LIST_PASSES 12

#define CRC64_POLY_REFLECTED 0xc96c5795d7870f42ull
#define LCG_MUL 6364136223846793005ull
#define LCG_ADD 1442695040888963407ull
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x00000100000001b3ull

struct node {
  struct node *next;
  uint64_t val;
};

static uint64_t crc_table[256];
/* The CRC input, stored as words so it is 8-byte aligned; read as bytes (little-endian on both hosts). */
static uint64_t crc_buf[CRC_BYTES / 8u];
static uint64_t sieve[SIEVE_WORDS];
static uint32_t perm[LIST_NODES];
static struct node nodes[LIST_NODES];
static uint64_t rng;

static uint64_t lcg_next(void) {
  rng = rng * LCG_MUL + LCG_ADD;
  return rng;
}

static uint64_t rotl64(uint64_t x, unsigned r) {
  r &= 63u;
  return (x << r) | (x >> ((64u - r) & 63u));
}

/* Branch-free population count (no Zbb on the guest, and no libgcc call). */
static uint64_t popcount64(uint64_t v) {
  v = v - ((v >> 1) & 0x5555555555555555ull);
  v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (v * 0x0101010101010101ull) >> 56;
}

static void crc_init(void) {
  for (uint32_t i = 0; i < 256u; i++) {
    uint64_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC64_POLY_REFLECTED & (0u - (c & 1u)));
    crc_table[i] = c;
  }
}

static uint64_t crc64(uint64_t crc, const uint8_t *p, uint32_t n) {
  crc = ~crc;
  for (uint32_t i = 0; i < n; i++) crc = crc_table[(uint8_t)(crc ^ p[i])] ^ (crc >> 8);
  return ~crc;
}

/* Marks composites below `limit`, then counts primes and hashes the bitmap. */
static uint64_t sieve_round(uint32_t limit) {
  uint32_t words = (limit + 63u) / 64u;
  for (uint32_t w = 0; w < words; w++) sieve[w] = 0;
  sieve[0] = 3; /* 0 and 1 are not prime */
  for (uint32_t i = 2; i * i < limit; i++) {
    if ((sieve[i >> 6] >> (i & 63u)) & 1u) continue;
    for (uint32_t j = i * i; j < limit; j += i) sieve[j >> 6] |= 1ull << (j & 63u);
  }
  uint64_t primes = 0;
  uint64_t mix = 0;
  for (uint32_t w = 0; w < words; w++) {
    uint64_t v = ~sieve[w];
    if (w == words - 1u && (limit & 63u) != 0) v &= (1ull << (limit & 63u)) - 1u;
    primes += popcount64(v);
    mix = rotl64(mix, 7) ^ v;
  }
  return (primes << 40) ^ mix;
}

static void shuffle_round(void) {
  for (uint32_t i = LIST_NODES - 1u; i > 0; i--) {
    uint32_t j = (uint32_t)((lcg_next() >> 16) % (uint64_t)(i + 1u));
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static struct node *list_build(void) {
  for (uint32_t i = 0; i < LIST_NODES; i++) {
    struct node *n = &nodes[perm[i]];
    n->next = i + 1u < LIST_NODES ? &nodes[perm[i + 1u]] : 0;
    n->val = lcg_next();
  }
  return &nodes[perm[0]];
}

static uint64_t list_walk(const struct node *head, uint64_t h) {
  uint64_t below = 0;
  for (int pass = 0; pass < LIST_PASSES; pass++) {
    for (const struct node *n = head; n; n = n->next) {
      h = (h ^ n->val) * FNV_PRIME;
      if ((int64_t)n->val < (int64_t)h) below++;
    }
  }
  return h + below;
}

uint64_t bench_run(void) {
  rng = FNV_OFFSET;
  crc_init();
  for (uint32_t i = 0; i < CRC_BYTES / 8u; i++) crc_buf[i] = lcg_next();
  for (uint32_t i = 0; i < LIST_NODES; i++) perm[i] = i;

  uint8_t *bytes = (uint8_t *)crc_buf;
  uint64_t sum = FNV_OFFSET;
  for (uint32_t r = 0; r < ROUNDS; r++) {
    bytes[(r * 40503u) % CRC_BYTES] ^= (uint8_t)(r + 1u);
    uint64_t crc = crc64(sum, bytes, CRC_BYTES);
    uint64_t primes = sieve_round(SIEVE_BITS - r * 1237u);
    shuffle_round();
    uint64_t chase = list_walk(list_build(), sum ^ crc);

    sum = rotl64(sum, 13u + r) ^ crc;
    sum += primes;
    sum ^= chase;

    /* Divisors: never zero; the signed one never -1 (bit 5 clear), so no overflow. */
    int64_t sd = (int64_t)((rotl64(sum, 29) | 3u) & ~(1ull << 5));
    int64_t q = (int64_t)sum / sd;
    uint64_t ud = (sum >> ((r + 7u) & 63u)) | 1u;
    uint64_t uq = sum / ud;
    uint64_t ur = (sum ^ FNV_OFFSET) % ud;
    sum ^= (uint64_t)q ^ (uq << 7) ^ ur;
  }
  return sum;
}
