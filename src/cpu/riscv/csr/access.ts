/**
 * Which CSR instructions the current privilege may execute (privileged spec 1.12, section 2.1 and the
 * gates of mcounteren/scounteren, mstatus.FS, mstatus.TVM and Sstc).
 */
import { Priv } from "../state.js";
import { Counter, counterEnabled } from "./counters.js";
import { Csr } from "./csr-numbers.js";
import type { CsrState } from "./csr-state.js";
import { Status } from "./status.js";

/**
 * Whether the current privilege may use an existing CSR: csr[9:8] is the lowest privilege allowed, and a
 * few CSRs have extra gates. Unknown numbers pass here and fail in the read/write switches.
 */
export function accessible(r: CsrState, csr: number): boolean {
  const priv = r.priv;
  if (priv < ((csr >>> 8) & 3)) return false;
  if (csr <= Csr.FCSR) return r.fs !== 0;
  if (priv === Priv.M) return true;
  if (csr >= Csr.CYCLE && csr <= Csr.HPMCOUNTER31) return counterEnabled(r, csr - Csr.CYCLE);
  // Only S-mode gets this far for these two: U fails the csr[9:8] check above.
  if (csr === Csr.SATP) return (r.status & Status.TVM) === 0;
  if (csr === Csr.STIMECMP) return r.stce && (r.mcounteren & (1 << Counter.TIME)) !== 0;
  return true;
}

/** mhpmcounter3-31 and mhpmevent3-31: no events are implemented, so all read 0 and ignore writes. */
export function isHpmMachineCsr(csr: number): boolean {
  return (
    (csr >= Csr.MHPMCOUNTER3 && csr <= Csr.MHPMCOUNTER31) || (csr >= Csr.MHPMEVENT3 && csr <= Csr.MHPMEVENT31)
  );
}
