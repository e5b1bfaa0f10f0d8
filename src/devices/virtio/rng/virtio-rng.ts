import type { VirtioDevice, VirtioHost } from "../device.js";
import { DeviceId } from "../spec.js";

/** Where random bytes come from (the host CSPRNG; tests inject their own). */
export interface EntropySource {
  /** Fills `dst` with random bytes (at most 65536 at a time). */
  fill(dst: Uint8Array<ArrayBuffer>): void;
}

const QUEUE_SIZE = 64;
/** Random bytes drawn from the source at a time (getRandomValues' per-call limit). */
const POOL = 65536;
/** Most bytes given per request (the device may fill less than the whole buffer, §5.4.6). */
const MAX_PER_REQUEST = 65536;

/**
 * virtio-rng (entropy device, ID 4): one request queue; each device-writable buffer the driver posts
 * gets up to 64 KiB of random bytes from the host and is returned at once. Bytes come from a pool
 * refilled from the source 64 KiB at a time and are never handed out twice. A chain without writable
 * bytes is returned with length 0; a chain the device cannot use (a buffer outside RAM) stops the queue.
 */
export class VirtioRng implements VirtioDevice {
  readonly name = "virtio-rng";
  readonly deviceId = DeviceId.ENTROPY;
  readonly features: readonly number[] = [0];
  readonly queueSizes: readonly number[] = [QUEUE_SIZE];
  readonly configSize = 0;
  private host!: VirtioHost;
  private readonly pool = new Uint8Array(POOL);
  /** Pool bytes [next, POOL) are still unused. */
  private next = POOL;

  constructor(private readonly entropy: EntropySource) {}

  attach(host: VirtioHost): void {
    this.host = host;
  }

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  activate(): void {
    this.notify(0);
  }

  notify(index: number): void {
    const q = this.host.queue(index);
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null) {
        this.host.fail(index, chain.fault);
        break;
      }
      const total = Math.min(chain.writableBytes, MAX_PER_REQUEST);
      let done = 0;
      while (done < total) {
        if (this.next === POOL) {
          this.entropy.fill(this.pool);
          this.next = 0;
        }
        const n = Math.min(POOL - this.next, total - done);
        chain.writeBytes(done, this.pool, this.next, n);
        // Wipe what was handed out: no byte is ever given twice.
        this.pool.fill(0, this.next, this.next + n);
        this.next += n;
        done += n;
      }
      q.push(chain, total);
      used = true;
    }
    if (used) this.host.signalUsed(index);
  }

  reset(): void {}

  snapshot(): { version: 1 } {
    return { version: 1 };
  }

  restore(state: unknown): void {
    if (typeof state !== "object" || state === null || (state as { version?: unknown }).version !== 1) {
      throw new TypeError("virtio-rng snapshot: unsupported version");
    }
  }
}
