/**
 * A VM's console output as the daemon keeps it: the last 64 KiB, so that a client that attaches late
 * still sees the boot messages or the prompt, while a guest that prints forever costs bounded memory.
 * It never fills (no `writable`): a guest is never stalled because nobody reads its console.
 */
import type { ByteSink } from "../devices/byte-sink.js";

export const CONSOLE_RING_BYTES = 64 * 1024;

export class ConsoleRing implements ByteSink {
  private readonly bytes: Uint8Array;
  /** Bytes ever written; the ring holds the last min(total, capacity) of them. */
  private total = 0;
  /** Each follower with how many of the pending bytes predate it (contents() already holds those). */
  private readonly followers = new Map<(chunk: Uint8Array) => void, { skip: number }>();
  private pending: number[] = [];
  private flushQueued = false;

  constructor(readonly capacity = CONSOLE_RING_BYTES) {
    this.bytes = new Uint8Array(capacity);
  }

  write(byte: number): void {
    this.bytes[this.total % this.capacity] = byte;
    this.total++;
    if (this.followers.size === 0) return;
    // Followers get chunks, not one callback per byte from inside the guest's slice.
    this.pending.push(byte);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const chunk = Uint8Array.from(this.pending);
    this.pending = [];
    for (const [f, at] of [...this.followers]) {
      const own = at.skip === 0 ? chunk : chunk.subarray(at.skip);
      at.skip = 0;
      if (own.length > 0) f(own);
    }
  }

  /** Bytes written since the VM was defined (including those the ring has dropped). */
  get written(): number {
    return this.total;
  }

  /** What the ring holds, oldest first. */
  contents(): Uint8Array {
    const held = Math.min(this.total, this.capacity);
    const out = new Uint8Array(held);
    const start = this.total - held;
    for (let i = 0; i < held; i++) out[i] = this.bytes[(start + i) % this.capacity] as number;
    return out;
  }

  /**
   * Calls `listener` with each later chunk of output, none of the bytes written before this call
   * (so that contents() then follow() is each byte once); returns a function that stops it.
   */
  follow(listener: (chunk: Uint8Array) => void): () => void {
    this.followers.set(listener, { skip: this.pending.length });
    return () => this.followers.delete(listener);
  }
}
