import assert from "node:assert/strict";
import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../../../src/devices/virtio/device.js";
import { MmioReg, VIRTIO_MMIO_MAGIC, VirtioMmio } from "../../../src/devices/virtio/mmio.js";
import { DescFlag, Feature, Interrupt, PackedFlag, Status } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { driverRing, layoutRing, TestDriver, TestLine, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const DATA = BASE + 0x20000;

/** A device that records what the transport asks of it; queue 0 echoes (returns chains as used). */
class Probe implements VirtioDevice {
  readonly name = "probe";
  readonly deviceId = 42;
  readonly features = [1 << 3, 1 << 18]; // device bits 3 and 50
  readonly queueSizes = [8, 4];
  readonly configSize = 8;
  readonly config = new ConfigSpace(8);
  host!: VirtioHost;
  events: string[] = [];
  configWrites: [number, number, number][] = [];
  state = { version: 1, n: 7 };

  attach(host: VirtioHost): void {
    this.host = host;
  }
  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }
  writeConfig(offset: number, size: number, value: number): void {
    this.configWrites.push([offset, size, value]);
  }
  activate(): void {
    this.events.push("activate");
  }
  notify(index: number): void {
    this.events.push(`notify ${index}`);
    const q = this.host.queue(index);
    for (let c = q.pop(); c !== null; c = q.pop()) q.push(c, c.writableBytes);
    this.host.signalUsed(index);
  }
  reset(): void {
    this.events.push("reset");
  }
  queueReset(index: number): void {
    this.events.push(`queue reset ${index}`);
  }
  snapshot(): unknown {
    return this.state;
  }
  restore(state: unknown): void {
    this.state = state as typeof this.state;
  }
}

function make() {
  const mem = new TestMemory(BASE, 1 << 20);
  const dev = new Probe();
  const drv = new TestDriver(mem, dev);
  return { mem, dev, drv };
}

describe("virtio-mmio: identification and features", () => {
  it("reads magic, version 2, IDs; no shared memory regions", () => {
    const { drv } = make();
    assert.equal(drv.rd(MmioReg.MAGIC), VIRTIO_MMIO_MAGIC);
    assert.equal(drv.rd(MmioReg.VERSION), 2);
    assert.equal(drv.rd(MmioReg.DEVICE_ID), 42);
    assert.notEqual(drv.rd(MmioReg.VENDOR_ID), 0);
    drv.wr(MmioReg.SHM_SEL, 0);
    for (const r of [
      MmioReg.SHM_LEN_LOW,
      MmioReg.SHM_LEN_HIGH,
      MmioReg.SHM_BASE_LOW,
      MmioReg.SHM_BASE_HIGH,
    ]) {
      assert.equal(drv.rd(r), 0xffff_ffff);
    }
  });

  it("offers the device's bits plus VERSION_1, INDIRECT_DESC, EVENT_IDX, RING_PACKED, RING_RESET", () => {
    const { drv } = make();
    const bits = [...drv.offered()].sort((a, b) => a - b);
    assert.deepEqual(bits, [
      3,
      Feature.RING_INDIRECT_DESC,
      Feature.RING_EVENT_IDX,
      Feature.VERSION_1,
      Feature.RING_PACKED,
      Feature.RING_RESET,
      50,
    ]);
    assert.ok(!drv.offered().has(Feature.ACCESS_PLATFORM));
    drv.wr(MmioReg.DEVICE_FEATURES_SEL, 7);
    assert.equal(drv.rd(MmioReg.DEVICE_FEATURES), 0);
  });

  it("accepts FEATURES_OK only with VERSION_1 and offered bits", () => {
    const { drv } = make();
    const attempt = (bits: number[]) => {
      drv.wr(MmioReg.STATUS, 0);
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
      drv.accept(bits);
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
      return (drv.status() & Status.FEATURES_OK) !== 0;
    };
    assert.equal(attempt([3]), false, "legacy driver (no VERSION_1)");
    assert.equal(attempt([Feature.VERSION_1, 5]), false, "bit 5 was not offered");
    assert.equal(attempt([Feature.VERSION_1, Feature.IN_ORDER]), false);
    drv.wr(MmioReg.STATUS, 0);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    drv.accept([Feature.VERSION_1]);
    drv.wr(MmioReg.DRIVER_FEATURES_SEL, 3);
    drv.wr(MmioReg.DRIVER_FEATURES, 1); // bit 96: never offered
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    assert.equal(drv.status() & Status.FEATURES_OK, 0, "a bit beyond 63");
    assert.equal(attempt([Feature.VERSION_1, 3, 50]), true);
    // Features are frozen once FEATURES_OK is set.
    drv.wr(MmioReg.DRIVER_FEATURES_SEL, 0);
    drv.wr(MmioReg.DRIVER_FEATURES, 0);
    assert.ok(drv.mmio.hasFeature(3));
  });

  it("refuses DRIVER_OK without FEATURES_OK; activates the device on DRIVER_OK", () => {
    const { drv, dev } = make();
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.DRIVER_OK);
    assert.equal(drv.status() & Status.DRIVER_OK, 0);
    assert.deepEqual(dev.events, []);
    drv.start();
    assert.deepEqual(dev.events, ["reset", "activate"]);
    assert.equal(drv.status(), Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
  });

  it("control registers take aligned 32-bit accesses only; config any of 1/2/4/8 bytes", () => {
    const { drv, dev } = make();
    const out = new Uint32Array(2);
    assert.equal(drv.mmio.read(MmioReg.MAGIC, 1, out), false);
    assert.equal(drv.mmio.read(MmioReg.MAGIC + 2, 4, out), false);
    assert.equal(drv.mmio.read(MmioReg.MAGIC, 8, out), false);
    assert.equal(drv.mmio.write(MmioReg.STATUS, 2, 1, 0), false);
    assert.equal(drv.status(), 0);
    dev.config.u32(0, 0x4433_2211);
    dev.config.u32(4, 0x8877_6655);
    assert.equal(drv.config(1, 1), 0x22);
    assert.equal(drv.config(2, 2), 0x4433);
    assert.ok(drv.mmio.read(0x100, 8, out));
    assert.deepEqual([...out], [0x4433_2211, 0x8877_6655]);
    assert.equal(drv.config(8, 4), 0, "beyond the config space reads 0");
    assert.ok(drv.mmio.write(0x100 + 4, 2, 0x1_beef, 0));
    assert.ok(drv.mmio.write(0x100 + 12, 4, 1, 0));
    assert.deepEqual(dev.configWrites, [[4, 2, 0xbeef]]);
  });

  it("bumps ConfigGeneration on a config change and interrupts once DRIVER_OK", () => {
    const { drv, dev } = make();
    const g0 = drv.rd(MmioReg.CONFIG_GENERATION);
    dev.host.configChanged();
    assert.notEqual(drv.rd(MmioReg.CONFIG_GENERATION), g0);
    assert.equal(drv.line.level, false, "no interrupt before DRIVER_OK");
    drv.start();
    dev.host.configChanged();
    assert.equal(drv.line.level, true);
    assert.equal(drv.ack(), Interrupt.CONFIG_CHANGE);
    assert.equal(drv.line.level, false);
  });
});

describe("virtio-mmio: queues", () => {
  it("reports per-queue maximum sizes, 0 for queues that do not exist", () => {
    const { drv } = make();
    drv.wr(MmioReg.QUEUE_SEL, 0);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE_MAX), 8);
    drv.wr(MmioReg.QUEUE_SEL, 1);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE_MAX), 4);
    drv.wr(MmioReg.QUEUE_SEL, 2);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE_MAX), 0);
    drv.wr(MmioReg.QUEUE_READY, 1);
    assert.equal(drv.rd(MmioReg.QUEUE_READY), 0);
  });

  it("processes notifications and raises the used-buffer interrupt; ack lowers the line", () => {
    const { drv, dev } = make();
    drv.start();
    drv.submit(0, [{ addr: DATA, len: 16, write: true }]);
    assert.ok(dev.events.includes("notify 0"));
    assert.equal(drv.line.level, true);
    assert.deepEqual(drv.rings[0]?.takeUsed(), [[0, 16]]);
    assert.equal(drv.ack(), Interrupt.USED_BUFFER);
    assert.equal(drv.line.level, false);
    // Notifying a queue that does not exist or is not ready does nothing.
    dev.events.length = 0;
    drv.wr(MmioReg.QUEUE_NOTIFY, 5);
    assert.deepEqual(dev.events, []);
  });

  it("ignores notifications before DRIVER_OK", () => {
    const { drv, dev, mem } = make();
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    drv.negotiate([Feature.VERSION_1]);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    drv.setupQueue(0, layoutRing(BASE, 8, drv.negotiated));
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.deepEqual(dev.events, []);
    assert.ok(mem.guardsIntact());
  });

  it("freezes queue registers while the queue is ready", () => {
    const { drv } = make();
    drv.start();
    drv.wr(MmioReg.QUEUE_SEL, 0);
    drv.wr(MmioReg.QUEUE_SIZE, 2);
    drv.wr(MmioReg.QUEUE_DESC_LOW, 0x1234);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE), 8);
    assert.notEqual(drv.rd(MmioReg.QUEUE_DESC_LOW), 0x1234);
    drv.wr(MmioReg.QUEUE_READY, 0);
    assert.equal(drv.rd(MmioReg.QUEUE_READY), 0);
    drv.wr(MmioReg.QUEUE_SIZE, 2);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE), 2);
  });

  it("a bad ring sets DEVICE_NEEDS_RESET, interrupts, and stops only that queue", () => {
    const { drv, dev, mem } = make();
    drv.start({ size: 4 });
    const ring = drv.rings[0];
    assert.ok(ring);
    if (drv.negotiated === "split") {
      ring.desc(0, DATA, 4, DescFlag.NEXT, 0); // a loop
      ring.publish(0);
    } else {
      // Every ring entry available and chained on: a chain longer than the queue.
      for (let i = 0; i < 4; i++) ring.desc(i, DATA, 4, DescFlag.NEXT | PackedFlag.AVAIL, 0);
    }
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.ok(drv.needsReset());
    assert.match(drv.mmio.lastFault ?? "", /queue 0: .*(loop|longer than the queue)/);
    assert.equal(drv.ack(), Interrupt.CONFIG_CHANGE);
    // Queue 1 still works.
    drv.submit(1, [{ addr: DATA, len: 4, write: true }]);
    assert.equal(drv.rings[1]?.takeUsed().length, 1);
    // Queue 0 stays stopped, the driver cannot clear NEEDS_RESET, a reset clears everything.
    dev.events.length = 0;
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.deepEqual(dev.events, []);
    drv.wr(MmioReg.STATUS, drv.status() & ~Status.DEVICE_NEEDS_RESET);
    assert.ok(drv.needsReset());
    drv.start({ size: 4 });
    assert.equal(drv.needsReset(), false);
    drv.submit(0, [{ addr: DATA, len: 4, write: true }]);
    assert.equal(drv.rings[0]?.takeUsed().length, 1);
    assert.ok(mem.guardsIntact());
  });

  it("a bad queue size or address at QueueReady sets DEVICE_NEEDS_RESET", () => {
    for (const ring of [
      { size: 6, desc: BASE, avail: BASE + 0x1000, used: BASE + 0x2000 },
      { size: 16, desc: BASE, avail: BASE + 0x1000, used: BASE + 0x2000 },
      { size: 8, desc: BASE + 4, avail: BASE + 0x1000, used: BASE + 0x2000 },
      { size: 8, desc: BASE, avail: BASE + 0x1000, used: BASE + (1 << 20) - 16 },
    ]) {
      const { drv } = make();
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
      drv.accept([Feature.VERSION_1]);
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
      drv.setupQueue(0, ring);
      assert.ok(drv.needsReset(), JSON.stringify(ring));
    }
  });

  it("resets one queue with QueueReset when RING_RESET was negotiated", () => {
    const { drv, dev } = make();
    drv.start();
    drv.submit(0, [{ addr: DATA, len: 4, write: true }]);
    drv.wr(MmioReg.QUEUE_SEL, 0);
    drv.wr(MmioReg.QUEUE_RESET, 1);
    assert.equal(drv.rd(MmioReg.QUEUE_RESET), 0, "done at once");
    assert.equal(drv.rd(MmioReg.QUEUE_READY), 0);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE), 8);
    assert.ok(dev.events.includes("queue reset 0"));
    // Re-enable with fresh rings: indexes start over.
    const ring = layoutRing(BASE + 0x40000, 8, drv.negotiated);
    drv.setupQueue(0, ring);
    const used = driverRing(drv.mem, ring, true);
    used.publish(used.chain([{ addr: DATA, len: 2, write: true }]));
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.deepEqual(used.takeUsed(), [[0, 2]]);
  });

  it("status 0 resets everything and lowers the line", () => {
    const { drv, dev } = make();
    drv.start();
    drv.submit(0, [{ addr: DATA, len: 4, write: true }]);
    assert.equal(drv.line.level, true);
    drv.wr(MmioReg.STATUS, 0);
    assert.equal(drv.line.level, false);
    assert.equal(drv.rd(MmioReg.INTERRUPT_STATUS), 0);
    assert.equal(drv.status(), 0);
    assert.equal(drv.rd(MmioReg.QUEUE_READY), 0);
    assert.equal(drv.mmio.hasFeature(Feature.VERSION_1), false);
    assert.equal(dev.events.at(-1), "reset");
  });

  it("snapshot and restore round-trip through JSON, held chains included", () => {
    const { drv, mem } = make();
    drv.start();
    // A chain the device holds: put it in queue 1's ring without notifying, then pop it by hand.
    const ring1 = drv.rings[1];
    assert.ok(ring1);
    ring1.publish(ring1.chain([{ addr: DATA + 64, len: 8, write: true }]));
    const held = drv.mmio.queue(1).pop();
    assert.ok(held);
    const state = JSON.parse(JSON.stringify(drv.mmio.snapshot()));
    const dev2 = new Probe();
    const line2 = new TestLine();
    const other = new VirtioMmio(dev2, mem, line2);
    other.restore(state);
    assert.equal(line2.level, drv.line.level);
    const out = new Uint32Array(2);
    other.read(MmioReg.STATUS, 4, out);
    assert.equal(out[0], drv.status());
    assert.ok(other.hasFeature(Feature.RING_EVENT_IDX));
    assert.deepEqual(dev2.state, { version: 1, n: 7 });
    assert.ok(other.queue(1).heldChain(held.head));
    assert.throws(() => other.restore({ ...state, status: 0x100 }), RangeError);
    assert.throws(() => other.restore({ ...state, queues: [] }), RangeError);
    assert.throws(() => other.restore({ ...state, deviceId: 3 }), RangeError);
  });
});
