import type { ByteSink } from "../devices/byte-sink.js";

/** Bytes held here before the sink reports itself full, so transmitting devices stall the guest. */
export const OUTPUT_SOFT_LIMIT = 64 * 1024;
/**
 * What writers that cannot wait (HTIF, SBI legacy putchar, emerg_wr, one virtio chain past the soft
 * limit) may add on top; beyond it their bytes are dropped (and counted) rather than grow the host.
 */
export const OUTPUT_HARD_LIMIT = 1024 * 1024;
/** Bytes per stream write: one write per burst instead of one per byte. */
const CHUNK = 4096;

/**
 * Guest console output to a host stream, batched and bounded. The stream's own backpressure is
 * honoured: once `write()` returns false nothing more is written until 'drain', and meanwhile the sink
 * reports itself full, so the guest stalls instead of the host buffering without bound. The engine
 * yields to the event loop often, which is when a scheduled flush and 'drain' run.
 */
export class BufferedOutput implements ByteSink {
  private buffer = new Uint8Array(CHUNK);
  private length = 0;
  private scheduled = false;
  /** The stream said stop; waiting for its 'drain'. */
  private blocked = false;
  private waiters: (() => void)[] = [];
  private waitersScheduled = false;
  private closed = false;
  /** Bytes dropped because a writer that does not wait went past OUTPUT_HARD_LIMIT. */
  dropped = 0;
  private readonly onStreamDrain = () => {
    this.blocked = false;
    this.flush();
  };

  constructor(private readonly stream: NodeJS.WritableStream) {}

  get writable(): boolean {
    return !this.blocked && this.length < OUTPUT_SOFT_LIMIT;
  }

  whenWritable(resume: () => void): void {
    this.waiters.push(resume);
    if (this.writable) this.scheduleWaiters();
  }

  write(byte: number): void {
    if (this.length >= OUTPUT_HARD_LIMIT) {
      this.dropped++;
      return;
    }
    if (this.length === this.buffer.length) this.grow();
    this.buffer[this.length++] = byte;
    if (this.length >= CHUNK && !this.blocked) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands what is buffered to the stream unless it asked us to wait; wakes stalled devices after. */
  flush(): void {
    this.scheduled = false;
    if (this.blocked || this.closed) return;
    if (this.length > 0) {
      // A copy: the stream may hold the chunk after write() returns.
      const ok = this.stream.write(Buffer.from(this.buffer.subarray(0, this.length)));
      this.length = 0;
      if (this.buffer.length > CHUNK) this.buffer = new Uint8Array(CHUNK);
      if (!ok) {
        this.blocked = true;
        this.stream.once("drain", this.onStreamDrain);
        return;
      }
    }
    if (this.waiters.length > 0) this.scheduleWaiters();
  }

  /**
   * The VM ended: hand the stream what is left even if it asked to wait (the guest can add no more, so
   * this is bounded), and stop listening to it.
   */
  close(): void {
    if (this.closed) return;
    if (this.length > 0) this.stream.write(Buffer.from(this.buffer.subarray(0, this.length)));
    this.length = 0;
    this.closed = true;
    this.stream.off("drain", this.onStreamDrain);
    this.waiters = [];
  }

  private scheduleWaiters(): void {
    if (this.waitersScheduled) return;
    this.waitersScheduled = true;
    setImmediate(() => {
      this.waitersScheduled = false;
      if (!this.writable) return;
      const waiters = this.waiters;
      this.waiters = [];
      for (const resume of waiters) resume();
    });
  }

  private grow(): void {
    const bigger = new Uint8Array(Math.min(this.buffer.length * 2, OUTPUT_HARD_LIMIT));
    bigger.set(this.buffer);
    this.buffer = bigger;
  }
}
