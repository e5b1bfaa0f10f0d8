import assert from "node:assert/strict";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { RecordingNetBackend } from "../../../src/devices/virtio/net/backend.js";
import {
  MAX_FRAME,
  NET_HDR_SIZE,
  NET_S_LINK_UP,
  NetConfig,
  NetFeature,
  VirtioNet,
  type VirtioNetOptions,
} from "../../../src/devices/virtio/net/virtio-net.js";
import { DeviceId, Feature, Interrupt, Status } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { driverRing, layoutRing, TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const TX = BASE + 0x10_0000;
const RX = BASE + 0x20_0000;
const MAC = [0x52, 0x54, 0x00, 0x76, 0x00, 0x01];
const RXQ = 0;
const TXQ = 1;

/** An Ethernet frame of `length` bytes: broadcast destination, our source, type 0x0800, a pattern. */
function frame(length: number, seed = 1, type = 0x0800): Uint8Array {
  const f = new Uint8Array(length);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, seed & 0xff], 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  for (let i = 14; i < length; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

function make(options: Partial<VirtioNetOptions> = {}, features?: number[]) {
  const mem = new TestMemory(BASE, 4 << 20);
  const backend = new RecordingNetBackend();
  const net = new VirtioNet(backend, { mac: MAC, ...options });
  const drv = new TestDriver(mem, net);
  drv.start(features === undefined ? {} : { features });
  return { mem, backend, net, drv };
}

type Setup = ReturnType<typeof make>;

/** The driver sends `payload` (a frame) with a header; `header` overrides header bytes. */
function transmit(d: Setup, payload: Uint8Array, header: number[] = [], split = false): number {
  const hdr = new Uint8Array(NET_HDR_SIZE);
  hdr.set(header);
  d.mem.write(TX, hdr);
  d.mem.write(TX + 0x100, payload);
  if (!split) {
    const bytes = new Uint8Array(NET_HDR_SIZE + payload.length);
    bytes.set(hdr);
    bytes.set(payload, NET_HDR_SIZE);
    d.mem.write(TX + 0x1_0000, bytes);
    return d.drv.submit(TXQ, [{ addr: TX + 0x1_0000, len: bytes.length }]);
  }
  const half = payload.length >> 1;
  return d.drv.submit(TXQ, [
    { addr: TX, len: NET_HDR_SIZE },
    { addr: TX + 0x100, len: half },
    { addr: TX + 0x100 + half, len: payload.length - half },
  ]);
}

/** Posts receive buffer `n` (`len` bytes, at RX + n * 0x1_0000), as Linux does: one writable buffer. */
function postRx(d: Setup, n: number, len = NET_HDR_SIZE + 1518): number {
  d.mem.write(RX + n * 0x1_0000, new Uint8Array(len).fill(0xcc));
  return d.drv.submit(RXQ, [{ addr: RX + n * 0x1_0000, len, write: true }]);
}

/** What receive buffer `n` holds: header and frame of `usedLen` bytes. */
function rxContents(d: Setup, n: number, usedLen: number) {
  const at = RX + n * 0x1_0000;
  return {
    header: d.mem.read(at, NET_HDR_SIZE),
    frame: d.mem.read(at + NET_HDR_SIZE, usedLen - NET_HDR_SIZE),
  };
}

const RX_HEADER = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

describe("virtio-net: identity and config", () => {
  it("is device 1 with MAC, STATUS and MTU, no offloads; config holds mac, link up, mtu", () => {
    const d = make({ mtu: 1400 });
    assert.equal(d.drv.rd(0x008), DeviceId.NET);
    const offered = d.drv.offered();
    for (const bit of [NetFeature.MAC, NetFeature.STATUS, NetFeature.MTU, Feature.VERSION_1]) {
      assert.ok(offered.has(bit), `offers ${bit}`);
    }
    for (const bit of [
      NetFeature.CSUM,
      NetFeature.GUEST_CSUM,
      NetFeature.MRG_RXBUF,
      NetFeature.CTRL_VQ,
      NetFeature.MQ,
    ]) {
      assert.ok(!offered.has(bit), `does not offer ${bit}`);
    }
    assert.deepEqual(
      Array.from({ length: 6 }, (_, i) => d.drv.config(NetConfig.MAC + i, 1)),
      MAC,
    );
    assert.equal(d.drv.config(NetConfig.STATUS, 2), NET_S_LINK_UP);
    assert.equal(d.drv.config(NetConfig.MTU, 2), 1400);
    assert.equal(d.drv.config(NetConfig.MAX_VIRTQUEUE_PAIRS, 2), 1);
    d.drv.wr(0x100, 0xffff_ffff);
    assert.equal(d.drv.config(NetConfig.MAC, 1), MAC[0], "config writes are ignored");
  });

  it("refuses a multicast, all-zero or short MAC and an MTU out of range", () => {
    const backend = new RecordingNetBackend();
    assert.throws(() => new VirtioNet(backend, { mac: [1, 2, 3, 4, 5, 6] }), RangeError);
    assert.throws(() => new VirtioNet(backend, { mac: [0, 0, 0, 0, 0, 0] }), RangeError);
    assert.throws(() => new VirtioNet(backend, { mac: [2, 0, 0] }), RangeError);
    assert.throws(() => new VirtioNet(backend, { mac: MAC, mtu: 67 }), RangeError);
    assert.throws(() => new VirtioNet(backend, { mac: MAC, mtu: 65536 }), RangeError);
    assert.throws(() => new VirtioNet(backend, { mac: MAC, rxBacklog: 0 }), RangeError);
  });

  it("link down: status clears with a configuration change interrupt, frames for the guest are dropped", () => {
    const d = make();
    d.drv.ack();
    d.net.setLinkUp(false);
    assert.equal(d.drv.config(NetConfig.STATUS, 2), 0);
    assert.equal(d.drv.ack() & Interrupt.CONFIG_CHANGE, Interrupt.CONFIG_CHANGE);
    postRx(d, 0);
    d.backend.inject(frame(60));
    assert.equal(d.net.stats.rxLinkDown, 1);
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), []);
    d.net.setLinkUp(true);
    assert.equal(d.drv.config(NetConfig.STATUS, 2), NET_S_LINK_UP);
    d.backend.inject(frame(60));
    assert.equal(d.drv.rings[RXQ]?.takeUsed().length, 1);
  });
});

describe("virtio-net: transmit", () => {
  it("hands each frame to the backend without its header and returns the chain with length 0", () => {
    const d = make();
    d.drv.ack();
    const f1 = frame(60, 1);
    const f2 = frame(1514, 2);
    const h1 = transmit(d, f1);
    const h2 = transmit(d, f2, [], true);
    assert.deepEqual(d.backend.sent, [f1, f2]);
    assert.deepEqual(d.drv.rings[TXQ]?.takeUsed(), [
      [h1, 0],
      [h2, 0],
    ]);
    assert.equal(d.drv.ack(), Interrupt.USED_BUFFER);
    assert.equal(d.net.stats.txFrames, 2);
    assert.equal(d.net.stats.txBytes, 60 + 1514);
  });

  it("drops malformed frames (short, over the MTU, offload requests) and counts them", () => {
    const d = make();
    const bad: [Uint8Array, number[]][] = [
      [frame(13), []],
      [new Uint8Array(0), []],
      [frame(1515), []],
      [frame(60), [1]], // NEEDS_CSUM without VIRTIO_NET_F_CSUM
      [frame(60), [0, 1]], // GSO_TCPV4 without HOST_TSO4
      [frame(60), [0, 0x80]], // GSO_ECN bit
    ];
    for (const [f, h] of bad) transmit(d, f, h);
    // A header alone, split short.
    d.drv.submit(TXQ, [{ addr: TX, len: 8 }]);
    assert.deepEqual(d.backend.sent, []);
    assert.equal(d.net.stats.txMalformed, bad.length + 1);
    assert.equal(d.drv.rings[TXQ]?.takeUsed().length, bad.length + 1, "every chain is returned");
    assert.equal(d.drv.needsReset(), false);
    // Flags the device ignores (DATA_VALID) and a VLAN-tagged full-size frame are fine.
    transmit(d, frame(1518, 3, 0x8100), [2]);
    transmit(d, frame(14), []);
    assert.equal(d.backend.sent.length, 2);
  });

  it("without a negotiated MTU accepts frames up to 65550 bytes", () => {
    const d = make({}, [Feature.VERSION_1, NetFeature.MAC]);
    transmit(d, frame(9014));
    transmit(d, frame(MAX_FRAME));
    transmit(d, frame(MAX_FRAME + 1));
    assert.deepEqual(
      d.backend.sent.map((f) => f.length),
      [9014, MAX_FRAME],
    );
    assert.equal(d.net.stats.txMalformed, 1);
  });

  it("a transmit buffer outside RAM stops the queue", () => {
    const d = make();
    d.drv.submit(TXQ, [{ addr: BASE + (4 << 20) - 16, len: 100 }]);
    assert.ok(d.drv.needsReset());
    assert.ok(d.mem.guardsIntact());
  });
});

describe("virtio-net: receive", () => {
  it("writes a zeroed header (num_buffers = 1) and the frame into a posted buffer", () => {
    const d = make();
    const head = postRx(d, 0);
    d.drv.ack();
    const f = frame(98);
    d.backend.inject(f);
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), [[head, NET_HDR_SIZE + 98]]);
    const got = rxContents(d, 0, NET_HDR_SIZE + 98);
    assert.deepEqual([...got.header], RX_HEADER);
    assert.deepEqual(got.frame, f);
    assert.equal(d.mem.u8(RX + NET_HDR_SIZE + 98), 0xcc, "nothing written past the frame");
    assert.equal(d.drv.ack(), Interrupt.USED_BUFFER);
    assert.deepEqual(d.net.stats.rxFrames, 1);
    assert.deepEqual(d.net.stats.rxBytes, 98);
  });

  it("keeps frames until the guest posts buffers, in order; split buffers work", () => {
    const d = make();
    const frames = [frame(60, 1), frame(600, 2), frame(1514, 3)];
    for (const f of frames) d.backend.inject(f);
    assert.equal(d.net.pendingFrames, 3);
    const h0 = postRx(d, 0);
    const h1 = postRx(d, 1);
    // The third buffer in two pieces: header and 1000 bytes, then the rest.
    const h2 = d.drv.submit(RXQ, [
      { addr: RX + 0x2_0000, len: NET_HDR_SIZE + 1000, write: true },
      { addr: RX + 0x3_0000, len: 600, write: true },
    ]);
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), [
      [h0, NET_HDR_SIZE + 60],
      [h1, NET_HDR_SIZE + 600],
      [h2, NET_HDR_SIZE + 1514],
    ]);
    assert.deepEqual(rxContents(d, 0, NET_HDR_SIZE + 60).frame, frames[0]);
    assert.deepEqual(rxContents(d, 1, NET_HDR_SIZE + 600).frame, frames[1]);
    const third = [...d.mem.read(RX + 0x2_0000 + NET_HDR_SIZE, 1000), ...d.mem.read(RX + 0x3_0000, 514)];
    assert.deepEqual(third, [...(frames[2] as Uint8Array)]);
    assert.equal(d.net.pendingFrames, 0);
  });

  it("drops frames beyond the backlog and counts them", () => {
    const d = make({ rxBacklog: 4 });
    for (let i = 0; i < 7; i++) d.backend.inject(frame(60, i));
    assert.equal(d.net.pendingFrames, 4);
    assert.equal(d.net.stats.rxBacklogFull, 3);
    for (let i = 0; i < 5; i++) postRx(d, i);
    const used = d.drv.rings[RXQ]?.takeUsed() ?? [];
    assert.equal(used.length, 4, "the fifth buffer stays posted");
    for (let i = 0; i < 4; i++) assert.equal(rxContents(d, i, NET_HDR_SIZE + 60).frame[11], i, "oldest kept");
    d.backend.inject(frame(60, 9));
    assert.equal(d.drv.rings[RXQ]?.takeUsed().length, 1, "the posted buffer takes the next frame");
  });

  it("drops malformed host frames: shorter than 14, longer than 65550 or the MTU", () => {
    const d = make();
    postRx(d, 0, NET_HDR_SIZE + MAX_FRAME);
    d.backend.inject(frame(13));
    d.backend.inject(new Uint8Array(0));
    d.backend.inject(frame(MAX_FRAME + 1));
    d.backend.inject(frame(1515));
    assert.equal(d.net.stats.rxMalformed, 4);
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), [], "the buffer is kept for a good frame");
    d.backend.inject(frame(1518, 1, 0x8100));
    assert.deepEqual(
      d.drv.rings[RXQ]?.takeUsed().map(([, len]) => len),
      [NET_HDR_SIZE + 1518],
    );
  });

  it("a frame too big for the buffer is dropped; the buffer takes the next frame", () => {
    const d = make();
    const head = postRx(d, 0, NET_HDR_SIZE + 100);
    d.backend.inject(frame(101));
    assert.equal(d.net.stats.rxBufferTooSmall, 1);
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), []);
    d.backend.inject(frame(100, 5));
    assert.deepEqual(d.drv.rings[RXQ]?.takeUsed(), [[head, NET_HDR_SIZE + 100]]);
    assert.deepEqual(rxContents(d, 0, NET_HDR_SIZE + 100).frame, frame(100, 5));
  });

  it("a receive buffer outside RAM or device-readable stops the queue, never writes outside RAM", () => {
    const d = make();
    d.backend.inject(frame(60));
    d.drv.submit(RXQ, [{ addr: BASE + (4 << 20) - 20, len: 200, write: true }]);
    assert.ok(d.drv.needsReset());
    assert.ok(d.mem.guardsIntact());
  });

  it("a device reset forgets queued frames", () => {
    const d = make();
    d.backend.inject(frame(60));
    d.drv.start();
    assert.equal(d.net.pendingFrames, 0);
  });

  it("frames that arrive while the driver is starting wait for DRIVER_OK", () => {
    const mem = new TestMemory(BASE, 4 << 20);
    const backend = new RecordingNetBackend();
    const net = new VirtioNet(backend, { mac: MAC });
    const drv = new TestDriver(mem, net);
    drv.wr(MmioReg.STATUS, 0);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    const features = drv.negotiate();
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    const ring = layoutRing(BASE, 256, drv.negotiated);
    drv.setupQueue(RXQ, ring);
    drv.setupQueue(TXQ, layoutRing(BASE + 0x1_0000, 256, drv.negotiated));
    drv.rings.push(driverRing(mem, ring, features.has(Feature.RING_EVENT_IDX)));
    const d = { mem, backend, net, drv };
    postRx(d, 0);
    backend.inject(frame(60));
    assert.equal(net.pendingFrames, 1, "not delivered before DRIVER_OK");
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    assert.equal(net.pendingFrames, 0);
    assert.equal(drv.rings[RXQ]?.takeUsed().length, 1);
  });
});

describe("virtio-net: snapshots", () => {
  it("restores the backlog, the counters and the link state; rejects malformed states", () => {
    const d = make();
    d.backend.inject(frame(13));
    d.backend.inject(frame(90, 4));
    d.backend.inject(frame(50, 8));
    const state = JSON.parse(JSON.stringify(d.drv.mmio.snapshot()));
    const stats = { ...d.net.stats };
    const backend2 = new RecordingNetBackend();
    const net2 = new VirtioNet(backend2, { mac: MAC });
    const drv2 = new TestDriver(d.mem, net2);
    drv2.mmio.restore(state);
    assert.deepEqual(net2.stats, stats);
    assert.equal(net2.linkUp, true);
    assert.equal(net2.pendingFrames, 2);
    // The driver goes on with the same rings.
    drv2.rings.push(...d.drv.rings);
    const d2 = { ...d, drv: drv2, net: net2, backend: backend2 };
    postRx(d2, 0);
    postRx(d2, 1);
    assert.deepEqual(rxContents(d2, 0, NET_HDR_SIZE + 90).frame, frame(90, 4));
    assert.deepEqual(rxContents(d2, 1, NET_HDR_SIZE + 50).frame, frame(50, 8));
    const down = { ...state.device, linkUp: false, backlog: [] };
    net2.restore(down);
    assert.equal(drv2.config(NetConfig.STATUS, 2), 0);
    assert.throws(() => net2.restore({ ...state.device, version: 2 }), TypeError);
    assert.throws(() => net2.restore({ ...state.device, backlog: [[1, 2]] }), RangeError);
    assert.throws(() => net2.restore({ ...state.device, parkedHead: 77 }), RangeError);
    assert.throws(() => net2.restore({ ...state.device, stats: { ...stats, rxFrames: -1 } }), RangeError);
  });

  it("a parked chain survives a restore and takes the next frame", () => {
    const d = make();
    const head = postRx(d, 0, NET_HDR_SIZE + 100);
    d.backend.inject(frame(200));
    d.backend.inject(frame(150));
    d.backend.inject(frame(1000));
    assert.equal(d.net.stats.rxBufferTooSmall, 3);
    const state = JSON.parse(JSON.stringify(d.drv.mmio.snapshot()));
    assert.equal(state.device.parkedHead, head);
    const backend2 = new RecordingNetBackend();
    const net2 = new VirtioNet(backend2, { mac: MAC });
    const drv2 = new TestDriver(d.mem, net2);
    drv2.mmio.restore(state);
    backend2.inject(frame(64, 9));
    const ring = d.drv.rings[RXQ];
    assert.ok(ring);
    assert.deepEqual(ring.takeUsed(), [[head, NET_HDR_SIZE + 64]]);
    assert.deepEqual(rxContents(d, 0, NET_HDR_SIZE + 64).frame, frame(64, 9));
    assert.equal(drv2.line.level, true, "the restored device interrupts");
  });
});
