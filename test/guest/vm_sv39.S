# Sv39 address translation (3 levels; 4 KiB, 2 MiB and 1 GiB pages); see vm_body.inc.
#define VM_LEVELS 3
#define SATP_MODE SATP_SV39
#define NONCANON_VA 0x0000008000000000   /* bit 39 set, bit 38 clear */
#include "vm_body.inc"
