/* The workload compiled for the host: prints the checksum the guests must print. */
#include <inttypes.h>
#include <stdio.h>

#include "work.h"

int main(void) {
  printf("%016" PRIx64 "\n", bench_run());
  return 0;
}
