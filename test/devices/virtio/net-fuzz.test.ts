/**
 * Property tests of virtio-net, in the style of fuzz.test.ts: whatever the driver writes to the
 * registers and rings and whatever the host network sends, the device never throws, never touches
 * memory outside guest RAM or what it was not given as device-writable; and against a model of the
 * guest's and host's traffic, every frame is delivered intact and in order or dropped and counted.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { RecordingNetBackend } from "../../../src/devices/virtio/net/backend.js";
import { MAX_FRAME, NET_HDR_SIZE, VirtioNet } from "../../../src/devices/virtio/net/virtio-net.js";
import { DescFlag } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const RINGS = BASE;
const TABLES = BASE + 0x1_0000;
const READABLE = BASE + 0x4_0000;
const WRITABLE = BASE + 0x8_0000;
const RUNS = Number(process.env.VIREO_FUZZ_RUNS ?? 150);
const MAC = [0x52, 0x54, 0x00, 0x76, 0x00, 0x00];

/** Frames a host network might send: mostly sane, some empty, short, huge. */
const hostFrame = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ minLength: 14, maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 14 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1400, max: 1600 }).map((n) => new Uint8Array(n).fill(n & 0xff)) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_FRAME, MAX_FRAME + 1).map((n) => new Uint8Array(n)) },
);

const wildAddress = fc.oneof(
  fc.integer({ min: BASE, max: BASE + RAM - 1 }),
  fc.constantFrom(0, BASE - 1, BASE + RAM, BASE + RAM - 1, BASE + RAM - 8, 2 ** 32, 2 ** 53 - 16),
);
const wildLength = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 0x2_0000 }),
  fc.constantFrom(0xffff_ffff, RAM, NET_HDR_SIZE, NET_HDR_SIZE + 14),
);

describe("virtio-net fuzz", () => {
  it("register chaos, random ring memory and host frames: no throw, nothing outside RAM touched", () => {
    const step = fc.oneof(
      {
        weight: 5,
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
          at: fc.integer({ min: 0, max: RAM - 64 }),
          bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "start" as const }) },
      { weight: 2, arbitrary: hostFrame.map((frame) => ({ kind: "frame" as const, frame })) },
      { weight: 1, arbitrary: fc.boolean().map((up) => ({ kind: "link" as const, up })) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const mem = new TestMemory(BASE, RAM);
        const backend = new RecordingNetBackend();
        const net = new VirtioNet(backend, { mac: MAC, rxBacklog: 8 });
        const drv = new TestDriver(mem, net);
        const out = new Uint32Array(2);
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
          } else if (s.kind === "frame") backend.inject(s.frame);
          else net.setLinkUp(s.up);
        }
        assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
        assert.ok(net.pendingFrames <= 8);
      }),
      { numRuns: RUNS },
    );
  });

  it("malicious rings: writes only device-writable buffers, never the driver's areas", () => {
    const descriptor = fc.record({
      write: fc.boolean(),
      indirect: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      next: fc.boolean(),
      nextIndex: fc.integer({ min: 0, max: 20 }),
      region: fc.boolean(),
      offset: fc.integer({ min: 0, max: 0x3_ff00 }),
      addr: wildAddress,
      len: wildLength,
    });
    const scenario = fc.record({
      size: fc.constantFrom(4, 8, 16),
      table: fc.array(descriptor, { minLength: 16, maxLength: 16 }),
      indirect: fc.array(descriptor, { maxLength: 32 }),
      rounds: fc.array(
        fc.record({
          heads: fc.array(fc.integer({ min: 0, max: 18 }), { maxLength: 6 }),
          notify: fc.integer({ min: 0, max: 2 }),
          frames: fc.array(hostFrame, { maxLength: 3 }),
        }),
        { maxLength: 6 },
      ),
      features: fc.subarray([28, 29, 3]),
    });
    type Desc = typeof descriptor extends fc.Arbitrary<infer T> ? T : never;
    const put = (mem: TestMemory, at: number, d: Desc) => {
      let addr = d.region ? (d.write ? WRITABLE : READABLE) + (d.offset % 0x3_f000) : d.addr;
      if (d.indirect && d.region) addr = TABLES + (d.offset % 0x2_f000);
      // Any RAM handed out as writable is kept in WRITABLE, so the invariant below can be checked.
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
        const mem = new TestMemory(BASE, RAM);
        for (let i = READABLE - BASE; i < WRITABLE - BASE; i++) mem.bytes[i] = (i * 13) & 0xff;
        const backend = new RecordingNetBackend();
        const net = new VirtioNet(backend, { mac: MAC, rxBacklog: 4 });
        const drv = new TestDriver(mem, net);
        drv.start({ size: sc.size, ringBase: RINGS, features: [32, 5, 16, ...sc.features] });
        sc.indirect.forEach((d, i) => {
          put(mem, TABLES + 16 * i, d);
        });
        sc.table.forEach((d, i) => {
          if (i < sc.size) for (const r of drv.rings) put(mem, r.ring.desc + 16 * i, d);
        });
        const readOnly = mem.read(TABLES, WRITABLE - TABLES);
        for (const round of sc.rounds) {
          for (const r of drv.rings) for (const h of round.heads) r.publish(h);
          const driverArea = (r: (typeof drv.rings)[number]) =>
            mem.read(r.ring.desc, 16 * r.ring.size + 6 + 2 * r.ring.size);
          const before = drv.rings.map(driverArea);
          for (const f of round.frames) backend.inject(f);
          drv.wr(MmioReg.QUEUE_NOTIFY, round.notify);
          drv.rings.forEach((r, i) => {
            assert.deepEqual(driverArea(r), before[i], "descriptor table or avail ring written");
          });
          for (const r of drv.rings) {
            for (const [head, len] of r.takeUsed()) {
              assert.ok(head < r.ring.size, `used head ${head}`);
              assert.ok(len === 0 || len >= NET_HDR_SIZE + 14, `used length ${len}`);
            }
          }
        }
        // MTU + 14, + 4 for a VLAN tag, with VIRTIO_NET_F_MTU (bit 3); else 65550.
        const limit = sc.features.includes(3) ? 1518 : MAX_FRAME;
        for (const f of backend.sent) assert.ok(f.length >= 14 && f.length <= limit, `sent ${f.length}`);
        assert.deepEqual(mem.read(TABLES, WRITABLE - TABLES), readOnly, "tables or readable data written");
        assert.ok(mem.guardsIntact(), "memory outside guest RAM was touched");
      }),
      { numRuns: RUNS },
    );
  });

  it("against a model: frames both ways arrive intact and in order, or are dropped and counted", () => {
    const op = fc.oneof(
      { weight: 3, arbitrary: hostFrame.map((frame) => ({ kind: "host" as const, frame })) },
      {
        weight: 3,
        arbitrary: fc
          .record({ len: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(1530)), split: fc.boolean() })
          .map((b) => ({ kind: "post" as const, ...b })),
      },
      {
        weight: 3,
        arbitrary: fc
          .record({
            frame: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constant(new Uint8Array(1515))),
            flags: fc.oneof(
              { weight: 5, arbitrary: fc.constant(0) },
              { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
            ),
            gso: fc.oneof(
              { weight: 5, arbitrary: fc.constant(0) },
              { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
            ),
          })
          .map((t) => ({ kind: "guest" as const, ...t })),
      },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const mem = new TestMemory(BASE, 4 << 20);
        const backend = new RecordingNetBackend();
        const net = new VirtioNet(backend, { mac: MAC, rxBacklog: 4 });
        const drv = new TestDriver(mem, net);
        drv.start({ size: 64 });
        const rx = drv.rings[0];
        const tx = drv.rings[1];
        assert.ok(rx && tx);
        // The model: frames waiting, buffers posted (address, length), a buffer the device kept.
        const waiting: Uint8Array[] = [];
        const posted: { head: number; addr: number; len: number }[] = [];
        const sent: Uint8Array[] = [];
        let dropped = 0;
        let next = BASE + 0x10_0000;
        const byHead = new Map<number, { addr: number; len: number; split: boolean }>();
        const expectDelivered: Uint8Array[] = [];
        const deliver = () => {
          while (waiting.length > 0 && posted.length > 0) {
            const f = waiting.shift() as Uint8Array;
            const b = posted[0] as { len: number };
            if (f.length > 1514) dropped++;
            else if (b.len < NET_HDR_SIZE + f.length) dropped++;
            else {
              posted.shift();
              expectDelivered.push(f);
            }
          }
        };
        let rxDescriptors = 0;
        let txDescriptors = 0;
        for (const o of ops) {
          if (o.kind === "host") {
            if (o.frame.length < 14 || o.frame.length > MAX_FRAME) dropped++;
            else if (waiting.length === 4 && posted.length === 0) dropped++;
            else waiting.push(o.frame);
            backend.inject(o.frame);
            deliver();
          } else if (o.kind === "post") {
            // Descriptors are never reused: stay within the ring's 64.
            if (rxDescriptors + 2 > 64) continue;
            rxDescriptors += o.split && o.len > 1 ? 2 : 1;
            const addr = next;
            next += 0x1000;
            const half = o.len >> 1;
            const bufs =
              o.split && o.len > 1
                ? [
                    { addr, len: half, write: true },
                    { addr: addr + half, len: o.len - half, write: true },
                  ]
                : [{ addr, len: o.len, write: true }];
            const head = rx.chain(bufs);
            byHead.set(head, { addr, len: o.len, split: o.split });
            posted.push({ head, addr, len: o.len });
            rx.publish(head);
            drv.wr(MmioReg.QUEUE_NOTIFY, 0);
            deliver();
          } else {
            if (txDescriptors === 64) continue;
            txDescriptors++;
            const bytes = new Uint8Array(NET_HDR_SIZE + o.frame.length);
            bytes[0] = o.flags;
            bytes[1] = o.gso;
            bytes.set(o.frame, NET_HDR_SIZE);
            const addr = next;
            next += 0x1000;
            mem.write(addr, bytes);
            const head = tx.chain([{ addr, len: bytes.length }]);
            tx.publish(head);
            drv.wr(MmioReg.QUEUE_NOTIFY, 1);
            const valid =
              o.frame.length >= 14 && o.frame.length <= 1514 && (o.flags & 1) === 0 && o.gso === 0;
            if (valid) sent.push(o.frame);
          }
        }
        assert.equal(drv.needsReset(), false);
        assert.deepEqual(backend.sent, sent, "guest frames reach the backend");
        assert.equal(net.stats.txFrames, sent.length);
        const used = rx.takeUsed();
        assert.equal(used.length, expectDelivered.length);
        used.forEach(([head, len], i) => {
          const f = expectDelivered[i] as Uint8Array;
          assert.equal(len, NET_HDR_SIZE + f.length);
          const b = byHead.get(head);
          assert.ok(b);
          assert.deepEqual([...mem.read(b.addr, NET_HDR_SIZE)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
          assert.deepEqual(mem.read(b.addr + NET_HDR_SIZE, f.length), f, "frame intact");
        });
        const s = net.stats;
        assert.equal(s.rxFrames, expectDelivered.length);
        assert.equal(
          s.rxMalformed + s.rxBacklogFull + s.rxBufferTooSmall + s.rxLinkDown,
          dropped,
          "every drop counted",
        );
        assert.equal(net.pendingFrames, waiting.length);
        assert.ok(mem.guardsIntact());
      }),
      { numRuns: RUNS },
    );
  });
});
