import type { NetBackend } from "../devices/virtio/net/backend.js";

/**
 * One end of a bounded Ethernet frame link between two threads (a VM's worker and the daemon that
 * owns the switch), over a message channel the owner supplies: `post` sends a message to the other
 * end, and the owner feeds whatever arrives from there to `receive`. Both ends are a FrameLink; each is
 * a NetBackend (a virtio-net device plugs into the worker's end, a switch port into the daemon's).
 *
 * - Frames sent in one turn of the event loop travel together: each is copied once (the caller's
 *   buffer is only valid during `send`) into a batch buffer that is transferred, not cloned, at the end
 *   of the turn (a microtask).
 * - In flight is bounded: a frame counts from `send` until the other end has handed it on and said so
 *   (one acknowledgement per batch). A frame that would exceed `maxFrames` or `maxBytes` in flight is
 *   dropped and counted, as a switch drops, so a receiver that falls behind (or stops) costs at most
 *   the window, never a growing queue.
 *
 * No Node API: a MessagePort, a browser's or Node's, carries it.
 */

export const DEFAULT_LINK_FRAMES = 512;
export const DEFAULT_LINK_BYTES = 4 * 2 ** 20;
/** Batch buffers start at this size (a batch of one larger frame gets a buffer of its own size). */
const BATCH_BYTES = 32 * 1024;

/** What crosses the channel: a batch of frames (back to back in `data`), or an acknowledgement. */
export type LinkMessage =
  | { t: "frames"; data: ArrayBuffer; lengths: Uint32Array }
  | { t: "ack"; frames: number; bytes: number };

export interface FrameLinkOptions {
  /** Sends a message to the other end, transferring `transfer` (postMessage). */
  post(message: LinkMessage, transfer: ArrayBuffer[]): void;
  /** Called once by close(): the owner closes its channel. */
  onClose?(): void;
  /** Most frames in flight toward the other end (default 512). */
  maxFrames?: number;
  /** Most bytes in flight toward the other end (default 4 MiB). */
  maxBytes?: number;
}

export interface LinkCounters {
  /** Frames (bytes) accepted toward the other end. */
  sentFrames: number;
  sentBytes: number;
  /** Frames dropped because the window toward the other end was full. */
  dropped: number;
  /** Frames from the other end handed to the receive handler (or dropped for want of one). */
  receivedFrames: number;
  receivedBytes: number;
  /** Frames from the other end that arrived while no receive handler was set. */
  receivedUnhandled: number;
  /** The most frames that were ever in flight toward the other end at once. */
  peakInFlight: number;
}

export class FrameLink implements NetBackend {
  readonly counters: LinkCounters = {
    sentFrames: 0,
    sentBytes: 0,
    dropped: 0,
    receivedFrames: 0,
    receivedBytes: 0,
    receivedUnhandled: 0,
    peakInFlight: 0,
  };
  private readonly maxFrames: number;
  private readonly maxBytes: number;
  private handler: ((frame: Uint8Array) => void) | null = null;
  private closed = false;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** The batch being filled this turn: its buffer, bytes used, and frame lengths. */
  private batch: ArrayBuffer | null = null;
  private batchUsed = 0;
  private lengths: number[] = [];
  private flushQueued = false;

  constructor(private readonly options: FrameLinkOptions) {
    this.maxFrames = options.maxFrames ?? DEFAULT_LINK_FRAMES;
    this.maxBytes = options.maxBytes ?? DEFAULT_LINK_BYTES;
    if (!Number.isInteger(this.maxFrames) || this.maxFrames < 1) {
      throw new RangeError("frame link: maxFrames must be a positive integer");
    }
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1) {
      throw new RangeError("frame link: maxBytes must be a positive integer");
    }
  }

  /** Frames and bytes sent but not yet acknowledged by the other end. */
  get pending(): { frames: number; bytes: number } {
    return { frames: this.inFlight, bytes: this.inFlightBytes };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    const n = frame.length;
    if (this.inFlight >= this.maxFrames || this.inFlightBytes + n > this.maxBytes) {
      this.counters.dropped++;
      return;
    }
    this.inFlight++;
    this.inFlightBytes += n;
    if (this.inFlight > this.counters.peakInFlight) this.counters.peakInFlight = this.inFlight;
    this.counters.sentFrames++;
    this.counters.sentBytes += n;
    if (this.batch !== null && this.batchUsed + n > this.batch.byteLength) this.flush();
    if (this.batch === null) {
      this.batch = new ArrayBuffer(Math.max(BATCH_BYTES, n));
      this.batchUsed = 0;
    }
    new Uint8Array(this.batch, this.batchUsed, n).set(frame);
    this.batchUsed += n;
    this.lengths.push(n);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** A message from the other end. Anything that is not a LinkMessage is ignored. */
  receive(message: unknown): void {
    if (this.closed || typeof message !== "object" || message === null) return;
    const m = message as LinkMessage;
    if (m.t === "ack") {
      if (!Number.isSafeInteger(m.frames) || !Number.isSafeInteger(m.bytes)) return;
      this.inFlight = Math.max(0, this.inFlight - m.frames);
      this.inFlightBytes = Math.max(0, this.inFlightBytes - m.bytes);
      return;
    }
    if (m.t !== "frames" || !(m.data instanceof ArrayBuffer) || !(m.lengths instanceof Uint32Array)) return;
    let offset = 0;
    let frames = 0;
    for (const n of m.lengths) {
      if (offset + n > m.data.byteLength) break;
      const frame = new Uint8Array(m.data, offset, n);
      offset += n;
      frames++;
      this.counters.receivedFrames++;
      this.counters.receivedBytes += n;
      // A handler that closes the link (a port unplugged by what it received) ends the batch.
      if (this.handler === null) this.counters.receivedUnhandled++;
      else this.handler(frame);
      if (this.closed) return;
    }
    this.options.post({ t: "ack", frames, bytes: offset }, []);
  }

  /** No more frames either way; what is in this turn's batch is discarded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = null;
    this.batch = null;
    this.lengths = [];
    this.options.onClose?.();
  }

  private flush(): void {
    const batch = this.batch;
    if (batch === null || this.closed) return;
    const lengths = Uint32Array.from(this.lengths);
    this.batch = null;
    this.lengths = [];
    // The buffer is transferred whole; a batch much smaller than it is cut to size first.
    const data = this.batchUsed * 2 > batch.byteLength ? batch : batch.slice(0, this.batchUsed);
    this.options.post({ t: "frames", data, lengths }, [data, lengths.buffer]);
  }
}
