/*
 * The CPU benchmark's workload: portable C (fixed-width types only, no library calls, no undefined
 * behaviour), built three times: for the bare-metal M-mode guest, for the Sv39 S-mode guest, and natively
 * for the host so the expected checksum comes from a compiler we did not write.
 */
#ifndef VIREO_BENCH_WORK_H
#define VIREO_BENCH_WORK_H

#include <stdint.h>

/* Runs every round of the workload and returns its 64-bit checksum. */
uint64_t bench_run(void);

#endif
