/**
 * Property tests of virtio-vsock, in the style of fuzz.test.ts and net-fuzz.test.ts: whatever the
 * driver writes to the registers and rings and whatever the host does, the device never throws, never
 * touches memory outside guest RAM or what it was not given as device-writable, writes only well-formed
 * packets; and against a model of a connection, both byte streams arrive intact and in order without
 * either side ever exceeding the credit the other gave.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { DescFlag } from "../../../src/devices/virtio/spec.js";
import type { VsockStream } from "../../../src/devices/virtio/vsock/backend.js";
import { Op, VSOCK_HDR_SIZE } from "../../../src/devices/virtio/vsock/protocol.js";
import { VirtioVsock } from "../../../src/devices/virtio/vsock/virtio-vsock.js";
import { describe, it } from "../../support/test.js";
import { TestDriver, TestMemory } from "./harness.js";
import {
  BASE,
  decodeHeader,
  encodeHeader,
  GUEST_CID,
  Guest,
  HOST_CID,
  RecordingHandler,
  RXQ,
  TestBackend,
  TXQ,
} from "./vsock-harness.js";

const RUNS = Number(process.env.VIREO_FUZZ_RUNS ?? 150);
const TABLES = BASE + 0x1_0000;
const READABLE = BASE + 0x4_0000;
const WRITABLE = BASE + 0x8_0000;
const SMALL_RAM = 1 << 20;

/** Header fields a guest might send: mostly plausible, sometimes anything. */
const header = fc.record({
  srcCid: fc.oneof({ weight: 6, arbitrary: fc.constant(GUEST_CID) }, fc.constantFrom(0, 2, 4, 0xffff_ffff)),
  srcCidHi: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, fc.constant(1)),
  dstCid: fc.oneof({ weight: 6, arbitrary: fc.constant(HOST_CID) }, fc.constantFrom(0, 3, 0xffff_ffff)),
  dstCidHi: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, fc.constant(0x8000_0000)),
  srcPort: fc.oneof(fc.constantFrom(1, 2, 3), fc.integer({ min: 0, max: 0xffff_ffff })),
  dstPort: fc.oneof(fc.constantFrom(10, 11), fc.integer({ min: 0, max: 0xffff_ffff })),
  type: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 0xffff })),
  op: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 7 }) }, fc.integer({ min: 0, max: 0xffff })),
  flags: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) },
    fc.integer({ min: 0, max: 0xffff_ffff }),
  ),
  bufAlloc: fc.oneof(fc.constantFrom(0, 1, 4096, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
  fwdCnt: fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
});

/** A guest packet: a header, a payload, and a `len` that may lie. */
const guestPacket = fc.record({
  h: header,
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n)),
  ),
  lenDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: -70_000, max: 70_000 })),
  split: fc.integer({ min: 1, max: 4 }),
});

/** Checks a packet the device wrote for the guest. */
function checkHostPacket(bytes: Uint8Array, used: number): number {
  assert.ok(used >= VSOCK_HDR_SIZE || used === 0, `used ${used}`);
  if (used === 0) return 0;
  const h = decodeHeader(bytes);
  assert.equal(h.srcCid, HOST_CID);
  assert.equal(h.srcCidHi, 0);
  assert.equal(h.dstCid, GUEST_CID);
  assert.equal(h.dstCidHi, 0);
  assert.equal(h.type, 1);
  assert.ok(h.op >= Op.REQUEST && h.op <= Op.CREDIT_REQUEST, `op ${h.op}`);
  assert.equal(used, VSOCK_HDR_SIZE + h.len);
  if (h.op !== Op.RW) assert.equal(h.len, 0);
  if (h.op === Op.SHUTDOWN) assert.ok(h.flags >= 1 && h.flags <= 3);
  else assert.equal(h.flags, 0);
  return h.op;
}

describe("virtio-vsock fuzz", () => {
  it("register chaos, random memory, guest packets and host calls: no throw, nothing outside RAM touched", () => {
    const step = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant("reg" as const),
          write: fc.boolean(),
          offset: fc.oneof(fc.constantFrom(...Object.values(MmioReg)), fc.integer({ min: 0, max: 0x1ff })),
          size: fc.constantFrom(1, 2, 4, 4, 8),
          value: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 16 })),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("poke" as const),
          at: fc.integer({ min: 0, max: SMALL_RAM - 64 }),
          bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "start" as const }) },
      { weight: 3, arbitrary: guestPacket.map((p) => ({ kind: "packet" as const, ...p })) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => ({ kind: "post" as const, n })) },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("host" as const),
          what: fc.constantFrom(
            "connect",
            "write",
            "consume",
            "end",
            "close",
            "reset",
            "accept",
            "reject",
            "treset",
          ),
          pick: fc.nat(),
          n: fc.integer({ min: 0, max: 100_000 }),
        }),
      },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const mem = new TestMemory(BASE, SMALL_RAM);
        const backend = new TestBackend();
        backend.policy = "hold";
        const dev = new VirtioVsock({ guestCid: GUEST_CID, backend, maxConnections: 4, bufferSize: 8192 });
        const drv = new TestDriver(mem, dev);
        const streams: VsockStream[] = backend.streams;
        const handlers: RecordingHandler[] = [];
        const out = new Uint32Array(2);
        let slot = 0;
        for (const s of steps) {
          if (s.kind === "reg") {
            if (s.write) drv.mmio.write(s.offset, s.size, s.value, s.value ^ 0x5555_5555);
            else drv.mmio.read(s.offset, s.size, out);
          } else if (s.kind === "poke") mem.bytes.set(s.bytes, s.at);
          else if (s.kind === "start") {
            try {
              drv.start({ size: 8 });
            } catch (e) {
              if (!(e instanceof assert.AssertionError)) throw e;
            }
          } else if (s.kind === "packet" || s.kind === "post") {
            const ring = drv.rings[s.kind === "packet" ? TXQ : RXQ];
            if (ring === undefined) continue;
            const at = BASE + 0x8_0000 + (slot++ % 4) * 0x1_2000;
            if (s.kind === "packet") {
              const len = Math.max(0, s.payload.length + s.lenDelta);
              mem.write(at, encodeHeader({ ...s.h, len }));
              mem.write(at + VSOCK_HDR_SIZE, s.payload);
              const total = VSOCK_HDR_SIZE + s.payload.length;
              const piece = Math.ceil(total / s.split);
              const bufs = [];
              for (let off = 0; off < total; off += piece)
                bufs.push({ addr: at + off, len: Math.min(piece, total - off) });
              ring.publish(ring.chain(bufs));
              drv.wr(MmioReg.QUEUE_NOTIFY, TXQ);
            } else {
              for (let i = 0; i < s.n; i++)
                ring.publish(ring.chain([{ addr: at + i * 0x1000, len: 0x1000, write: true }]));
              drv.wr(MmioReg.QUEUE_NOTIFY, RXQ);
            }
          } else {
            const stream = streams.length > 0 ? streams[s.pick % streams.length] : undefined;
            const h = new RecordingHandler(s.n % 2 === 0);
            switch (s.what) {
              case "connect": {
                const c = backend.host?.connect(s.n % 4, h) ?? null;
                if (c !== null) {
                  h.stream = c;
                  streams.push(c);
                  handlers.push(h);
                }
                break;
              }
              case "write":
                stream?.write(new Uint8Array(s.n % 20_000).fill(s.n & 0xff));
                break;
              case "consume":
                for (const x of handlers) if (x.held > 0) x.consume(Math.min(x.held, s.n));
                break;
              case "end":
                stream?.end();
                break;
              case "close":
                stream?.close();
                break;
              case "reset":
                stream?.reset();
                break;
              case "accept":
                if (stream?.accept(h)) {
                  h.stream = stream;
                  handlers.push(h);
                }
                break;
              case "reject":
                stream?.reject();
                break;
              case "treset":
                dev.transportReset();
                break;
            }
          }
          assert.ok(dev.openConnections <= 4);
        }
        assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
      }),
      { numRuns: RUNS },
    );
  });

  it("malicious rings and packets: only device-writable buffers written, only well-formed packets", () => {
    const descriptor = fc.record({
      write: fc.boolean(),
      indirect: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      next: fc.boolean(),
      nextIndex: fc.integer({ min: 0, max: 20 }),
      region: fc.boolean(),
      offset: fc.integer({ min: 0, max: 0x3_ff00 }),
      addr: fc.oneof(
        fc.integer({ min: BASE, max: BASE + SMALL_RAM - 1 }),
        fc.constantFrom(0, BASE - 1, BASE + SMALL_RAM, BASE + SMALL_RAM - 8, 2 ** 32, 2 ** 53 - 16),
      ),
      len: fc.oneof(
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 0x2_0000 }),
        fc.constantFrom(0xffff_ffff, 44, 43),
      ),
    });
    const scenario = fc.record({
      size: fc.constantFrom(4, 8, 16),
      table: fc.array(descriptor, { minLength: 16, maxLength: 16 }),
      indirect: fc.array(descriptor, { maxLength: 32 }),
      packets: fc.array(guestPacket, { maxLength: 8 }),
      rounds: fc.array(
        fc.record({
          heads: fc.array(fc.integer({ min: 0, max: 18 }), { maxLength: 6 }),
          notify: fc.integer({ min: 0, max: 3 }),
          hostConnect: fc.boolean(),
        }),
        { maxLength: 6 },
      ),
      features: fc.subarray([28, 29]),
    });
    type Desc = typeof descriptor extends fc.Arbitrary<infer T> ? T : never;
    const put = (mem: TestMemory, at: number, d: Desc) => {
      let addr = d.region ? (d.write ? WRITABLE : READABLE) + (d.offset % 0x3_f000) : d.addr;
      if (d.indirect && d.region) addr = TABLES + (d.offset % 0x2_f000);
      if (d.write && addr >= BASE && addr < WRITABLE) addr = WRITABLE + ((addr - BASE) % (WRITABLE - BASE));
      const len = d.indirect && d.region ? (d.len % 24) * 16 : d.len;
      mem.set64(at, addr);
      mem.set32(at + 8, len);
      mem.set16(
        at + 12,
        (d.write ? DescFlag.WRITE : 0) | (d.indirect ? DescFlag.INDIRECT : 0) | (d.next ? DescFlag.NEXT : 0),
      );
      mem.set16(at + 14, d.nextIndex);
    };
    fc.assert(
      fc.property(scenario, (sc) => {
        const mem = new TestMemory(BASE, SMALL_RAM);
        for (let i = READABLE - BASE; i < WRITABLE - BASE; i++) mem.bytes[i] = (i * 13) & 0xff;
        // Readable region: valid packets (from the guest) laid out back to back at 0x1000 steps.
        sc.packets.forEach((p, i) => {
          const at = READABLE + i * 0x1000;
          mem.write(at, encodeHeader({ ...p.h, len: Math.max(0, p.payload.length + p.lenDelta) }));
          mem.write(at + VSOCK_HDR_SIZE, p.payload.subarray(0, 0x1000 - VSOCK_HDR_SIZE));
        });
        const backend = new TestBackend();
        const dev = new VirtioVsock({ guestCid: GUEST_CID, backend, maxConnections: 8, bufferSize: 4096 });
        const drv = new TestDriver(mem, dev);
        drv.start({ size: sc.size, ringBase: BASE, features: [32, ...sc.features] });
        sc.indirect.forEach((d, i) => {
          put(mem, TABLES + 16 * i, d);
        });
        sc.table.forEach((d, i) => {
          if (i < sc.size) for (const r of drv.rings) put(mem, r.ring.desc + 16 * i, d);
        });
        const readOnly = mem.read(TABLES, WRITABLE - TABLES);
        for (const round of sc.rounds) {
          if (round.hostConnect)
            backend.host?.connect(5, new RecordingHandler())?.write(new Uint8Array(5000));
          for (const r of drv.rings) for (const h of round.heads) r.publish(h);
          const driverArea = (r: (typeof drv.rings)[number]) =>
            mem.read(r.ring.desc, 16 * r.ring.size + 6 + 2 * r.ring.size);
          const before = drv.rings.map(driverArea);
          drv.wr(MmioReg.QUEUE_NOTIFY, round.notify);
          drv.rings.forEach((r, i) => {
            assert.deepEqual(driverArea(r), before[i], "descriptor table or avail ring written");
          });
          const rx = drv.rings[RXQ];
          for (const [head, len] of rx?.takeUsed() ?? []) {
            assert.ok(head < sc.size, `used head ${head}`);
            // A header and at most the connection's buffer of data, or nothing (a buffer too small).
            assert.ok(len === 0 || (len >= VSOCK_HDR_SIZE && len <= VSOCK_HDR_SIZE + 4096), `used ${len}`);
          }
          for (const r of drv.rings.slice(1)) r.takeUsed();
        }
        assert.deepEqual(mem.read(TABLES, WRITABLE - TABLES), readOnly, "tables or readable data written");
        assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
        assert.ok(dev.openConnections <= 8);
      }),
      { numRuns: RUNS },
    );
  });

  it("every packet the device writes is well formed", () => {
    fc.assert(
      fc.property(
        fc.array(guestPacket, { maxLength: 30 }),
        fc.array(fc.nat({ max: 20_000 }), { maxLength: 5 }),
        (packets, writes) => {
          const backend = new TestBackend();
          const g = Guest.start({ backend, bufferSize: 4096 });
          g.post(64);
          const stream = backend.host?.connect(77, new RecordingHandler());
          for (const p of packets) {
            const len = Math.max(0, p.payload.length + p.lenDelta);
            g.send({ ...p.h, len }, p.payload, p.split);
            for (const w of writes) stream?.write(new Uint8Array(w));
            for (const s of backend.streams) s.write(new Uint8Array(100));
          }
          for (const pkt of g.receive()) checkHostPacket(encodeHeader(pkt), pkt.used);
          assert.equal(g.drv.needsReset(), false);
          assert.ok(g.mem.guardsIntact());
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("against a model: both streams arrive intact and in order, and neither side exceeds its credit", () => {
    const op = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("gsend" as const),
          n: fc.integer({ min: 1, max: 9000 }),
          split: fc.integer({ min: 1, max: 3 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("hwrite" as const),
          n: fc.integer({ min: 1, max: 8000 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("hconsume" as const),
          n: fc.integer({ min: 1, max: 20_000 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("gpost" as const),
          n: fc.integer({ min: 1, max: 6 }),
          size: fc.oneof(fc.constant(4140), fc.integer({ min: 45, max: 6000 })),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("gread" as const), update: fc.boolean() }) },
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 50 }),
        fc.oneof(fc.constantFrom(512, 4096, 262_144), fc.integer({ min: 512, max: 300_000 })),
        fc.constantFrom(4096, 8192, 65536),
        (ops, guestBuf, hostBuf) => {
          const backend = new TestBackend();
          backend.autoConsume = false;
          const g = Guest.start({ backend, bufferSize: hostBuf });
          const GP = 1000;
          const HP = 2000;
          // Guest state: what it sent, what it received, its receive buffer accounting.
          let guestSent = 0;
          let guestGot = 0;
          let guestReported = 0;
          let hostBufAlloc = 0;
          let hostFwd = 0;
          let seq = 0;
          const sentByGuest: number[] = [];
          const gotByGuest: number[] = [];
          const hostOut: number[] = [];
          let hostPending = new Uint8Array(0);
          let hostSeq = 0;
          const gsend = (h: object, payload?: Uint8Array, split = 1) =>
            g.send({ srcPort: GP, dstPort: HP, bufAlloc: guestBuf, fwdCnt: guestGot, ...h }, payload, split);
          const read = (update: boolean) => {
            for (const p of g.receive()) {
              checkHostPacket(encodeHeader(p), p.used);
              if (p.used === 0) continue;
              assert.notEqual(p.op, Op.RST, "no reset");
              hostBufAlloc = p.bufAlloc;
              hostFwd = p.fwdCnt;
              if (p.op === Op.RW) {
                for (const b of p.payload) gotByGuest.push(b);
                guestGot += p.len;
                assert.ok(guestGot - guestReported <= guestBuf, "the host exceeded the guest's credit");
              }
              if (p.op === Op.CREDIT_REQUEST) update = true;
            }
            if (update) {
              guestReported = guestGot;
              gsend({ op: Op.CREDIT_UPDATE });
            }
          };
          const pump = () => {
            const stream = backend.streams[0];
            if (stream === undefined || hostPending.length === 0) return;
            const n = stream.write(hostPending);
            hostPending = hostPending.subarray(n);
          };
          g.post(4);
          gsend({ op: Op.REQUEST });
          guestReported = 0;
          read(false);
          const handler = backend.handlers[0];
          assert.ok(handler);
          for (const o of ops) {
            if (o.kind === "gsend") {
              const credit = hostBufAlloc - (guestSent - hostFwd);
              const n = Math.min(o.n, credit);
              if (n <= 0) continue;
              const payload = new Uint8Array(n).map(() => seq++ & 0xff);
              for (const b of payload) sentByGuest.push(b);
              guestSent += n;
              gsend({ op: Op.RW }, payload, o.split);
              guestReported = guestGot;
            } else if (o.kind === "hwrite") {
              const more = new Uint8Array(o.n).map(() => (hostSeq++ * 7) & 0xff);
              for (const b of more) hostOut.push(b);
              const joined = new Uint8Array(hostPending.length + more.length);
              joined.set(hostPending);
              joined.set(more, hostPending.length);
              hostPending = joined;
              pump();
            } else if (o.kind === "hconsume") {
              handler.consume(Math.min(handler.held, o.n));
              read(false);
            } else if (o.kind === "gpost") {
              g.post(o.n, o.size);
            } else read(o.update);
            pump();
          }
          // Drain both ways (each round moves at least min(guestBuf, 4096) bytes to the guest).
          const rounds = 20 + 2 * Math.ceil(hostOut.length / Math.min(guestBuf, 4096));
          for (
            let i = 0;
            i < rounds && (hostPending.length > 0 || gotByGuest.length < hostOut.length || handler.held > 0);
            i++
          ) {
            g.post(4);
            read(true);
            handler.consume(handler.held);
            pump();
          }
          read(true);
          assert.equal(g.device.stats.txProtocol, 0);
          assert.equal(g.device.stats.txMalformed, 0);
          assert.deepEqual(
            Uint8Array.from(handler.received),
            Uint8Array.from(sentByGuest),
            "guest → host stream",
          );
          assert.deepEqual(Uint8Array.from(gotByGuest), Uint8Array.from(hostOut), "host → guest stream");
          assert.equal(g.drv.needsReset(), false);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
