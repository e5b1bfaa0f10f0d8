import type { ConsoleSink } from "../machine/riscv-virt/board.js";

/**
 * Guest console output to a host stream, batched: one write per burst instead of one per byte. The engine
 * yields to the event loop often, which is when a scheduled flush runs.
 */
export class BufferedOutput implements ConsoleSink {
  private buffer = new Uint8Array(4096);
  private length = 0;
  private scheduled = false;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  write(byte: number): void {
    if (this.length === this.buffer.length) this.flush();
    this.buffer[this.length++] = byte;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.length === 0) return;
    this.stream.write(Buffer.from(this.buffer.subarray(0, this.length)));
    this.length = 0;
  }
}
