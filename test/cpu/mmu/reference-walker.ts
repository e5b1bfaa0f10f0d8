/**
 * A deliberately plain Sv39/Sv48 walker in BigInt, following the numbered steps of the privileged spec's
 * section 4.3.2 one by one. It is the oracle for the property test, so it shares no code with the
 * implementation. Emulator-specific rule: physical addresses at or above 2^53 are access faults.
 */
import { TranslateResult } from "../../../src/cpu/riscv/mmu/translate.js";
import { Access, Priv } from "../../../src/cpu/riscv/state.js";

export interface WalkEnv {
  /** The PTE at addr, or undefined when addr is not RAM. */
  read(addr: bigint): bigint | undefined;
  write(addr: bigint, value: bigint): void;
  /** PMP verdicts for implicit S-mode page-table reads and writes. */
  pteReadable(addr: bigint): boolean;
  pteWritable(addr: bigint): boolean;
}

export interface WalkRequest {
  vaddr: bigint;
  access: Access;
  priv: Priv;
  sum: boolean;
  mxr: boolean;
  mode: number;
  rootPpn: bigint;
}

const LIMIT = 1n << 53n;
const bit = (value: bigint, n: number): boolean => ((value >> BigInt(n)) & 1n) === 1n;

export function referenceTranslate(
  env: WalkEnv,
  req: WalkRequest,
): { result: TranslateResult; paddr: bigint } {
  const fail = (result: TranslateResult) => ({ result, paddr: -1n });
  const va = BigInt.asUintN(64, req.vaddr);
  if (req.priv === Priv.M || req.mode === 0) {
    return va >= LIMIT ? fail(TranslateResult.ACCESS_FAULT) : { result: TranslateResult.OK, paddr: va };
  }
  const levels = req.mode === 9 ? 4 : 3;
  const vaBits = 12 + 9 * levels;
  // Bits 63..vaBits must all equal bit vaBits-1.
  const upper = va >> BigInt(vaBits - 1);
  if (upper !== 0n && upper !== (1n << BigInt(64 - vaBits + 1)) - 1n) return fail(TranslateResult.PAGE_FAULT);

  // Step 1.
  let a = req.rootPpn * 4096n;
  let i = levels - 1;
  let pte: bigint;
  let pteAddr: bigint;
  for (;;) {
    // Step 2.
    pteAddr = a + ((va >> BigInt(12 + 9 * i)) & 511n) * 8n;
    const value = pteAddr + 8n <= LIMIT && env.pteReadable(pteAddr) ? env.read(pteAddr) : undefined;
    if (value === undefined) return fail(TranslateResult.ACCESS_FAULT);
    pte = value;
    // Step 3, with bits 63..54 reserved.
    if (!bit(pte, 0) || (!bit(pte, 1) && bit(pte, 2)) || pte >> 54n !== 0n)
      return fail(TranslateResult.PAGE_FAULT);
    // Step 4.
    if (bit(pte, 1) || bit(pte, 3)) break;
    if (bit(pte, 4) || bit(pte, 6) || bit(pte, 7)) return fail(TranslateResult.PAGE_FAULT);
    i = i - 1;
    if (i < 0) return fail(TranslateResult.PAGE_FAULT);
    a = ((pte >> 10n) & ((1n << 44n) - 1n)) * 4096n;
  }

  // Step 5.
  const [r, w, x, u] = [bit(pte, 1), bit(pte, 2), bit(pte, 3), bit(pte, 4)];
  if (req.priv === Priv.U && !u) return fail(TranslateResult.PAGE_FAULT);
  if (req.priv === Priv.S && u && (!req.sum || req.access === Access.FETCH))
    return fail(TranslateResult.PAGE_FAULT);
  const allowed = req.access === Access.FETCH ? x : req.access === Access.STORE ? w : r || (req.mxr && x);
  if (!allowed) return fail(TranslateResult.PAGE_FAULT);

  // Step 6.
  const ppn = (pte >> 10n) & ((1n << 44n) - 1n);
  if (i > 0 && (ppn & ((1n << BigInt(9 * i)) - 1n)) !== 0n) return fail(TranslateResult.PAGE_FAULT);

  // Step 7 (hardware A/D update).
  const updated = pte | (1n << 6n) | (req.access === Access.STORE ? 1n << 7n : 0n);
  if (updated !== pte) {
    if (!env.pteWritable(pteAddr)) return fail(TranslateResult.ACCESS_FAULT);
    env.write(pteAddr, updated);
  }

  // Step 8.
  const offsetBits = BigInt(12 + 9 * i);
  const paddr = ((ppn >> BigInt(9 * i)) << offsetBits) | (va & ((1n << offsetBits) - 1n));
  return paddr >= LIMIT ? fail(TranslateResult.ACCESS_FAULT) : { result: TranslateResult.OK, paddr };
}
