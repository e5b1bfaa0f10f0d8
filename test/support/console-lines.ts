/**
 * A guest console for the snapshot and migration tests: collects what the guest writes and lets a test
 * wait for a number of lines; and the counters of the "tick N" lines counter.S and scribbler.S print.
 */
import assert from "node:assert/strict";
import type { ByteSink } from "../../src/devices/byte-sink.js";

export class Lines implements ByteSink {
  text = "";
  private waiter: { n: number; resolve: () => void } | null = null;
  write(byte: number): void {
    this.text += String.fromCharCode(byte);
    if (this.waiter !== null && this.count() >= this.waiter.n) {
      this.waiter.resolve();
      this.waiter = null;
    }
  }
  count(): number {
    return this.text.split("\n").length - 1;
  }
  until(n: number): Promise<void> {
    if (this.count() >= n) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = { n, resolve };
    });
  }
}

/** The counters of every complete "tick N" line, in order; any other line fails the test. */
export function ticks(text: string): number[] {
  return text
    .split("\n")
    .slice(0, -1)
    .map((line) => {
      const m = /^tick ([0-9a-f]{16})$/.exec(line);
      assert.ok(m !== null, `unexpected console line ${JSON.stringify(line)}`);
      return Number.parseInt(m[1] as string, 16);
    });
}
