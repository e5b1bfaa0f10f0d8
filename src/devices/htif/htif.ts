import type { GuestMemory } from "../device.js";

/** What an HTIF command asks of the host. */
export interface HtifHost {
  /** The guest finished: code 0 for pass, else the failure code. */
  exit(code: number): void;
  putchar(byte: number): void;
}

/**
 * The Berkeley host-target interface as riscv-tests and Spike use it: a pair of 64-bit mailboxes in guest
 * RAM (`tohost`, `fromhost`, found through ELF symbols). A store to tohost is a command: device in bits
 * 63:56, command in 55:48, payload below. Device 0 command 0 with payload bit 0 set is "exit with code
 * payload >> 1"; device 1 command 1 prints the low byte.
 */
export class Htif {
  private readonly view: DataView;

  constructor(
    private readonly memory: GuestMemory,
    readonly tohost: number,
    readonly fromhost: number | null,
    private readonly host: HtifHost,
  ) {
    if (!memory.contains(tohost, 8) || (fromhost !== null && !memory.contains(fromhost, 8))) {
      throw new RangeError("HTIF mailboxes must lie in RAM");
    }
    this.view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.byteLength);
  }

  /** Called after the guest stored into the page holding tohost. Returns true if the guest exited. */
  onStore(paddr: number, size: number): boolean {
    if (paddr + size <= this.tohost || paddr >= this.tohost + 8) return false;
    const at = this.tohost - this.memory.base;
    const lo = this.view.getUint32(at, true);
    const hi = this.view.getUint32(at + 4, true);
    // A 64-bit command may arrive as two 32-bit stores: act once the high word (device) is written,
    // or on a low-word-only exit command.
    if (lo === 0 && hi === 0) return false;
    const device = hi >>> 24;
    const command = (hi >>> 16) & 0xff;
    const payloadHigh = hi & 0xffff;
    if (device === 0 && command === 0 && (lo & 1) === 1) {
      this.host.exit(payloadHigh * 2 ** 31 + (lo >>> 1));
      return true;
    }
    if (device === 1 && command === 1) {
      this.host.putchar(lo & 0xff);
      this.view.setUint32(at, 0, true);
      this.view.setUint32(at + 4, 0, true);
      if (this.fromhost !== null) {
        const f = this.fromhost - this.memory.base;
        this.view.setUint32(f, 1, true);
        this.view.setUint32(f + 4, (1 << 24) | (1 << 16), true);
      }
    }
    return false;
  }
}
