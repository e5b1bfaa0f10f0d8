/*
 * Sv39 page tables for the S-mode variant, built in M-mode before paging is on.
 *
 * RAM_BASE .. RAM_BASE + MAPPED_BYTES is identity-mapped with 4 KiB leaf pages only (no megapages), so
 * every access goes through a three-level walk or the TLB. One extra page at ALIAS_VA (another gigapage,
 * its own level-1 and level-0 tables) maps `alias_target`; sv39_check() writes through it and reads the
 * physical page back, which fails if the emulator ignores satp. A and D are preset on every leaf so no
 * page fault is needed for hardware that does not update them.
 */
#include <stdint.h>

#define PTE_V 0x01u
#define PTE_R 0x02u
#define PTE_W 0x04u
#define PTE_X 0x08u
#define PTE_A 0x40u
#define PTE_D 0x80u

#define RAM_BASE 0x80000000ull
#define MAPPED_BYTES (4u << 20)
#define MAPPED_PAGES (MAPPED_BYTES >> 12)
#define LEVEL0_TABLES (MAPPED_PAGES / 512u)
#define ALIAS_VA 0x40000000ull
#define SATP_MODE_SV39 (8ull << 60)

#define PAGE_ALIGNED __attribute__((aligned(4096)))

static PAGE_ALIGNED uint64_t root[512];
static PAGE_ALIGNED uint64_t level1[512];
static PAGE_ALIGNED uint64_t level0[LEVEL0_TABLES][512];
static PAGE_ALIGNED uint64_t alias_level1[512];
static PAGE_ALIGNED uint64_t alias_level0[512];
static PAGE_ALIGNED volatile uint64_t alias_target[512];

static uint64_t pte(uint64_t pa, uint64_t flags) { return ((pa >> 12) << 10) | flags; }

/* Fills the tables (which start zeroed: they are in .bss) and returns the satp value. */
uint64_t sv39_setup(void) {
  root[(RAM_BASE >> 30) & 511u] = pte((uint64_t)(uintptr_t)level1, PTE_V);
  for (uint32_t t = 0; t < LEVEL0_TABLES; t++) level1[t] = pte((uint64_t)(uintptr_t)level0[t], PTE_V);
  for (uint32_t i = 0; i < MAPPED_PAGES; i++)
    level0[i / 512u][i % 512u] =
        pte(RAM_BASE + ((uint64_t)i << 12), PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);

  root[(ALIAS_VA >> 30) & 511u] = pte((uint64_t)(uintptr_t)alias_level1, PTE_V);
  alias_level1[0] = pte((uint64_t)(uintptr_t)alias_level0, PTE_V);
  alias_level0[0] = pte((uint64_t)(uintptr_t)alias_target, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);

  return SATP_MODE_SV39 | ((uint64_t)(uintptr_t)root >> 12);
}

/* Runs in S-mode: a store through the alias must land in alias_target. */
int sv39_check(void) {
  volatile uint64_t *alias = (volatile uint64_t *)(uintptr_t)ALIAS_VA;
  alias[5] = 0x5eed0f5139000001ull;
  return alias_target[5] == 0x5eed0f5139000001ull;
}
