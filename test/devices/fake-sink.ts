import type { ByteSink } from "../../src/devices/byte-sink.js";

/**
 * A bounded sink for device tests: it takes `room` bytes, then says it is full until `drain()` empties
 * it (the bytes move to `out`) and calls back whoever waits.
 */
export class FakeSink implements ByteSink {
  readonly out: number[] = [];
  private held: number[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly room: number) {}

  get writable(): boolean {
    return this.held.length < this.room;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  write(byte: number): void {
    this.held.push(byte);
  }

  whenWritable(resume: () => void): void {
    this.waiters.push(resume);
  }

  /** The host caught up: everything held is out, and the waiters resume. */
  drain(): void {
    this.out.push(...this.held);
    this.held = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Every byte the device handed over so far, in order. */
  all(): number[] {
    return [...this.out, ...this.held];
  }
}
