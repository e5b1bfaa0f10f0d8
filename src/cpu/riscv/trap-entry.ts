import { CsrEffect } from "./csr/csr-file.js";
import { pendingInterrupt } from "./csr/interrupts.js";
import { enterTrap } from "./csr/trap.js";
import type { Hart } from "./hart.js";
import { CallStatus, HartOffset } from "./state.js";

/** More host calls than this in one slice without the slice ending means a trap storm: end the slice
 *  anyway so the engine stays responsive (a guest can loop on a faulting handler). */
const CALLS_PER_SLICE = 100_000;
const pcOut = new Int32Array(2);

/** Takes a trap (exception or interrupt) at the hart's current pc; answers the wasm side's status. */
export function takeTrap(
  h: Hart,
  cause: number,
  interrupt: boolean,
  tvalLo: number,
  tvalHi: number,
): CallStatus {
  enterTrap(h.csr, cause, interrupt, h.pcLo, h.pcHi, tvalLo, tvalHi, pcOut);
  h.traps++;
  h.trapCounts[interrupt ? 32 + (cause & 31) : cause & 31]++;
  h.setPc(pcOut[0] as number, pcOut[1] as number);
  h.state[HartOffset.RESERVATION_VALID >> 2] = 0;
  h.selectTlb();
  return endOfCall(h);
}

/** Acts on what a CSR write or xRET changed, then takes an interrupt it may have unmasked. */
export function applyEffects(h: Hart, effects: number): CallStatus {
  if (effects & CsrEffect.FLUSH_TLB) h.tlb.flushAll();
  if (effects & CsrEffect.TLB_CONTEXT) {
    // Cached pages stay valid when permissions widen; only a cleared SUM or MXR takes some away.
    const { sum, mxr } = h.csr;
    if (h.cachedSum && !sum) h.tlb.revokeSupervisorUserAccess();
    if (h.cachedMxr && !mxr) h.tlb.revokeExecutableReads();
    h.cachedSum = sum;
    h.cachedMxr = mxr;
    h.selectTlb();
  }
  if (effects & CsrEffect.CHECK_INTERRUPTS) {
    const cause = pendingInterrupt(h.csr);
    if (cause >= 0) return takeTrap(h, cause, true, 0, 0);
  }
  return endOfCall(h);
}

/** Takes the highest-priority deliverable interrupt, if any. Returns true if one was taken. */
export function deliverInterrupt(h: Hart): boolean {
  const cause = pendingInterrupt(h.csr);
  if (cause < 0) return false;
  takeTrap(h, cause, true, 0, 0);
  return true;
}

export function endOfCall(h: Hart): CallStatus {
  return ++h.callsThisSlice > CALLS_PER_SLICE ? CallStatus.EXIT : CallStatus.REDIRECT;
}
