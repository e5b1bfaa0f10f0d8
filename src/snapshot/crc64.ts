/**
 * CRC-64/XZ (the ECMA-182 polynomial, reflected; what xz and Go's crc64.ECMA compute), incremental, on
 * 32-bit halves so that it needs no BigInt in the inner loop.
 */
/** Slicing-by-8: table k advances a byte k further; eight bytes per step instead of one. */
const SLICES = 8;
const LO = new Uint32Array(256 * SLICES);
const HI = new Uint32Array(256 * SLICES);
{
  // 0xC96C5795D7870F42 as two halves.
  const polyLo = 0xd7870f42;
  const polyHi = 0xc96c5795;
  for (let n = 0; n < 256; n++) {
    let lo = n;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | (hi << 31)) >>> 0;
      hi >>>= 1;
      if (carry) {
        lo = (lo ^ polyLo) >>> 0;
        hi = (hi ^ polyHi) >>> 0;
      }
    }
    LO[n] = lo;
    HI[n] = hi;
  }
  for (let t = 1; t < SLICES; t++) {
    for (let n = 0; n < 256; n++) {
      const lo = LO[(t - 1) * 256 + n] as number;
      const hi = HI[(t - 1) * 256 + n] as number;
      const i = lo & 0xff;
      LO[t * 256 + n] = (((lo >>> 8) | (hi << 24)) ^ (LO[i] as number)) >>> 0;
      HI[t * 256 + n] = ((hi >>> 8) ^ (HI[i] as number)) >>> 0;
    }
  }
}

export class Crc64 {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(bytes: Uint8Array): this {
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    const fast = bytes.length - (bytes.length % 8);
    for (; i < fast; i += 8) {
      const a =
        lo ^
        ((bytes[i] as number) |
          ((bytes[i + 1] as number) << 8) |
          ((bytes[i + 2] as number) << 16) |
          ((bytes[i + 3] as number) << 24));
      const b =
        hi ^
        ((bytes[i + 4] as number) |
          ((bytes[i + 5] as number) << 8) |
          ((bytes[i + 6] as number) << 16) |
          ((bytes[i + 7] as number) << 24));
      // Byte j of the eight goes through table 7 - j: the first byte has the furthest to travel.
      let nlo = 0;
      let nhi = 0;
      for (let j = 0; j < 8; j++) {
        const byte = (j < 4 ? a >>> (j * 8) : b >>> ((j - 4) * 8)) & 0xff;
        const t = (7 - j) * 256 + byte;
        nlo ^= LO[t] as number;
        nhi ^= HI[t] as number;
      }
      lo = nlo;
      hi = nhi;
    }
    for (; i < bytes.length; i++) {
      const index = (lo ^ (bytes[i] as number)) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ (LO[index] as number);
      hi = (hi >>> 8) ^ (HI[index] as number);
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }

  /** The CRC so far as (lo, hi) 32-bit halves. */
  digest(): [number, number] {
    return [(this.lo ^ 0xffffffff) >>> 0, (this.hi ^ 0xffffffff) >>> 0];
  }

  /** The CRC as 16 hex digits (for messages and tests). */
  hex(): string {
    const [lo, hi] = this.digest();
    return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
  }
}

export function crc64(bytes: Uint8Array): [number, number] {
  return new Crc64().update(bytes).digest();
}
