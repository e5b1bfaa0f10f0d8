/**
 * What a CSR write or trap changed that the emulator must act on. Bits combine; -1 from a write means
 * "illegal instruction" and is never combined with these.
 */
export enum CsrEffect {
  NONE = 0,
  /** Translations may have changed for every address (satp, PMP): drop all TLB entries. */
  FLUSH_TLB = 1,
  /** Which TLB set or permissions apply changed (privilege, MPRV/MPP, SUM, MXR): re-select TLB sets. */
  TLB_CONTEXT = 2,
  /** An interrupt may now be deliverable: call pendingInterrupt() before the next instruction. */
  CHECK_INTERRUPTS = 4,
}
