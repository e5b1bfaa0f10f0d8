# Sv48 address translation (4 levels; 4 KiB, 2 MiB, 1 GiB and 512 GiB pages); see vm_body.inc.
#define VM_LEVELS 4
#define SATP_MODE SATP_SV48
#define NONCANON_VA 0x0001000000000000   /* bit 48 set, bit 47 clear */
#include "vm_body.inc"
