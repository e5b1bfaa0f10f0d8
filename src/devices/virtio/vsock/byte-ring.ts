/**
 * A fixed-capacity FIFO of bytes over one preallocated array: data is appended at the tail and taken from
 * the head, wrapping around. Nothing here allocates after construction.
 */
export class ByteRing {
  readonly bytes: Uint8Array;
  /** Index of the oldest byte. */
  head = 0;
  /** Bytes held. */
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  get capacity(): number {
    return this.bytes.length;
  }

  get free(): number {
    return this.bytes.length - this.length;
  }

  /** Index where the next appended byte goes. */
  get tail(): number {
    const at = this.head + this.length;
    return at >= this.bytes.length ? at - this.bytes.length : at;
  }

  /** Free bytes from the tail before the array wraps (what one contiguous append can take). */
  get tailRun(): number {
    return Math.min(this.free, this.bytes.length - this.tail);
  }

  /** Held bytes from the head before the array wraps. */
  get headRun(): number {
    return Math.min(this.length, this.bytes.length - this.head);
  }

  /** Appends up to `length` bytes of src from `offset`; returns how many fit. */
  write(src: Uint8Array, offset: number, length: number): number {
    const n = Math.min(length, this.free);
    let done = 0;
    while (done < n) {
      const run = Math.min(n - done, this.tailRun);
      const at = this.tail;
      this.bytes.set(src.subarray(offset + done, offset + done + run), at);
      this.length += run;
      done += run;
    }
    return n;
  }

  /** Records `n` bytes written in place at the tail (at most tailRun). */
  commit(n: number): void {
    this.length += Math.min(n, this.tailRun);
  }

  /** Drops up to `n` bytes from the head; returns how many. */
  discard(n: number): number {
    const k = Math.min(Math.max(0, n), this.length);
    this.head += k;
    if (this.head >= this.bytes.length) this.head -= this.bytes.length;
    this.length -= k;
    if (this.length === 0) this.head = 0;
    return k;
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }
}
