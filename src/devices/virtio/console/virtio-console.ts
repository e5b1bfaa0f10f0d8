import { type ByteSink, sinkWritable } from "../../byte-sink.js";
import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import { DeviceId, featureWords } from "../spec.js";

/** Where the guest's console output goes (the host terminal, a test buffer, a web console). */
export type ConsoleSink = ByteSink;

/** Feature bits (virtio 1.2 §5.3.3). */
export const ConsoleFeature = {
  SIZE: 0,
  MULTIPORT: 1,
  EMERG_WRITE: 2,
} as const;

/** Config layout: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
const CONFIG_COLS = 0;
const CONFIG_ROWS = 2;
const CONFIG_MAX_PORTS = 4;
const CONFIG_EMERG_WR = 8;
const CONFIG_SIZE = 12;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
const QUEUE_SIZE = 64;
/** Host input held until the guest posts receive buffers; more is refused (receive's return value). */
const MAX_PENDING_INPUT = 1 << 20;

export interface VirtioConsoleOptions {
  cols?: number;
  rows?: number;
}

/** The console's state as plain data. */
export interface VirtioConsoleState {
  version: 1;
  cols: number;
  rows: number;
  /** Host input not yet delivered to the guest. */
  input: number[];
}

/**
 * virtio-console (ID 3) with a single port (no MULTIPORT): Linux makes it /dev/hvc0. receiveq (0)
 * carries host input, transmitq (1) guest output, which goes straight to the sink (Linux waits for each
 * transmit buffer, so it is returned at once — unless the sink is full, see `transmit`). Host input is buffered until the guest posts receive
 * buffers. VIRTIO_CONSOLE_F_SIZE reports the host terminal's size; `resize` changes it and sends a
 * configuration change interrupt. VIRTIO_CONSOLE_F_EMERG_WRITE: a byte written to emerg_wr is output
 * at once, even before the driver is up.
 */
export class VirtioConsole implements VirtioDevice {
  readonly name = "virtio-console";
  readonly deviceId = DeviceId.CONSOLE;
  readonly features: readonly number[] = featureWords(ConsoleFeature.SIZE, ConsoleFeature.EMERG_WRITE);
  readonly queueSizes: readonly number[] = [QUEUE_SIZE, QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  private readonly config = new ConfigSpace(CONFIG_SIZE);
  private host!: VirtioHost;
  /** Pending host input: a ring buffer that grows up to MAX_PENDING_INPUT. */
  private input = new Uint8Array(256);
  private inputHead = 0;
  private inputCount = 0;
  /** A `whenWritable` callback is registered with the sink. */
  private awaitingSink = false;

  constructor(
    private readonly output: ConsoleSink,
    options: VirtioConsoleOptions = {},
  ) {
    this.setSize(options.cols ?? 80, options.rows ?? 24);
    this.config.u32(CONFIG_MAX_PORTS, 1);
  }

  attach(host: VirtioHost): void {
    this.host = host;
  }

  get cols(): number {
    return this.config.read(CONFIG_COLS, 2);
  }

  get rows(): number {
    return this.config.read(CONFIG_ROWS, 2);
  }

  /** Host input bytes not yet delivered to the guest. */
  get pendingInput(): number {
    return this.inputCount;
  }

  /** The host terminal changed size: update the config space and tell the driver. */
  resize(cols: number, rows: number): void {
    if (cols === this.cols && rows === this.rows) return;
    this.setSize(cols, rows);
    // Before the transport attached us there is no driver to tell.
    this.host?.configChanged();
  }

  /**
   * Host input for the guest (hvc0). Delivered into receive buffers as the guest posts them, buffered
   * meanwhile (up to 1 MiB). Returns how many bytes were taken.
   */
  receive(bytes: Uint8Array): number {
    let taken = 0;
    for (; taken < bytes.length && this.inputCount < MAX_PENDING_INPUT; taken++) {
      if (this.inputCount === this.input.length) this.growInput();
      this.input[(this.inputHead + this.inputCount) % this.input.length] = bytes[taken] as number;
      this.inputCount++;
    }
    this.deliverInput();
    return taken;
  }

  /** emerg_wr (write-only) reads as 0: its bytes in the config space stay zero. */
  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  writeConfig(offset: number, _size: number, value: number): void {
    if (offset === CONFIG_EMERG_WR) this.output.write(value & 0xff);
  }

  activate(): void {
    this.transmit();
    this.deliverInput();
  }

  notify(index: number): void {
    if (index === TRANSMITQ) this.transmit();
    else if (index === RECEIVEQ) this.deliverInput();
  }

  reset(): void {
    // Host input typed before the driver (re)starts stays queued for it.
  }

  snapshot(): VirtioConsoleState {
    const input: number[] = [];
    for (let i = 0; i < this.inputCount; i++)
      input.push(this.input[(this.inputHead + i) % this.input.length] as number);
    return { version: 1, cols: this.cols, rows: this.rows, input };
  }

  restore(state: unknown): void {
    if (typeof state !== "object" || state === null)
      throw new TypeError("virtio-console snapshot: not an object");
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-console snapshot: unsupported version");
    const isU16 = (v: unknown): v is number =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;
    const { cols, rows, input } = s;
    if (!isU16(cols) || !isU16(rows)) throw new RangeError("virtio-console snapshot: bad size");
    if (
      !Array.isArray(input) ||
      input.length > MAX_PENDING_INPUT ||
      !input.every((b) => typeof b === "number" && Number.isInteger(b) && b >= 0 && b <= 0xff)
    ) {
      throw new RangeError("virtio-console snapshot: bad input");
    }
    this.setSize(cols, rows);
    this.input = new Uint8Array(Math.max(256, input.length));
    this.input.set(input as number[]);
    this.inputHead = 0;
    this.inputCount = input.length;
  }

  private setSize(cols: number, rows: number): void {
    if (
      !Number.isInteger(cols) ||
      !Number.isInteger(rows) ||
      cols < 0 ||
      rows < 0 ||
      cols > 0xffff ||
      rows > 0xffff
    ) {
      throw new RangeError(`virtio-console: size ${cols}x${rows} is not two 16-bit counts`);
    }
    this.config.u16(CONFIG_COLS, cols);
    this.config.u16(CONFIG_ROWS, rows);
  }

  private growInput(): void {
    const bigger = new Uint8Array(Math.min(this.input.length * 2, MAX_PENDING_INPUT));
    for (let i = 0; i < this.inputCount; i++)
      bigger[i] = this.input[(this.inputHead + i) % this.input.length] as number;
    this.input = bigger;
    this.inputHead = 0;
  }

  /**
   * Guest output: every readable byte of every transmit chain goes to the sink. While the sink is full
   * no chain is taken: they stay available (Linux spins until its buffer comes back, as on a busy host),
   * and transmission resumes when the sink drains. A chain once started goes out whole.
   */
  private transmit(): void {
    const host = this.host;
    if (host === undefined || !host.active) return;
    const q = host.queue(TRANSMITQ);
    const mem = host.memory;
    let used = false;
    while (this.outputReady()) {
      const chain = q.pop();
      if (chain === null) break;
      if (chain.fault !== null) {
        host.fail(TRANSMITQ, chain.fault);
        break;
      }
      for (let i = 0; i < chain.readable; i++) {
        const start = chain.address(i) - mem.base;
        const end = start + chain.size(i);
        for (let at = start; at < end; at++) this.output.write(mem.bytes[at] as number);
      }
      q.push(chain, 0);
      used = true;
    }
    if (used) host.signalUsed(TRANSMITQ);
  }

  /** Whether the sink takes output now; if not, transmission resumes once it does. */
  private outputReady(): boolean {
    if (sinkWritable(this.output)) return true;
    if (!this.awaitingSink && this.output.whenWritable !== undefined) {
      this.awaitingSink = true;
      this.output.whenWritable(() => {
        this.awaitingSink = false;
        this.transmit();
      });
    }
    return false;
  }

  /** Host input into the receive buffers the guest posted, as much as fits. */
  private deliverInput(): void {
    const host = this.host;
    if (this.inputCount === 0 || host === undefined || !host.active) return;
    const q = host.queue(RECEIVEQ);
    let used = false;
    while (this.inputCount > 0) {
      const chain = q.pop();
      if (chain === null) break;
      if (chain.fault !== null) {
        host.fail(RECEIVEQ, chain.fault);
        break;
      }
      const n = Math.min(this.inputCount, chain.writableBytes);
      // The pending bytes may wrap around the ring buffer: at most two copies.
      const first = Math.min(n, this.input.length - this.inputHead);
      chain.writeBytes(0, this.input, this.inputHead, first);
      if (n > first) chain.writeBytes(first, this.input, 0, n - first);
      this.inputHead = (this.inputHead + n) % this.input.length;
      this.inputCount -= n;
      q.push(chain, n);
      used = true;
    }
    if (used) host.signalUsed(RECEIVEQ);
  }
}
