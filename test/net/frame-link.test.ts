/**
 * FrameLink: two ends over a real MessageChannel carry frames both ways intact and in order, never
 * hold more than their window in flight (the rest is dropped and counted, exactly), resume once the
 * other end catches up, and stop carrying anything once closed.
 */
import assert from "node:assert/strict";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import fc from "fast-check";
import { FrameLink, type LinkMessage } from "../../src/net/frame-link.js";
import { describe, it } from "../support/test.js";

/** A link on `port`, which starts delivering only once `listen` is true (a receiver that has stalled). */
function end(port: MessagePort, options: { maxFrames?: number; maxBytes?: number } = {}) {
  const got: Uint8Array[] = [];
  const link = new FrameLink({
    post: (m: LinkMessage, transfer) => port.postMessage(m, transfer),
    onClose: () => port.close(),
    ...options,
  });
  link.onReceive((f) => got.push(f.slice()));
  port.on("close", () => link.close());
  const listen = () => port.on("message", (m: unknown) => link.receive(m));
  return { link, got, listen };
}

/** Turns of the event loop until `done()` holds (messages between ports of one thread take a few). */
async function until(done: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done(), "condition not reached");
}

function frameOf(length: number, tag: number): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = (tag * 31 + i) & 0xff;
  return f;
}

describe("FrameLink", () => {
  it("carries frames both ways, intact and in order, whatever their sizes and grouping", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 14, max: 65_550 }), fc.boolean()), {
          minLength: 1,
          maxLength: 60,
        }),
        async (plan) => {
          const { port1, port2 } = new MessageChannel();
          const a = end(port1);
          const b = end(port2);
          a.listen();
          b.listen();
          const toB: Uint8Array[] = [];
          const toA: Uint8Array[] = [];
          for (const [fromA, length, yieldAfter] of plan) {
            const f = frameOf(length, toA.length + toB.length);
            // The sender's buffer is only valid during send: scribbling on it after must not matter.
            (fromA ? a : b).link.send(f);
            f.fill(0xee);
            (fromA ? toB : toA).push(frameOf(length, toA.length + toB.length));
            if (yieldAfter) await new Promise((resolve) => setImmediate(resolve));
          }
          await until(() => b.got.length === toB.length && a.got.length === toA.length);
          assert.deepEqual(b.got, toB);
          assert.deepEqual(a.got, toA);
          // Every frame was acknowledged: nothing is left in flight either way.
          await until(() => a.link.pending.frames === 0 && b.link.pending.frames === 0);
          assert.deepEqual(a.link.pending, { frames: 0, bytes: 0 });
          assert.equal(a.link.counters.dropped + b.link.counters.dropped, 0);
          a.link.close();
          b.link.close();
        },
      ),
      { numRuns: 30 },
    );
  });

  it("holds at most its window in flight toward a stalled end, drops and counts the rest", async () => {
    const { port1, port2 } = new MessageChannel();
    const a = end(port1, { maxFrames: 8, maxBytes: 1000 });
    const b = end(port2);
    a.listen();
    // b does not take anything yet: no acknowledgement can come back.
    for (let i = 0; i < 100; i++) a.link.send(frameOf(60, i));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.link.counters.sentFrames, 8);
    assert.equal(a.link.counters.dropped, 92);
    assert.deepEqual(a.link.pending, { frames: 8, bytes: 480 });
    // The byte window binds too: 480 + 600 > 1000.
    a.link.send(frameOf(600, 0));
    assert.equal(a.link.counters.dropped, 93);
    b.listen();
    await until(() => a.link.pending.frames === 0);
    assert.deepEqual(
      b.got,
      Array.from({ length: 8 }, (_, i) => frameOf(60, i)),
    );
    // Once acknowledged, there is room again.
    a.link.send(frameOf(600, 1));
    await until(() => b.got.length === 9);
    assert.deepEqual(b.got[8], frameOf(600, 1));
    assert.equal(a.link.counters.peakInFlight, 8);
    a.link.close();
  });

  it("a flood toward a slow end stays within the window", async () => {
    const { port1, port2 } = new MessageChannel();
    const a = end(port1, { maxFrames: 64 });
    const b = end(port2);
    a.listen();
    b.listen();
    let peakPending = 0;
    for (let turn = 0; turn < 200; turn++) {
      for (let i = 0; i < 100; i++) a.link.send(frameOf(1500, i));
      peakPending = Math.max(peakPending, a.link.pending.frames);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => a.link.pending.frames === 0);
    const c = a.link.counters;
    assert.ok(peakPending <= 64 && c.peakInFlight <= 64, `peak ${peakPending}/${c.peakInFlight}`);
    assert.equal(c.sentFrames + c.dropped, 20_000);
    assert.ok(c.dropped > 0, "100 frames a turn into a window of 64 must drop some");
    assert.equal(b.link.counters.receivedFrames, c.sentFrames);
    assert.equal(b.got.length, c.sentFrames);
    a.link.close();
    b.link.close();
  });

  it("carries nothing once closed, and ignores what is not a link message", async () => {
    const { port1, port2 } = new MessageChannel();
    const a = end(port1);
    const b = end(port2);
    a.listen();
    b.listen();
    b.link.receive({ t: "frames", data: "nope", lengths: [1] });
    b.link.receive(null);
    b.link.receive({ t: "ack", frames: Number.NaN, bytes: 1 });
    assert.equal(b.link.counters.receivedFrames, 0);
    a.link.send(frameOf(60, 1));
    a.link.close();
    assert.ok(a.link.isClosed);
    a.link.send(frameOf(60, 2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(b.got.length, 0, "the batch of a closed link is discarded");
    assert.equal(a.link.counters.sentFrames, 1);
    // The other end hears of the close (its port closes with it).
    await until(() => b.link.isClosed);
  });

  it("refuses a window that is not a positive integer", () => {
    const post = () => {};
    assert.throws(() => new FrameLink({ post, maxFrames: 0 }), RangeError);
    assert.throws(() => new FrameLink({ post, maxBytes: 1.5 }), RangeError);
  });
});
