/**
 * Where a virtio-net device's frames go and come from: a port of an in-process virtual switch
 * (src/net/), a host TAP interface (src/host/tap.ts), a test. Frames are whole Ethernet frames
 * (destination MAC first, no preamble, no FCS), without the virtio header.
 */
export interface NetBackend {
  /**
   * A frame from the guest. `frame` is only valid during the call (the device reuses the buffer):
   * a backend that keeps it, or hands it on later, copies it. Never throws for a frame it cannot
   * carry: it drops it (and counts it).
   */
  send(frame: Uint8Array): void;
  /**
   * Sets who receives the frames meant for the guest (one receiver; a later call replaces it). The
   * frame passed to `handler` is only valid during the call, like `send`'s.
   */
  onReceive(handler: (frame: Uint8Array) => void): void;
  /** Disconnects: no more frames either way; resources (file descriptors, switch ports) are freed. */
  close(): void;
}

/** A backend that only records what the guest sent, and lets a test inject frames (`inject`). */
export class RecordingNetBackend implements NetBackend {
  readonly sent: Uint8Array[] = [];
  closed = false;
  private handler: ((frame: Uint8Array) => void) | null = null;

  send(frame: Uint8Array): void {
    this.sent.push(frame.slice());
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** A frame for the guest, as a host network would deliver it. */
  inject(frame: Uint8Array): void {
    this.handler?.(frame);
  }

  close(): void {
    this.closed = true;
    this.handler = null;
  }
}
