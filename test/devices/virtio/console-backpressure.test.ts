/** virtio-console's transmitq against a host sink that fills up: buffers stay available until it drains. */
import assert from "node:assert/strict";
import { VirtioConsole } from "../../../src/devices/virtio/console/virtio-console.js";
import { describe, it } from "../../support/test.js";
import { FakeSink } from "../fake-sink.js";
import { TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const DATA = BASE + 0x10_0000;
const TRANSMITQ = 1;

describe("virtio-console: host backpressure", () => {
  it("leaves transmit buffers available while the sink is full and resumes in order", {
    timeout: 10_000,
  }, () => {
    const mem = new TestMemory(BASE, 4 << 20);
    // Each chain fills the sink: one goes out per drain.
    const sink = new FakeSink(6);
    const drv = new TestDriver(mem, new VirtioConsole(sink));
    drv.start();
    const parts = ["first ", "second ", "third ", "fourth"];
    const heads = parts.map((p, i) => {
      mem.write(DATA + i * 0x100, Buffer.from(p));
      return drv.submit(TRANSMITQ, [{ addr: DATA + i * 0x100, len: p.length }]);
    });
    const ring = drv.rings[TRANSMITQ];
    assert.ok(ring);
    assert.deepEqual(ring.takeUsed(), [[heads[0], 0]]);
    assert.equal(Buffer.from(sink.all()).toString(), "first ");
    // A notification while full changes nothing.
    drv.wr(0x050, TRANSMITQ);
    assert.deepEqual(ring.takeUsed(), []);
    assert.equal(sink.waiting, 1);
    for (const head of heads.slice(1)) {
      sink.drain();
      assert.deepEqual(ring.takeUsed(), [[head, 0]], "one chain per drain, in order");
    }
    sink.drain();
    assert.equal(Buffer.from(sink.out).toString(), parts.join(""));
    assert.equal(sink.waiting, 0);
  });

  it("a reset while stalled drops the resume quietly; the next driver transmits", { timeout: 10_000 }, () => {
    const mem = new TestMemory(BASE, 4 << 20);
    const sink = new FakeSink(1);
    const drv = new TestDriver(mem, new VirtioConsole(sink));
    drv.start();
    mem.write(DATA, Buffer.from("ab"));
    drv.submit(TRANSMITQ, [{ addr: DATA, len: 1 }]);
    drv.submit(TRANSMITQ, [{ addr: DATA + 1, len: 1 }]);
    drv.wr(0x070, 0);
    sink.drain();
    assert.deepEqual(sink.all(), [0x61]);
    // Fresh rings elsewhere, as a new driver would lay them out.
    drv.start({ ringBase: BASE + 0x20_0000 });
    const head = drv.submit(TRANSMITQ, [{ addr: DATA + 1, len: 1 }]);
    assert.deepEqual(drv.rings[TRANSMITQ]?.takeUsed(), [[head, 0]]);
    assert.deepEqual(sink.all(), [0x61, 0x62]);
  });
});
