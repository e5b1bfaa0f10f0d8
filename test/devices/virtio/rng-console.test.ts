import assert from "node:assert/strict";
import { ConsoleFeature, VirtioConsole } from "../../../src/devices/virtio/console/virtio-console.js";
import { type EntropySource, VirtioRng } from "../../../src/devices/virtio/rng/virtio-rng.js";
import { Interrupt } from "../../../src/devices/virtio/spec.js";
import { cryptoEntropy } from "../../../src/host/entropy.js";
import { describe, it } from "../../support/test.js";
import { TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const DATA = BASE + 0x10_0000;

/** Counts bytes: 1, 2, 3... so every byte handed out can be traced. */
class CountingEntropy implements EntropySource {
  next = 1;
  calls = 0;
  fill(dst: Uint8Array<ArrayBuffer>): void {
    this.calls++;
    for (let i = 0; i < dst.length; i++) dst[i] = this.next++ & 0xff;
  }
}

describe("virtio-rng", () => {
  it("fills writable buffers from the entropy source, never the same bytes twice", () => {
    const mem = new TestMemory(BASE, 4 << 20);
    const entropy = new CountingEntropy();
    const drv = new TestDriver(mem, new VirtioRng(entropy));
    assert.equal(drv.rd(0x008), 4);
    drv.start();
    const head = drv.submit(0, [
      { addr: DATA, len: 3, write: true },
      { addr: DATA + 0x100, len: 2, write: true },
    ]);
    assert.deepEqual(drv.rings[0]?.takeUsed(), [[head, 5]]);
    assert.deepEqual([...mem.read(DATA, 3), ...mem.read(DATA + 0x100, 2)], [1, 2, 3, 4, 5]);
    drv.submit(0, [{ addr: DATA, len: 4, write: true }]);
    assert.deepEqual([...mem.read(DATA, 4)], [6, 7, 8, 9]);
    assert.equal(entropy.calls, 1, "one 64 KiB draw serves many requests");
    assert.equal(drv.ack(), Interrupt.USED_BUFFER);
    // The transport counts the driver's notifications and the times its line went up.
    assert.equal(drv.mmio.counters.notifications, 2);
    assert.ok(drv.mmio.counters.interrupts >= 1);
  });

  it("gives at most 64 KiB per request; a chain without writable bytes gets 0", () => {
    const mem = new TestMemory(BASE, 4 << 20);
    const drv = new TestDriver(mem, new VirtioRng(new CountingEntropy()));
    drv.start();
    const big = drv.submit(0, [{ addr: DATA, len: 1 << 20, write: true }]);
    const none = drv.submit(0, [{ addr: DATA, len: 16 }]);
    assert.deepEqual(drv.rings[0]?.takeUsed(), [
      [big, 65536],
      [none, 0],
    ]);
  });

  it("a buffer outside RAM stops the queue (no status to fail it with)", () => {
    const mem = new TestMemory(BASE, 1 << 20);
    const drv = new TestDriver(mem, new VirtioRng(new CountingEntropy()));
    drv.start();
    drv.submit(0, [{ addr: BASE + (1 << 20) - 8, len: 16, write: true }]);
    assert.ok(drv.needsReset());
    assert.ok(mem.guardsIntact());
  });

  it("the host source is the Web Crypto CSPRNG", () => {
    const a = new Uint8Array(100_000);
    cryptoEntropy.fill(a);
    assert.ok(
      a.subarray(70_000).some((b) => b !== 0),
      "beyond getRandomValues' 64 KiB limit too",
    );
  });
});

function makeConsole(opts: { cols?: number; rows?: number } = {}) {
  const mem = new TestMemory(BASE, 4 << 20);
  const out: number[] = [];
  const con = new VirtioConsole({ write: (b) => out.push(b) }, opts);
  const drv = new TestDriver(mem, con);
  return { mem, out, con, drv };
}

const text = (bytes: number[] | Uint8Array) => Buffer.from(bytes).toString();

describe("virtio-console", () => {
  it("reports its size and takes emergency writes before the driver is up", () => {
    const { drv, out } = makeConsole({ cols: 132, rows: 43 });
    assert.equal(drv.rd(0x008), 3);
    const bits = drv.offered();
    assert.ok(bits.has(ConsoleFeature.SIZE) && bits.has(ConsoleFeature.EMERG_WRITE));
    assert.ok(!bits.has(ConsoleFeature.MULTIPORT));
    assert.equal(drv.config(0, 2), 132);
    assert.equal(drv.config(2, 2), 43);
    assert.ok(drv.mmio.write(0x100 + 8, 4, 0x21, 0));
    assert.equal(text(out), "!");
  });

  it("sends guest output to the sink and returns transmit buffers at once", () => {
    const { drv, out, mem } = makeConsole();
    drv.start();
    mem.write(DATA, Buffer.from("hello, "));
    mem.write(DATA + 0x100, Buffer.from("hvc0\n"));
    const head = drv.submit(1, [
      { addr: DATA, len: 7 },
      { addr: DATA + 0x100, len: 5 },
    ]);
    assert.equal(text(out), "hello, hvc0\n");
    assert.deepEqual(drv.rings[1]?.takeUsed(), [[head, 0]]);
  });

  it("buffers host input until the guest posts receive buffers, then fills them in order", () => {
    const { drv, con, mem } = makeConsole();
    assert.equal(con.receive(Buffer.from("early ")), 6);
    drv.start();
    con.receive(Buffer.from("input"));
    assert.equal(con.pendingInput, 11);
    const rx = drv.rings[0];
    assert.ok(rx);
    const a = rx.chain([{ addr: DATA, len: 4, write: true }]);
    const b = rx.chain([{ addr: DATA + 0x100, len: 64, write: true }]);
    rx.publish(a);
    rx.publish(b);
    drv.wr(0x050, 0);
    assert.deepEqual(rx.takeUsed(), [
      [a, 4],
      [b, 7],
    ]);
    assert.equal(text(mem.read(DATA, 4)), "earl");
    assert.equal(text(mem.read(DATA + 0x100, 7)), "y input");
    assert.equal(con.pendingInput, 0);
    // A buffer posted while nothing is pending waits for the next input.
    const c = rx.chain([{ addr: DATA + 0x200, len: 64, write: true }]);
    rx.publish(c);
    drv.wr(0x050, 0);
    assert.deepEqual(rx.takeUsed(), []);
    con.receive(Buffer.from("x"));
    assert.deepEqual(rx.takeUsed(), [[c, 1]]);
    assert.equal(drv.line.level, true);
  });

  it("keeps order across ring-buffer growth and wrap-around", () => {
    const { drv, con, mem } = makeConsole();
    drv.start();
    const rx = drv.rings[0];
    assert.ok(rx);
    let expected = "";
    let got = "";
    for (let round = 0; round < 20; round++) {
      const chunk = `${round}:${"abcdefghij".repeat(round * 7)};`;
      expected += chunk;
      con.receive(Buffer.from(chunk));
      const h = rx.chain([{ addr: DATA, len: 50, write: true }]);
      rx.publish(h);
      drv.wr(0x050, 0);
      for (const [, len] of rx.takeUsed()) got += text(mem.read(DATA, len));
    }
    while (con.pendingInput > 0) {
      rx.publish(rx.chain([{ addr: DATA, len: 50, write: true }]));
      drv.wr(0x050, 0);
      for (const [, len] of rx.takeUsed()) got += text(mem.read(DATA, len));
    }
    assert.equal(got, expected);
  });

  it("a resize changes the config and raises a configuration change interrupt", () => {
    const { drv, con } = makeConsole();
    drv.start();
    const gen = drv.rd(0x0fc);
    con.resize(100, 30);
    assert.equal(drv.config(0, 2), 100);
    assert.equal(drv.config(2, 2), 30);
    assert.notEqual(drv.rd(0x0fc), gen);
    assert.equal(drv.ack(), Interrupt.CONFIG_CHANGE);
    con.resize(100, 30);
    assert.equal(drv.line.level, false, "no change, no interrupt");
  });

  it("snapshots pending input and size", () => {
    const { con } = makeConsole({ cols: 90, rows: 20 });
    con.receive(Buffer.from("typed ahead"));
    const state = JSON.parse(JSON.stringify(con.snapshot()));
    const { con: con2 } = makeConsole();
    con2.restore(state);
    assert.equal(con2.cols, 90);
    assert.equal(con2.pendingInput, 11);
    assert.throws(() => con2.restore({ ...state, input: [300] }), RangeError);
  });
});
