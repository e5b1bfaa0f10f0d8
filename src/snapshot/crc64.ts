/**
 * CRC-64/XZ (the ECMA-182 polynomial, reflected; what xz and Go's crc64.ECMA compute), incremental, on
 * 32-bit halves so that it needs no BigInt in the inner loop.
 */
const TABLE_LO = new Uint32Array(256);
const TABLE_HI = new Uint32Array(256);
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
    TABLE_LO[n] = lo;
    TABLE_HI[n] = hi;
  }
}

export class Crc64 {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(bytes: Uint8Array): this {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < bytes.length; i++) {
      const index = (lo ^ (bytes[i] as number)) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ (TABLE_LO[index] as number);
      hi = (hi >>> 8) ^ (TABLE_HI[index] as number);
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
