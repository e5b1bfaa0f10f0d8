import fc from "fast-check";

/** Case seeds: case i of a run with seed s is generated from one 32-bit seed, so any case replays alone. */
export function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e37_79b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * fast-check sizes generated values for property tests (arrays of a few elements by default); a fuzzer
 * wants the lengths the arbitraries allow, so the runner and its workers generate at size "large".
 */
export function useFuzzSizes(): void {
  fc.configureGlobal({ baseSize: "large" });
}
