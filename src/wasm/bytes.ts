/** A growable byte buffer with the LEB128 encodings the WebAssembly binary format uses. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;

  byte(b: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = b & 0xff;
  }

  bytes(data: ArrayLike<number>): void {
    for (let i = 0; i < data.length; i++) this.byte(data[i] as number);
  }

  u32(value: number): void {
    value >>>= 0;
    do {
      let b = value & 0x7f;
      value >>>= 7;
      if (value !== 0) b |= 0x80;
      this.byte(b);
    } while (value !== 0);
  }

  s32(value: number): void {
    value |= 0;
    for (;;) {
      const b = value & 0x7f;
      value >>= 7;
      const done = (value === 0 && (b & 0x40) === 0) || (value === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return;
    }
  }

  /** Signed LEB128 of the 64-bit two's-complement value hi:lo (each a 32-bit integer). */
  s64(lo: number, hi: number): void {
    lo >>>= 0;
    hi |= 0;
    for (;;) {
      const b = lo & 0x7f;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>= 7;
      const rest = hi === 0 && lo === 0 ? 0 : hi === -1 && lo === 0xffffffff ? -1 : 1;
      const done = (rest === 0 && (b & 0x40) === 0) || (rest === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return;
    }
  }

  name(text: string): void {
    const encoded = new TextEncoder().encode(text);
    this.u32(encoded.length);
    this.bytes(encoded);
  }

  /** Appends another writer's bytes prefixed by their length (a section or a function body). */
  sized(inner: ByteWriter): void {
    this.u32(inner.length);
    this.bytes(inner.view());
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
