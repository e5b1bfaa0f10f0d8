import type { EntropySource } from "../devices/virtio/rng/virtio-rng.js";

/** The host CSPRNG through Web Crypto (Node and browsers alike). */
export const cryptoEntropy: EntropySource = {
  fill(dst: Uint8Array<ArrayBuffer>): void {
    for (let at = 0; at < dst.length; at += 65536)
      crypto.getRandomValues(dst.subarray(at, Math.min(dst.length, at + 65536)));
  },
};
