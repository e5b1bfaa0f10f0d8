import assert from "node:assert/strict";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { DeviceId, RingEvent, Status } from "../../../src/devices/virtio/spec.js";
import { Op, Shutdown, VSOCK_HDR_SIZE, VsockFeature } from "../../../src/devices/virtio/vsock/protocol.js";
import {
  DEFAULT_VSOCK_BUFFER,
  FIRST_HOST_PORT,
  VirtioVsock,
} from "../../../src/devices/virtio/vsock/virtio-vsock.js";
import { describe, it } from "../../support/test.js";
import { PackedTestRing } from "./harness.js";
import {
  EVQ,
  encodeHeader,
  GUEST_CID,
  Guest,
  HOST_CID,
  type Packet,
  RecordingHandler,
  TestBackend,
} from "./vsock-harness.js";

const GUEST_PORT = 40_000;
/** Free guest memory for odd buffers. */
const SCRATCH = 0x8000_0000 + 0x38_8000;
const HOST_PORT = 1234;
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

function setup(options: { policy?: TestBackend["policy"]; autoConsume?: boolean; bufferSize?: number } = {}) {
  const backend = new TestBackend();
  backend.policy = options.policy ?? "accept";
  backend.autoConsume = options.autoConsume ?? true;
  const g = Guest.start({ backend, ...(options.bufferSize ? { bufferSize: options.bufferSize } : {}) });
  return { g, backend, dev: g.device };
}

/** A guest-initiated connection the backend accepted; the RESPONSE has been taken. */
function established(options: Parameters<typeof setup>[0] = {}, guestBuf = 256 * 1024) {
  const s = setup(options);
  s.g.post(8);
  s.g.op(Op.REQUEST, GUEST_PORT, HOST_PORT, { bufAlloc: guestBuf });
  const [response] = s.g.receive();
  assert.equal(response?.op, Op.RESPONSE);
  const handler = s.backend.handlers[0];
  const stream = s.backend.streams[0];
  assert.ok(handler && stream);
  return { ...s, handler, stream };
}

function assertFromHost(
  p: Packet | undefined,
  op: number,
  hostPort = HOST_PORT,
  guestPort = GUEST_PORT,
): Packet {
  assert.ok(p, `expected a packet with op ${op}`);
  assert.equal(p.op, op, `op of ${JSON.stringify({ ...p, payload: undefined })}`);
  assert.equal(p.srcCid, HOST_CID);
  assert.equal(p.srcCidHi, 0);
  assert.equal(p.dstCid, GUEST_CID);
  assert.equal(p.dstCidHi, 0);
  assert.equal(p.type, 1);
  assert.equal(p.srcPort, hostPort);
  assert.equal(p.dstPort, guestPort);
  assert.equal(p.used, VSOCK_HDR_SIZE + p.len);
  assert.equal(p.payload.length, p.len);
  return p;
}

describe("virtio-vsock", () => {
  it("identifies itself: ID 19, stream feature, three queues, guest_cid in the config space", () => {
    const g = Guest.start({ guestCid: 0x1234_5678 });
    assert.equal(g.drv.rd(MmioReg.DEVICE_ID), DeviceId.SOCKET);
    assert.equal(DeviceId.SOCKET, 19);
    assert.ok(g.drv.offered().has(VsockFeature.STREAM));
    assert.ok(!g.drv.offered().has(VsockFeature.SEQPACKET));
    assert.equal(g.device.queueSizes.length, 3);
    assert.equal(g.drv.config(0, 4), 0x1234_5678);
    assert.equal(g.drv.config(4, 4), 0);
    const out = new Uint32Array(2);
    assert.ok(g.drv.mmio.read(0x100, 8, out));
    assert.deepEqual([...out], [0x1234_5678, 0]);
    // Read-only.
    g.drv.mmio.write(0x100, 4, 7, 0);
    assert.equal(g.drv.config(0, 4), 0x1234_5678);
  });

  it("rejects reserved guest CIDs and silly limits", () => {
    for (const guestCid of [0, 1, 2, 0xffff_ffff, 2 ** 32, -1, 3.5]) {
      assert.throws(() => new VirtioVsock({ guestCid }), RangeError);
    }
    assert.throws(() => new VirtioVsock({ guestCid: 3, bufferSize: 100 }), RangeError);
    assert.throws(() => new VirtioVsock({ guestCid: 3, maxConnections: 0 }), RangeError);
  });

  it("guest connects, the backend accepts: RESPONSE with the host's credit, then data both ways", () => {
    const { g, backend, handler, stream } = established();
    assert.equal(stream.hostPort, HOST_PORT);
    assert.equal(stream.guestPort, GUEST_PORT);
    assert.equal(backend.streams.length, 1);
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("hello, host\n"));
    assert.equal(handler.text(), "hello, host\n");
    assert.equal(g.device.stats.txBytes, 12);
    assert.equal(stream.write(bytes("hello, guest\n")), 13);
    const [p] = g.receive();
    const rw = assertFromHost(p, Op.RW);
    assert.equal(text(rw.payload), "hello, guest\n");
    assert.equal(rw.bufAlloc, DEFAULT_VSOCK_BUFFER);
    assert.equal(rw.fwdCnt, 12, "consumed bytes go back as fwd_cnt");
    // Every tx packet came back at once.
    assert.equal(g.txUsed().length, 2);
    assert.equal(g.drv.needsReset(), false);
  });

  it("payload split over several descriptors arrives whole; host data is split to fit receive buffers", () => {
    const { g, handler, stream } = established();
    const big = new Uint8Array(10_000).map((_, i) => (i * 7) & 0xff);
    g.send({ op: Op.RW, srcPort: GUEST_PORT, dstPort: HOST_PORT, bufAlloc: 256 * 1024 }, big, 5);
    assert.deepEqual(Uint8Array.from(handler.received), big);
    assert.equal(stream.write(big), big.length);
    const got: number[] = [];
    for (const p of g.receive()) {
      assertFromHost(p, Op.RW);
      assert.ok(p.len <= 4096);
      got.push(...p.payload);
    }
    assert.deepEqual(Uint8Array.from(got), big);
  });

  it("host data waits for receive buffers and for the guest's credit", () => {
    const { g, stream } = established({}, 100);
    g.receive();
    assert.equal(stream.write(new Uint8Array(300).fill(1)), 300);
    let ps = g.receive();
    // 8 buffers were posted, one went to the RESPONSE: 100 bytes of credit, then a CREDIT_REQUEST.
    assert.deepEqual(
      ps.map((p) => [p.op, p.len]),
      [
        [Op.RW, 100],
        [Op.CREDIT_REQUEST, 0],
      ],
    );
    ps = g.receive();
    assert.equal(ps.length, 0, "nothing more without credit");
    g.op(Op.CREDIT_UPDATE, GUEST_PORT, HOST_PORT, { bufAlloc: 100, fwdCnt: 100 });
    ps = g.receive();
    assert.deepEqual(
      ps.map((p) => [p.op, p.len]),
      [
        [Op.RW, 100],
        [Op.CREDIT_REQUEST, 0],
      ],
    );
    g.op(Op.CREDIT_UPDATE, GUEST_PORT, HOST_PORT, { bufAlloc: 1 << 20, fwdCnt: 200 });
    ps = g.receive();
    assert.deepEqual(
      ps.map((p) => [p.op, p.len]),
      [[Op.RW, 100]],
    );
    // Two receive buffers are left: the rest waits for more.
    assert.equal(stream.write(new Uint8Array(3 * 4096 + 50)), 3 * 4096 + 50);
    assert.deepEqual(
      g.receive().map((p) => [p.op, p.len]),
      [
        [Op.RW, 4096],
        [Op.RW, 4096],
      ],
    );
    g.post(3);
    assert.deepEqual(
      g.receive().map((p) => [p.op, p.len]),
      [
        [Op.RW, 4096],
        [Op.RW, 50],
      ],
    );
  });

  it("a guest that claims to have forwarded more than it got gets nothing (no credit)", () => {
    const { g, stream } = established({}, 1000);
    g.receive();
    g.op(Op.CREDIT_UPDATE, GUEST_PORT, HOST_PORT, { bufAlloc: 1000, fwdCnt: 10 });
    stream.write(new Uint8Array(20));
    assert.deepEqual(
      g.receive().map((p) => p.op),
      [Op.CREDIT_REQUEST],
    );
  });

  it("the host buffer is bounded: write takes what fits and calls writable() when there is room", () => {
    // No credit from the guest yet: host data stays on the host.
    const { g, stream, handler } = established({ bufferSize: 4096 }, 0);
    assert.equal(stream.write(new Uint8Array(20_000)), 4096);
    assert.equal(stream.write(new Uint8Array(10)), 0);
    assert.equal(handler.writables, 0);
    assert.deepEqual(
      g.receive().map((p) => p.op),
      [Op.CREDIT_REQUEST],
    );
    g.op(Op.CREDIT_UPDATE, GUEST_PORT, HOST_PORT, { bufAlloc: 1 << 20 });
    assert.equal(handler.writables, 1, "writable() once the guest took data");
    assert.deepEqual(
      g.receive().map((p) => [p.op, p.len]),
      [[Op.RW, 4096]],
    );
  });

  it("guest credit: the guest may not send more than the host's buffer; consumption comes back as CREDIT_UPDATE", () => {
    const { g, handler, dev } = established({ autoConsume: false, bufferSize: 8192 });
    g.receive();
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, new Uint8Array(3000).fill(5));
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, new Uint8Array(3000).fill(6));
    assert.equal(handler.held, 6000);
    assert.equal(g.receive().length, 0, "no credit update while the backend holds the data");
    handler.consume(1000);
    // The guest believes 8192 - 6000 = 2192 < 4096 left: it hears at once.
    const [upd] = g.receive();
    assertFromHost(upd, Op.CREDIT_UPDATE);
    assert.equal(upd?.fwdCnt, 1000);
    assert.equal(upd?.bufAlloc, 8192);
    // 5000 held, 3192 free: 3193 bytes break the protocol.
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, new Uint8Array(3193));
    assert.equal(dev.stats.txProtocol, 1);
    const [rst] = g.receive();
    assertFromHost(rst, Op.RST);
    assert.equal(handler.closes, 1);
    assert.equal(dev.openConnections, 0);
  });

  it("answers CREDIT_REQUEST with CREDIT_UPDATE", () => {
    const { g } = established();
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("abc"));
    g.op(Op.CREDIT_REQUEST, GUEST_PORT, HOST_PORT);
    const [p] = g.receive();
    assertFromHost(p, Op.CREDIT_UPDATE);
    assert.equal(p?.fwdCnt, 3);
  });

  it("host-initiated: REQUEST from a host port, the guest's RESPONSE connects, data flows", () => {
    const { g, backend, dev } = setup();
    g.post(4);
    const h = new RecordingHandler();
    const stream = backend.host?.connect(52, h);
    assert.ok(stream);
    h.stream = stream;
    assert.equal(stream.hostPort, FIRST_HOST_PORT);
    // Data written before the guest accepted waits for it.
    stream.write(bytes("early"));
    const [req] = g.receive();
    assertFromHost(req, Op.REQUEST, FIRST_HOST_PORT, 52);
    assert.equal(h.connects, 0);
    g.op(Op.RESPONSE, 52, FIRST_HOST_PORT, { bufAlloc: 4096 });
    assert.equal(h.connects, 1);
    const [rw] = g.receive();
    assertFromHost(rw, Op.RW, FIRST_HOST_PORT, 52);
    assert.equal(text(rw.payload), "early");
    g.op(Op.RW, 52, FIRST_HOST_PORT, {}, bytes("from guest"));
    assert.equal(h.text(), "from guest");
    assert.equal(dev.stats.connectionsOpened, 1);
    // A second connection gets the next port.
    const other = backend.host?.connect(52, new RecordingHandler());
    assert.equal(other?.hostPort, FIRST_HOST_PORT + 1);
  });

  it("host-initiated connection refused by the guest (RST) is closed; none while the driver is down", () => {
    const { g, backend } = setup();
    g.post(2);
    const h = new RecordingHandler();
    const stream = backend.host?.connect(99, h);
    assert.ok(stream);
    g.receive();
    g.op(Op.RST, 99, stream.hostPort);
    assert.equal(h.closes, 1);
    assert.equal(stream.open, false);
    g.drv.wr(MmioReg.STATUS, 0);
    assert.equal(backend.host?.connect(99, new RecordingHandler()), null);
  });

  it("refuses guest connections without a backend, when the backend rejects, and beyond the limit", () => {
    const plain = Guest.start();
    plain.post(2);
    plain.op(Op.REQUEST, GUEST_PORT, HOST_PORT);
    assertFromHost(plain.receive()[0], Op.RST);
    assert.equal(plain.device.stats.connectionsRefused, 1);

    const { g, dev } = setup({ policy: "reject" });
    g.post(2);
    g.op(Op.REQUEST, GUEST_PORT, HOST_PORT);
    assertFromHost(g.receive()[0], Op.RST);
    assert.equal(dev.openConnections, 0);

    const backend = new TestBackend();
    const limited = Guest.start({ backend, maxConnections: 2 });
    limited.post(8);
    for (let i = 0; i < 3; i++) limited.op(Op.REQUEST, GUEST_PORT + i, HOST_PORT);
    assert.deepEqual(
      limited.receive().map((p) => [p.op, p.dstPort]),
      [
        [Op.RESPONSE, GUEST_PORT],
        [Op.RESPONSE, GUEST_PORT + 1],
        [Op.RST, GUEST_PORT + 2],
      ],
    );
    assert.equal(limited.device.stats.connectionsRefused, 1);
  });

  it("a backend may answer later; a guest that gave up meanwhile makes accept() fail", () => {
    const { g, backend } = setup({ policy: "hold" });
    g.post(4);
    g.op(Op.REQUEST, GUEST_PORT, HOST_PORT);
    assert.equal(g.receive().length, 0);
    const held = backend.streams[0];
    assert.ok(held);
    backend.accept(held);
    assertFromHost(g.receive()[0], Op.RESPONSE);

    g.op(Op.REQUEST, GUEST_PORT + 1, HOST_PORT);
    const late = backend.streams[1];
    assert.ok(late);
    g.op(Op.RST, GUEST_PORT + 1, HOST_PORT);
    assert.equal(late.accept(new RecordingHandler()), false);
    assert.equal(g.receive().length, 0);
  });

  it("shutdown: the guest's SEND ends the host's input, a full SHUTDOWN is answered with RST", () => {
    const { g, handler, stream, dev } = established();
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("last words"));
    g.op(Op.SHUTDOWN, GUEST_PORT, HOST_PORT, { flags: Shutdown.SEND });
    assert.equal(handler.ends, 1);
    // The host may still answer.
    stream.write(bytes("reply"));
    assert.equal(text(assertFromHost(g.receive()[0], Op.RW).payload), "reply");
    // Data after SHUTDOWN(SEND) breaks the protocol... not sent here; a full shutdown closes cleanly.
    g.op(Op.SHUTDOWN, GUEST_PORT, HOST_PORT, { flags: Shutdown.BOTH });
    assertFromHost(g.receive()[0], Op.RST);
    assert.equal(handler.closes, 1);
    assert.equal(handler.text(), "last words");
    assert.equal(dev.openConnections, 0);
    assert.equal(stream.open, false);
    assert.equal(dev.stats.txProtocol, 0);
  });

  it("shutdown: host end() sends SHUTDOWN(SEND) after the data; close() sends SHUTDOWN(BOTH) and waits for RST", () => {
    const { g, handler, stream, dev } = established();
    stream.write(bytes("one"));
    stream.end();
    assert.equal(stream.write(bytes("dropped")), 7, "writes after end() are taken and dropped");
    assert.deepEqual(
      g.receive().map((p) => [p.op, p.flags, text(p.payload)]),
      [
        [Op.RW, 0, "one"],
        [Op.SHUTDOWN, Shutdown.SEND, ""],
      ],
    );
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("still talking"));
    assert.equal(handler.text(), "still talking");
    stream.close();
    assert.deepEqual(
      g.receive().map((p) => [p.op, p.flags]),
      [[Op.SHUTDOWN, Shutdown.BOTH]],
    );
    // Guest data after the host closed is dropped quietly.
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("nobody listens"));
    assert.equal(handler.text(), "still talking");
    assert.equal(dev.openConnections, 1);
    g.op(Op.RST, GUEST_PORT, HOST_PORT);
    assert.equal(dev.openConnections, 0);
    assert.equal(handler.closes, 0, "close() detached the handler");
  });

  it("guest SHUTDOWN(RCV) drops buffered host data; reset() sends RST at once", () => {
    const { g, stream, handler } = established({}, 10);
    g.receive();
    stream.write(new Uint8Array(100));
    g.receive();
    g.op(Op.SHUTDOWN, GUEST_PORT, HOST_PORT, { flags: Shutdown.RCV });
    assert.equal(stream.write(bytes("x")), 1);
    g.op(Op.CREDIT_UPDATE, GUEST_PORT, HOST_PORT, { bufAlloc: 1000, fwdCnt: 10 });
    assert.equal(
      g.receive().filter((p) => p.op === Op.RW).length,
      0,
      "nothing more for a guest that stopped reading",
    );
    stream.reset();
    assertFromHost(g.receive()[0], Op.RST);
    assert.equal(handler.closes, 0);
  });

  it("RST for packets on unknown connections (never for an RST)", () => {
    const g = Guest.start({ backend: new TestBackend() });
    g.post(8);
    g.op(Op.RW, 7, 8, {}, bytes("who?"));
    g.op(Op.SHUTDOWN, 9, 10, { flags: 1 });
    g.op(Op.CREDIT_UPDATE, 11, 12);
    g.op(Op.RST, 13, 14);
    g.op(Op.RESPONSE, 15, 16);
    assert.deepEqual(
      g
        .receive()
        .map((p) => [assertFromHost(p, Op.RST, p.srcPort, p.dstPort).srcPort, p.dstPort, p.bufAlloc]),
      [
        [8, 7, 0],
        [10, 9, 0],
        [12, 11, 0],
        [16, 15, 0],
      ],
    );
    assert.equal(g.device.stats.txUnknown, 4);
  });

  it("malformed headers are dropped and counted, never answered; the device carries on", () => {
    const { g, handler, dev } = established();
    const conn = { srcPort: GUEST_PORT, dstPort: HOST_PORT, bufAlloc: 4096 };
    const bad: [string, () => void][] = [
      [
        "short header",
        () => {
          g.mem.write(SCRATCH, encodeHeader(conn));
          g.drv.submit(1, [{ addr: SCRATCH, len: 43 }]);
        },
      ],
      ["wrong source CID", () => g.send({ ...conn, srcCid: 4 }, bytes("x"))],
      ["source CID high bits", () => g.send({ ...conn, srcCidHi: 1 }, bytes("x"))],
      ["destination not the host", () => g.send({ ...conn, dstCid: 3 }, bytes("x"))],
      ["destination high bits", () => g.send({ ...conn, dstCidHi: 1 }, bytes("x"))],
      ["seqpacket", () => g.send({ ...conn, type: 2 }, bytes("x"))],
      ["type 0", () => g.send({ ...conn, type: 0 }, bytes("x"))],
      ["len beyond the buffers", () => g.send({ ...conn, len: 100 }, bytes("x"))],
      ["len on a control packet", () => g.send({ ...conn, op: Op.CREDIT_UPDATE, len: 1 }, bytes("x"))],
      ["len above 64 KiB", () => g.send({ ...conn, len: 65537 }, new Uint8Array(65537))],
      ["unknown SHUTDOWN flags", () => g.send({ ...conn, op: Op.SHUTDOWN, flags: 4 })],
    ];
    for (const [what, send] of bad) {
      const before = dev.stats.txMalformed;
      send();
      assert.equal(dev.stats.txMalformed, before + 1, what);
    }
    assert.equal(g.receive().length, 0, "no answer to malformed packets");
    assert.equal(handler.received.length, 0);
    // The connection still works.
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("ok"));
    assert.equal(handler.text(), "ok");
    assert.equal(g.drv.needsReset(), false);
  });

  it("protocol violations on a connection reset it", () => {
    for (const [what, op, flags] of [
      ["op 0", Op.INVALID, 0],
      ["op 8", 8, 0],
      ["op 0xffff", 0xffff, 0],
      ["second REQUEST", Op.REQUEST, 0],
      ["RESPONSE from the connecting side", Op.RESPONSE, 0],
    ] as const) {
      const { g, handler, dev } = established();
      g.op(op, GUEST_PORT, HOST_PORT, { flags });
      assertFromHost(g.receive()[0], Op.RST);
      assert.equal(dev.stats.txProtocol, 1, what);
      assert.equal(handler.closes, 1, what);
      assert.equal(dev.openConnections, 0, what);
    }
    // Data after the guest's SHUTDOWN(SEND).
    const { g, dev } = established();
    g.op(Op.SHUTDOWN, GUEST_PORT, HOST_PORT, { flags: Shutdown.SEND });
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("late"));
    assertFromHost(g.receive()[0], Op.RST);
    assert.equal(dev.stats.txProtocol, 1);
    // Data before the backend accepted.
    const held = setup({ policy: "hold" });
    held.g.post(2);
    held.g.op(Op.REQUEST, GUEST_PORT, HOST_PORT);
    held.g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("eager"));
    assertFromHost(held.g.receive()[0], Op.RST);
    assert.equal(held.backend.streams[0]?.accept(new RecordingHandler()), false);
  });

  it("receive buffers shorter than a header are returned unused", () => {
    const { g, dev } = setup();
    g.post(1, 20);
    g.op(Op.RW, 1, 2);
    const [p] = g.receive();
    assert.equal(p?.used, 0);
    assert.equal(dev.stats.rxBufferTooSmall, 1);
    g.post(1);
    assertFromHost(g.receive()[0], Op.RST, 2, 1);
  });

  it("connections take turns on the receive queue", () => {
    const s = setup();
    s.g.post(2);
    s.g.op(Op.REQUEST, 1, HOST_PORT);
    s.g.op(Op.REQUEST, 2, HOST_PORT);
    s.g.receive();
    const [a, b] = s.backend.streams;
    assert.ok(a && b);
    a.write(new Uint8Array(3 * 4096).fill(0xa));
    b.write(new Uint8Array(3 * 4096).fill(0xb));
    s.g.post(6);
    assert.deepEqual(
      s.g.receive().map((p) => p.dstPort),
      [1, 2, 1, 2, 1, 2],
    );
  });

  it("device reset closes every connection; transportReset() sends the TRANSPORT_RESET event", () => {
    const { g, handler, dev } = established();
    g.drv.wr(MmioReg.STATUS, 0);
    assert.equal(handler.closes, 1);
    assert.equal(dev.openConnections, 0);

    const s = established();
    const ev = s.g.drv.rings[EVQ];
    assert.ok(ev);
    const head = ev.chain([{ addr: 0x8000_0000 + 0x38_0000, len: 4, write: true }]);
    s.g.mem.write(0x8000_0000 + 0x38_0000, [0xff, 0xff, 0xff, 0xff]);
    ev.publish(head);
    s.g.drv.wr(MmioReg.QUEUE_NOTIFY, EVQ);
    assert.equal(ev.takeUsed().length, 0, "no event without a reason");
    s.dev.transportReset();
    assert.deepEqual(ev.takeUsed(), [[head, 4]]);
    assert.deepEqual([...s.g.mem.read(0x8000_0000 + 0x38_0000, 4)], [0, 0, 0, 0]);
    assert.equal(s.handler.closes, 1);
    assert.equal(s.dev.stats.events, 1);
  });

  it("after a TRANSPORT_RESET, host REQUESTs wait until the driver hands the event buffer back", () => {
    const s = setup();
    s.g.post(4);
    const ev = s.g.drv.rings[EVQ];
    assert.ok(ev);
    const at = 0x8000_0000 + 0x38_0000;
    const heads = [0, 1, 2].map((i) => ev.chain([{ addr: at + 8 * i, len: 4, write: true }]));
    ev.publish(heads[0] as number);
    ev.publish(heads[1] as number);
    s.g.drv.wr(MmioReg.QUEUE_NOTIFY, EVQ);
    s.dev.transportReset();
    assert.deepEqual(ev.takeUsed(), [[heads[0], 4]]);
    // With EVENT_IDX a driver notifies only past the device's event: the device asks for the next
    // buffer (split: avail_event at the avail idx; packed: the device event back to ENABLE).
    if (ev instanceof PackedTestRing) assert.equal(s.g.mem.u16(ev.ring.used + 2) & 3, RingEvent.ENABLE);
    else assert.equal(ev.availEvent(), 2);
    const handler = new RecordingHandler(true);
    assert.ok(s.dev.connect(HOST_PORT, handler));
    assert.deepEqual(s.g.receive(), [], "no REQUEST before the driver took the reset");
    // What Linux does once it has read the CID again and reset its sockets: the buffer goes back.
    ev.publish(heads[2] as number);
    s.g.drv.wr(MmioReg.QUEUE_NOTIFY, EVQ);
    const [request] = s.g.receive();
    assertFromHost(request, Op.REQUEST, FIRST_HOST_PORT, HOST_PORT);
    assert.equal(s.dev.stats.events, 1);
  });

  it("snapshot/restore: counters survive, connections do not; the guest's sockets of them get RSTs", () => {
    const { g, dev, handler } = established();
    g.op(Op.RW, GUEST_PORT, HOST_PORT, {}, bytes("abc"));
    const saved = JSON.parse(JSON.stringify(g.drv.mmio.snapshot()));
    assert.deepEqual(saved.device.connections, [HOST_PORT, GUEST_PORT]);
    const again = new Guest(new VirtioVsock({ guestCid: GUEST_CID }));
    again.mem.bytes.set(g.mem.bytes);
    again.drv.mmio.restore(saved);
    assert.equal(again.drv.status() & Status.DRIVER_OK, Status.DRIVER_OK);
    assert.deepEqual(again.device.stats, dev.stats);
    // Each connection is reset on its own; no TRANSPORT_RESET (it would leave the sockets in an error
    // state a poll for input never reports).
    assert.equal((again.device.snapshot() as { resetPending: boolean }).resetPending, false);
    // The same device restored over its own state drops its connections and sends their RSTs.
    const ev = g.drv.rings[EVQ];
    assert.ok(ev);
    const head = ev.chain([{ addr: 0x8000_0000 + 0x38_0000, len: 4, write: true }]);
    ev.publish(head);
    const before = dev.snapshot();
    dev.restore(before);
    assert.equal(handler.closes, 1);
    assert.equal(dev.openConnections, 0);
    g.post(1);
    assertFromHost(g.receive()[0], Op.RST);
    g.drv.wr(MmioReg.QUEUE_NOTIFY, EVQ);
    assert.equal(ev.takeUsed().length, 0, "no event");
    // New host connections do not reuse a port the guest saw before the restore.
    const fresh = new Guest(new VirtioVsock({ guestCid: GUEST_CID }));
    fresh.device.restore({ ...saved.device, nextHostPort: 0x4000_0123 });
    assert.equal((fresh.device.snapshot() as { nextHostPort: number }).nextHostPort, 0x4000_0123);

    // A clone (another CID): the RSTs carry the CID the guest's sockets have; then the TRANSPORT_RESET
    // that tells it its new CID.
    dev.restore({ ...before, connections: [HOST_PORT + 1, GUEST_PORT], resetPending: true, formerCid: 77 });
    g.post(1);
    const [rst] = g.receive();
    assert.deepEqual(
      [rst?.op, rst?.dstCid, rst?.srcPort, rst?.dstPort],
      [Op.RST, 77, HOST_PORT + 1, GUEST_PORT],
    );
    assert.deepEqual(ev.takeUsed(), [[head, 4]]);

    assert.throws(() => dev.restore({ ...dev.snapshot(), guestCid: 9 }), RangeError);
    assert.throws(() => dev.restore({ ...dev.snapshot(), stats: { txPackets: -1 } }), RangeError);
    assert.throws(() => dev.restore({ ...dev.snapshot(), connections: [1] }), RangeError);
    assert.throws(() => dev.restore({ ...dev.snapshot(), connections: [1, -2] }), RangeError);
    assert.throws(() => dev.restore({ ...dev.snapshot(), nextHostPort: 5 }), RangeError);
    assert.throws(() => dev.restore({ ...dev.snapshot(), formerCid: 1 }), RangeError);
    assert.throws(() => dev.restore(null), TypeError);
    // A snapshot from before connections were saved: the running driver is owed the event instead.
    const {
      connections: _c,
      nextHostPort: _n,
      ...old
    } = dev.snapshot() as unknown as Record<string, unknown>;
    dev.restore(old);
    assert.equal((dev.snapshot() as { resetPending: boolean }).resetPending, true);
  });

  it("close() drops connections and closes the backend", async () => {
    const { dev, backend, handler } = established();
    await dev.close();
    assert.equal(handler.closes, 1);
    assert.equal(backend.closed, true);
  });
});
