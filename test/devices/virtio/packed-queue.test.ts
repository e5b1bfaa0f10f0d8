import assert from "node:assert/strict";
import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../../../src/devices/virtio/device.js";
import { MmioReg, VirtioMmio } from "../../../src/devices/virtio/mmio.js";
import {
  ChainFault,
  type DescriptorChain,
  PackedQueue,
  type PackedQueueState,
  QueueFault,
} from "../../../src/devices/virtio/queue.js";
import {
  DescFlag,
  EVENT_WRAP,
  Feature,
  PackedFlag,
  RingEvent,
  Status,
} from "../../../src/devices/virtio/spec.js";
import { VirtBoard } from "../../../src/machine/riscv-virt/board.js";
import { describe, it } from "../../support/test.js";
import { driverRing, layoutRing, type PackedTestRing, TestDriver, TestLine, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const DATA = BASE + 0x10000;
const AVAIL1 = PackedFlag.AVAIL; // available, driver wrap counter 1
const AVAIL0 = PackedFlag.USED; // available, driver wrap counter 0

/** A packed queue of `size` entries (max `max`) at the start of RAM, enabled, with its driver side. */
function setup(size = 8, max = 16, opts: { eventIdx?: boolean; indirect?: boolean } = {}) {
  const mem = new TestMemory(BASE, RAM);
  const layout = layoutRing(BASE, size, "packed");
  const q = new PackedQueue(mem, 0, max);
  const faults: string[] = [];
  q.onFault = (_q, reason) => faults.push(reason);
  q.size = size;
  q.descLo = layout.desc;
  q.driverLo = layout.avail;
  q.deviceLo = layout.used;
  q.eventIdx = opts.eventIdx ?? false;
  q.indirect = opts.indirect ?? false;
  assert.ok(q.enable());
  const ring = driverRing(mem, layout, opts.eventIdx ?? false) as PackedTestRing;
  return { mem, q, ring, layout, faults };
}

function popOk(q: PackedQueue): DescriptorChain {
  const chain = q.pop();
  assert.ok(chain, "a chain is available");
  return chain;
}

describe("packed virtqueue: rings and chains", () => {
  it("pops a readable+writable chain, writes one used descriptor with flags last", () => {
    const { mem, q, ring, layout } = setup();
    mem.write(DATA, [1, 2, 3, 4]);
    mem.write(DATA + 0x100, [5, 6, 7, 8, 9]);
    const id = ring.chain([
      { addr: DATA, len: 4 },
      { addr: DATA + 0x100, len: 5 },
      { addr: DATA + 0x200, len: 3, write: true },
      { addr: DATA + 0x300, len: 3, write: true },
    ]);
    assert.equal(q.pop(), null, "nothing before the first entry's flags are written");
    ring.publish(id);
    const chain = popOk(q);
    assert.equal(chain.fault, null);
    assert.equal(chain.head, id);
    assert.equal(chain.length, 4);
    assert.equal(chain.readable, 2);
    assert.equal(chain.readableBytes, 9);
    assert.equal(chain.writableBytes, 6);
    const got = new Uint8Array(9);
    assert.equal(chain.readBytes(0, got, 0, 9), 9);
    assert.deepEqual([...got], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(chain.writeBytes(1, Uint8Array.from([0xa, 0xb, 0xc, 0xd, 0xe]), 0, 5), 5);
    assert.deepEqual([...mem.read(DATA + 0x200, 3)], [0, 0xa, 0xb]);
    assert.equal(chain.lastWritableByte(), DATA + 0x302);
    assert.equal(q.pop(), null);
    assert.equal(q.inFlight, 1);
    assert.ok(q.push(chain, 6));
    // The used descriptor overwrites entry 0: ID, length, AVAIL = USED = 1, WRITE (data was written).
    assert.equal(mem.u16(layout.desc + 12), id);
    assert.equal(mem.u32(layout.desc + 8), 6);
    assert.equal(mem.u16(layout.desc + 14), PackedFlag.AVAIL | PackedFlag.USED | DescFlag.WRITE);
    assert.deepEqual(ring.takeUsed(), [[id, 6]]);
    assert.equal(q.push(chain, 6), false, "a chain goes back only once");
    // Nothing written: WRITE stays clear.
    ring.publish(ring.chain([{ addr: DATA, len: 4 }]));
    q.push(popOk(q), 0);
    assert.equal(mem.u16(layout.desc + 16 * 4 + 14), PackedFlag.AVAIL | PackedFlag.USED);
  });

  it("wraps around many times with chains of 1 to 3 entries on a ring of 5 (not a power of two)", () => {
    const { q, ring, mem, layout } = setup(5, 8);
    let wraps = 0;
    let lastFlags = -1;
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + (i % 3);
      const bufs = Array.from({ length: n }, (_, k) => ({ addr: DATA + 64 * k, len: 8, write: k === n - 1 }));
      const id = ring.chain(bufs);
      ring.publish(id);
      const chain = popOk(q);
      assert.equal(chain.head, id);
      assert.equal(chain.length, n);
      assert.ok(q.push(chain, i % 9));
      assert.deepEqual(ring.takeUsed(), [[id, Math.min(i % 9, 8)]], `round ${i}`);
      const flags = mem.u16(layout.desc + 14) & (PackedFlag.AVAIL | PackedFlag.USED);
      if (lastFlags >= 0 && flags !== lastFlags) wraps++;
      lastFlags = flags;
    }
    assert.ok(wraps > 1000, `the wrap counters flipped ${wraps} times`);
    assert.equal(q.pop(), null);
  });

  it("completes out of order: used descriptors in completion order, positions skip whole chains", () => {
    const { q, ring } = setup(8);
    for (let round = 0; round < 50; round++) {
      const ids = [2, 1, 3].map((n) => {
        const id = ring.chain(
          Array.from({ length: n }, (_, k) => ({ addr: DATA + 16 * k, len: 4, write: k === n - 1 })),
        );
        ring.publish(id);
        return id;
      });
      const [a, b, c] = [popOk(q), popOk(q), popOk(q)];
      assert.equal(q.pop(), null);
      const tickets = [a.ticket, b.ticket, c.ticket];
      assert.ok(q.push(c, 1));
      assert.ok(q.push(a, 2));
      assert.ok(q.holds(b, tickets[1] as number));
      assert.equal(q.holds(a, tickets[0] as number), false);
      assert.ok(q.push(b, 3));
      assert.deepEqual(ring.takeUsed(), [
        [ids[2], 1],
        [ids[0], 2],
        [ids[1], 3],
      ]);
    }
  });

  it("a used descriptor may overwrite entries of a buffer still in flight: its segments stay valid", () => {
    const { q, ring, mem } = setup(4);
    mem.write(DATA + 0x40, [9, 8, 7]);
    const slow = ring.chain([
      { addr: DATA + 0x40, len: 3 },
      { addr: DATA + 0x80, len: 1, write: true },
    ]);
    ring.publish(slow);
    const quick = ring.chain([{ addr: DATA, len: 1, write: true }]);
    ring.publish(quick);
    const s = popOk(q);
    const f = popOk(q);
    q.push(f, 1); // written over entry 0, the first entry of `slow`
    assert.deepEqual(ring.takeUsed(), [[quick, 1]]);
    assert.equal(s.readU8(0), 9);
    assert.equal(s.address(1), DATA + 0x80);
    assert.ok(q.push(s, 1));
    assert.deepEqual(ring.takeUsed(), [[slow, 1]]);
  });

  it("follows indirect tables, ignoring flags other than WRITE and the IDs inside", () => {
    const { mem, q, ring } = setup(8, 16, { indirect: true });
    mem.write(DATA, [0x11, 0x22]);
    const table = DATA + 0x1000;
    const id = ring.indirectChain(table, [
      { addr: DATA, len: 2 },
      { addr: DATA + 0x40, len: 4, write: true },
    ]);
    // Reserved bits in the table are ignored (§2.8.7).
    mem.set16(table + 14, DescFlag.NEXT | DescFlag.INDIRECT);
    mem.set16(table + 12, 999);
    ring.publish(id);
    const chain = popOk(q);
    assert.equal(chain.fault, null);
    assert.equal(chain.length, 2);
    assert.equal(chain.readU8(1), 0x22);
    assert.equal(chain.writableBytes, 4);
    q.push(chain, 4);
    assert.deepEqual(ring.takeUsed(), [[id, 4]]);
  });

  it("marks chains with unusable buffers but keeps the queue going", () => {
    const { q, ring, faults } = setup(8, 16, { indirect: true });
    const cases: [Parameters<PackedTestRing["chain"]>[0], string][] = [
      [[{ addr: BASE + RAM - 4, len: 8 }], ChainFault.OUTSIDE_RAM],
      [[{ addr: BASE - 1, len: 1, write: true }], ChainFault.OUTSIDE_RAM],
      [[{ addr: 2 ** 60, len: 1 }], ChainFault.OUTSIDE_RAM],
      [
        [
          { addr: DATA, len: 1, write: true },
          { addr: DATA, len: 1 },
        ],
        ChainFault.READ_AFTER_WRITE,
      ],
    ];
    for (const [bufs, fault] of cases) {
      for (const indirect of [false, true]) {
        ring.publish(indirect ? ring.indirectChain(DATA + 0x2000, bufs) : ring.chain(bufs));
        const chain = popOk(q);
        assert.equal(chain.fault, fault);
        assert.equal(chain.writeBytes(0, new Uint8Array(4), 0, 4), 0);
        assert.equal(chain.readBytes(0, new Uint8Array(4), 0, 4), 0);
        assert.ok(q.push(chain, 0));
        ring.takeUsed();
      }
    }
    assert.deepEqual(faults, []);
  });

  it("marks chains whose buffers add up to 4 GiB or more", () => {
    const mem = new TestMemory(BASE, 64 << 20);
    const layout = layoutRing(BASE, 64, "packed");
    const q = new PackedQueue(mem, 0, 64);
    q.size = 64;
    q.descLo = layout.desc;
    q.driverLo = layout.avail;
    q.deviceLo = layout.used;
    assert.ok(q.enable());
    const ring = driverRing(mem, layout);
    ring.publish(ring.chain(Array.from({ length: 64 }, () => ({ addr: BASE, len: 64 << 20, write: true }))));
    const chain = popOk(q);
    assert.equal(chain.fault, ChainFault.TOO_LONG);
    assert.equal(q.fault, null);
  });

  it("stops the queue on structural errors", () => {
    type Build = (r: PackedTestRing, mem: TestMemory, q: PackedQueue) => void;
    const N = DescFlag.NEXT;
    const structural: [string, Build, { indirect?: boolean }?][] = [
      [
        QueueFault.CHAIN_TOO_LONG,
        (r) => {
          for (let i = 0; i < 8; i++) r.desc(i, DATA, 1, N | AVAIL1, 0);
        },
      ],
      [
        // Chained on into an entry marked for the other wrap counter.
        QueueFault.NOT_AVAILABLE,
        (r) => {
          r.desc(1, DATA, 1, AVAIL0, 0);
          r.desc(0, DATA, 1, N | AVAIL1, 0);
        },
      ],
      [
        QueueFault.NOT_AVAILABLE,
        (r) => {
          r.desc(1, DATA, 1, 0, 0);
          r.desc(0, DATA, 1, N | AVAIL1, 0);
        },
      ],
      [QueueFault.BAD_ID, (r) => r.desc(0, DATA, 1, AVAIL1, 8)],
      [
        QueueFault.BAD_ID,
        (r) => {
          r.desc(1, DATA, 1, AVAIL1, 0xffff);
          r.desc(0, DATA, 1, N | AVAIL1, 0);
        },
      ],
      [
        QueueFault.ID_IN_USE,
        (r, _m, q) => {
          r.desc(0, DATA, 1, AVAIL1, 3);
          assert.ok(q.pop());
          r.desc(1, DATA, 1, AVAIL1, 3);
        },
      ],
      [
        // The driver wraps onto entries whose buffers the device still holds.
        QueueFault.OVERRUN,
        (r, _m, q) => {
          for (let i = 0; i < 8; i++) r.desc(i, DATA, 1, AVAIL1, i);
          for (let i = 0; i < 8; i++) assert.ok(q.pop());
          r.desc(0, DATA, 1, AVAIL0, 0);
        },
      ],
      [QueueFault.INDIRECT_OFF, (r) => r.desc(0, DATA, 16, DescFlag.INDIRECT | AVAIL1, 0)],
      [
        QueueFault.INDIRECT_CHAINED,
        (r) => r.desc(0, DATA, 16, DescFlag.INDIRECT | N | AVAIL1, 0),
        { indirect: true },
      ],
      [
        QueueFault.INDIRECT_CHAINED,
        (r) => {
          r.desc(1, DATA, 16, DescFlag.INDIRECT | AVAIL1, 0);
          r.desc(0, DATA, 1, N | AVAIL1, 0);
        },
        { indirect: true },
      ],
      ...(
        [
          ["misaligned", DATA + 4, 16],
          ["empty", DATA, 0],
          ["not whole descriptors", DATA, 24],
          ["longer than the queue allows", DATA, 16 * 17],
          ["outside RAM", BASE + RAM - 16, 32],
          ["beyond 2^53", 2 ** 60, 16],
        ] as const
      ).map(
        ([, table, len]) =>
          [
            QueueFault.INDIRECT_BAD,
            (r: PackedTestRing) => r.desc(0, table, len, DescFlag.INDIRECT | AVAIL1, 0),
            { indirect: true },
          ] as [string, Build, { indirect?: boolean }],
      ),
    ];
    for (const [fault, build, opts] of structural) {
      const { mem, q, ring, faults } = setup(8, 16, opts);
      build(ring, mem, q);
      assert.equal(q.pop(), null, fault);
      assert.equal(q.fault, fault);
      assert.deepEqual(faults, [fault]);
      // The queue stays stopped and reports only once.
      for (let i = 0; i < 8; i++) ring.desc(i, DATA, 1, AVAIL1 | AVAIL0, i);
      assert.equal(q.pop(), null);
      assert.equal(faults.length, 1);
      assert.ok(mem.guardsIntact());
    }
  });

  it("checks size and areas when the queue is enabled; any size up to the maximum is fine", () => {
    const mem = new TestMemory(BASE, RAM);
    const cases: [string, boolean, Partial<Record<"size" | "desc" | "driver" | "device", number>>][] = [
      ["size 6", true, { size: 6 }],
      ["size 1", true, { size: 1 }],
      ["size 16 (the maximum)", true, { size: 16 }],
      ["size 0", false, { size: 0 }],
      ["size above the maximum", false, { size: 17 }],
      ["descriptor ring 8-aligned", false, { desc: BASE + 8 }],
      ["driver area misaligned", false, { driver: BASE + 0x1002 }],
      ["device area misaligned", false, { device: BASE + 0x2001 }],
      ["descriptor ring past RAM", false, { desc: BASE + RAM - 16 }],
      ["device area past RAM", false, { device: BASE + RAM - 2 }],
      ["driver area below RAM", false, { driver: BASE - 4 }],
      ["ring beyond 2^53", false, { desc: 2 ** 60 }],
    ];
    for (const [what, ok, over] of cases) {
      const q = new PackedQueue(mem, 0, 16);
      q.size = over.size ?? 8;
      const split = (v: number) => [v % 2 ** 32, Math.floor(v / 2 ** 32)] as const;
      [q.descLo, q.descHi] = split(over.desc ?? BASE);
      [q.driverLo, q.driverHi] = split(over.driver ?? BASE + 0x1000);
      [q.deviceLo, q.deviceHi] = split(over.device ?? BASE + 0x2000);
      assert.equal(q.enable(), ok, what);
      assert.equal(q.fault === null, ok, what);
    }
  });
});

describe("packed virtqueue: event suppression", () => {
  const pushOne = (q: PackedQueue, ring: PackedTestRing, n = 1) => {
    ring.publish(
      ring.chain(Array.from({ length: n }, (_, k) => ({ addr: DATA + 16 * k, len: 1, write: k === n - 1 }))),
    );
    q.push(popOk(q), 1);
  };

  it("driver event ENABLE and DISABLE; never for nothing; DESC without EVENT_IDX counts as ENABLE", () => {
    const { q, ring } = setup(8);
    assert.equal(q.needsInterrupt(), false);
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), true);
    assert.equal(q.needsInterrupt(), false, "nothing new since");
    ring.setAvailFlags(1); // DISABLE
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), false);
    ring.takeUsed();
    ring.setAvailFlags(0);
    ring.mem.set16(ring.ring.avail + 2, RingEvent.DESC);
    ring.setUsedEvent(5 | EVENT_WRAP);
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), true, "DESC is only valid with EVENT_IDX");
    ring.mem.set16(ring.ring.avail + 2, 3); // reserved
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), true);
  });

  it("DESC with EVENT_IDX: interrupts once the used entry at offset/wrap is written, across wraps", () => {
    const { q, ring } = setup(4, 16, { eventIdx: true });
    ring.setUsedEvent(2 | EVENT_WRAP); // entry 2, first lap
    pushOne(q, ring); // writes 0
    assert.equal(q.needsInterrupt(), false);
    pushOne(q, ring); // 1
    assert.equal(q.needsInterrupt(), false);
    pushOne(q, ring); // 2
    assert.equal(q.needsInterrupt(), true);
    ring.takeUsed();
    ring.setUsedEvent(1); // entry 1, second lap (wrap counter 0)
    pushOne(q, ring); // 3
    assert.equal(q.needsInterrupt(), false);
    pushOne(q, ring); // 0, second lap
    assert.equal(q.needsInterrupt(), false);
    pushOne(q, ring, 2); // 1-2 (one used descriptor for a 2-entry chain)
    assert.equal(q.needsInterrupt(), true);
    // An event inside the entries a chain skipped counts as passed.
    ring.takeUsed(); // next used: 3, lap 2
    ring.setUsedEvent(0 | EVENT_WRAP); // entry 0, third lap
    pushOne(q, ring, 2); // 3 and 0 (third lap)
    assert.equal(q.needsInterrupt(), true);
    // An event behind the device: no interrupt until it comes round again.
    ring.takeUsed();
    ring.setUsedEvent(0 | EVENT_WRAP);
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), false);
    // An offset beyond the ring: interrupt (a broken event must not hang the driver).
    ring.setUsedEvent(9);
    pushOne(q, ring);
    assert.equal(q.needsInterrupt(), true);
  });

  it("more than two laps of used entries since the last decision always interrupt", () => {
    const { q, ring } = setup(2, 16, { eventIdx: true });
    ring.setUsedEvent(1 | EVENT_WRAP);
    for (let i = 0; i < 4; i++) {
      pushOne(q, ring);
      ring.takeUsed();
      ring.setUsedEvent(1 | EVENT_WRAP);
    }
    assert.equal(q.needsInterrupt(), true);
  });

  it("device event: ENABLE after QueueReady; with EVENT_IDX an empty ring asks for DESC at the next entry", () => {
    const plain = setup(4);
    assert.equal(plain.mem.u32(plain.layout.used), RingEvent.ENABLE << 16);
    assert.equal(plain.q.pop(), null);
    assert.equal(plain.mem.u32(plain.layout.used), RingEvent.ENABLE << 16, "untouched without EVENT_IDX");

    const { q, ring, mem, layout } = setup(4, 16, { eventIdx: true });
    assert.equal(q.pop(), null);
    assert.equal(mem.u16(layout.used + 2), RingEvent.DESC);
    assert.equal(mem.u16(layout.used), 0 | EVENT_WRAP);
    for (let i = 0; i < 5; i++) {
      pushOne(q, ring);
      ring.takeUsed();
    }
    assert.equal(q.pop(), null);
    assert.equal(mem.u16(layout.used), 1, "entry 1 of the second lap (wrap counter 0)");
  });
});

describe("packed virtqueue: reset and snapshots", () => {
  it("disable lets go of held chains; a late push does nothing", () => {
    const { q, ring, layout, mem } = setup(8);
    ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
    const c = popOk(q);
    const ticket = c.ticket;
    const before = mem.read(layout.desc, 16);
    q.disable();
    assert.equal(q.holds(c, ticket), false);
    assert.equal(q.push(c, 1), false);
    assert.deepEqual(mem.read(layout.desc, 16), before);
  });

  it("restores positions, wrap counters and held buffers (from their saved segments)", () => {
    const { mem, q, ring } = setup(4, 16);
    // Go round once so the wrap counters are 0, then hold two buffers, one completed out of order.
    for (let i = 0; i < 5; i++) {
      ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
      q.push(popOk(q), 1);
      ring.takeUsed();
    }
    const a = ring.chain([
      { addr: DATA + 0x100, len: 4 },
      { addr: DATA + 0x200, len: 4, write: true },
    ]);
    ring.publish(a);
    const b = ring.chain([{ addr: DATA + 0x300, len: 8, write: true }]);
    ring.publish(b);
    const ca = popOk(q);
    const cb = popOk(q);
    q.push(cb, 8); // overwrites a's first entry
    const state = JSON.parse(JSON.stringify(q.snapshot())) as PackedQueueState;
    assert.equal(state.format, "packed");
    assert.equal(state.inFlight.length, 1);

    const q2 = new PackedQueue(mem, 0, 16);
    q2.restore(state);
    assert.equal(q2.inFlight, 1);
    const held = q2.heldChain(ca.head);
    assert.ok(held);
    assert.equal(held.length, 2);
    assert.equal(held.address(0), DATA + 0x100);
    assert.equal(held.writableBytes, 4);
    assert.ok(q2.push(held, 4));
    assert.deepEqual(ring.takeUsed(), [
      [b, 8],
      [a, 4],
    ]);
    ring.publish(ring.chain([{ addr: DATA, len: 2, write: true }]));
    q2.push(popOk(q2), 2);
    assert.equal(ring.takeUsed().length, 1, "the restored queue goes on where the old one was");

    const bad: [string, unknown][] = [
      ["split state", { ...state, format: undefined }],
      ["size", { ...state, size: 64 }],
      ["wrap", { ...state, availWrap: 2 }],
      ["duplicate id", { ...state, inFlight: [state.inFlight[0], state.inFlight[0]] }],
      ["id", { ...state, inFlight: [{ ...state.inFlight[0], id: 16 }] }],
      ["no segments", { ...state, inFlight: [{ ...state.inFlight[0], segments: [] }] }],
      ["bad segment", { ...state, inFlight: [{ ...state.inFlight[0], segments: [[1.5, 1, 0]] }] }],
      ["descriptors", { ...state, inFlight: [{ ...state.inFlight[0], descriptors: 0 }] }],
    ];
    for (const [what, s] of bad) assert.throws(() => q2.restore(s), /virtqueue snapshot/, what);
    // Well-formed but not fitting the size: the queue stops.
    const q3 = new PackedQueue(mem, 0, 16);
    q3.restore({ ...state, nextAvail: 4 });
    assert.equal(q3.fault, QueueFault.BAD_RESTORE);
    // A restored buffer outside RAM is marked, never copied from.
    const q4 = new PackedQueue(mem, 0, 16);
    q4.restore({
      ...state,
      inFlight: [{ id: 1, descriptors: 1, segments: [[-1, 4, 1]] }],
    });
    assert.equal(q4.heldChain(1)?.fault, ChainFault.OUTSIDE_RAM);
  });
});

/** A device that echoes every chain of its queues back as used, with its writable length. */
class Echo implements VirtioDevice {
  readonly name = "echo";
  readonly deviceId = 42;
  readonly features = [0, 0];
  readonly queueSizes = [8, 4];
  readonly configSize = 4;
  readonly config = new ConfigSpace(4);
  host!: VirtioHost;
  constructor(readonly packedRing?: boolean) {}
  attach(host: VirtioHost): void {
    this.host = host;
  }
  readConfig(): number {
    return 0;
  }
  writeConfig(): void {}
  activate(): void {}
  notify(index: number): void {
    const q = this.host.queue(index);
    for (let c = q.pop(); c !== null; c = q.pop()) q.push(c, c.writableBytes);
    this.host.signalUsed(index);
  }
  reset(): void {}
  snapshot(): unknown {
    return null;
  }
  restore(): void {}
}

describe("virtio-mmio with packed rings", () => {
  it("offers RING_PACKED unless the board or the device turns it off; FEATURES_OK picks the format", () => {
    const mem = new TestMemory(BASE, RAM);
    const packed = new TestDriver(mem, new Echo(), { format: "packed" });
    assert.ok(packed.offered().has(Feature.RING_PACKED));
    assert.equal(packed.mmio.queue(0).format, "split", "split until features are negotiated");
    packed.start();
    assert.equal(packed.mmio.queue(0).format, "packed");
    assert.equal(packed.mmio.queue(1).format, "packed");
    packed.wr(MmioReg.STATUS, 0);
    assert.equal(packed.mmio.queue(0).format, "split", "a device reset goes back to split");

    for (const drv of [
      new TestDriver(mem, new Echo(), { format: "packed", transportRing: "split" }),
      new TestDriver(mem, new Echo(false), { format: "packed" }),
    ]) {
      assert.equal(drv.offered().has(Feature.RING_PACKED), false);
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
      drv.accept([Feature.VERSION_1, Feature.RING_PACKED]);
      drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
      assert.equal(drv.status() & Status.FEATURES_OK, 0, "RING_PACKED was not offered");
      drv.start();
      assert.equal(drv.mmio.queue(0).format, "split");
      drv.submit(0, [{ addr: DATA, len: 4, write: true }]);
      assert.deepEqual(drv.rings[0]?.takeUsed(), [[0, 4]]);
    }
  });

  it("the riscv64 board passes its virtioRing option to every transport", () => {
    for (const [virtioRing, offered] of [
      [undefined, true],
      ["packed", true],
      ["split", false],
    ] as const) {
      const board = new VirtBoard({ memory: 16 << 20, cpus: 1, console: { write: () => {} }, virtioRing });
      const transport = board.virtio.attach(new Echo());
      const word = transport.deviceFeatures[1] as number;
      assert.equal((word & (1 << (Feature.RING_PACKED - 32))) !== 0, offered, String(virtioRing));
    }
  });

  it("takes queue sizes that are not powers of two, interrupts, resets one queue", () => {
    const mem = new TestMemory(BASE, RAM);
    const drv = new TestDriver(mem, new Echo(), { format: "packed" });
    drv.start({ size: 3 });
    assert.equal(drv.needsReset(), false);
    for (let i = 0; i < 10; i++) {
      const id = drv.submit(0, [
        { addr: DATA, len: 4 },
        { addr: DATA + 16, len: 4, write: true },
      ]);
      assert.equal(drv.line.level, true);
      drv.ack();
      assert.deepEqual(drv.rings[0]?.takeUsed(), [[id, 4]]);
    }
    drv.wr(MmioReg.QUEUE_SEL, 0);
    drv.wr(MmioReg.QUEUE_RESET, 1);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE), 8);
    const ring = layoutRing(BASE + 0x40000, 5, "packed");
    drv.setupQueue(0, ring);
    const r = driverRing(mem, ring, true);
    r.publish(r.chain([{ addr: DATA, len: 2, write: true }]));
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.deepEqual(r.takeUsed(), [[0, 2]], "fresh ring: positions and wrap counters start over");
    assert.equal(drv.mmio.queue(0).format, "packed");
  });

  it("a queue set up before FEATURES_OK takes the format the driver's features ask for", () => {
    const mem = new TestMemory(BASE, RAM);
    const drv = new TestDriver(mem, new Echo(), { format: "packed" });
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    drv.negotiate();
    const ring = layoutRing(BASE, 6, "packed");
    drv.setupQueue(0, ring);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    drv.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    assert.equal(drv.rd(MmioReg.QUEUE_SIZE), 6);
    assert.equal(drv.rd(MmioReg.QUEUE_READY), 1);
    assert.equal(drv.needsReset(), false);
    const r = driverRing(mem, ring, true);
    const id = r.chain([{ addr: DATA, len: 3, write: true }]);
    r.publish(id);
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.deepEqual(r.takeUsed(), [[id, 3]]);
  });

  it("a broken packed ring sets DEVICE_NEEDS_RESET and stops only that queue", () => {
    const mem = new TestMemory(BASE, RAM);
    const drv = new TestDriver(mem, new Echo(), { format: "packed" });
    drv.start();
    const r0 = drv.rings[0] as PackedTestRing;
    r0.desc(0, DATA, 4, AVAIL1, 40); // buffer ID beyond the queue size
    drv.wr(MmioReg.QUEUE_NOTIFY, 0);
    assert.ok(drv.needsReset());
    assert.match(drv.mmio.lastFault ?? "", /queue 0: a buffer ID is beyond the queue size/);
    drv.submit(1, [{ addr: DATA, len: 4, write: true }]);
    assert.equal(drv.rings[1]?.takeUsed().length, 1);
    assert.ok(mem.guardsIntact());
  });

  it("snapshot and restore round-trip through JSON with packed queues and held buffers", () => {
    const mem = new TestMemory(BASE, RAM);
    const drv = new TestDriver(mem, new Echo(), { format: "packed" });
    drv.start();
    const r1 = drv.rings[1] as PackedTestRing;
    const id = r1.chain([{ addr: DATA + 64, len: 8, write: true }]);
    r1.publish(id);
    const held = drv.mmio.queue(1).pop(); // held by the device, not notified
    assert.ok(held);
    const state = JSON.parse(JSON.stringify(drv.mmio.snapshot()));
    const other = new VirtioMmio(new Echo(), mem, new TestLine());
    other.restore(state);
    assert.equal(other.queue(1).format, "packed");
    const chain = other.queue(1).heldChain(id);
    assert.ok(chain);
    assert.ok(other.queue(1).push(chain, 8));
    assert.deepEqual(r1.takeUsed(), [[id, 8]]);
    // A split queue state where packed was negotiated is refused before anything changes.
    const splitState = { ...state, queues: state.queues.map((q: object) => ({ ...q, format: undefined })) };
    assert.throws(() => other.restore(splitState), /ring formats do not match/);
    // Before FEATURES_OK, split queues with RING_PACKED accepted are fine (the driver has not finished).
    const d3 = new TestDriver(mem, new Echo(), { format: "packed" });
    d3.wr(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    d3.negotiate();
    const third = new VirtioMmio(new Echo(), mem, new TestLine());
    third.restore(JSON.parse(JSON.stringify(d3.mmio.snapshot())));
    assert.equal(third.queue(1).format, "split");
    assert.ok(third.hasFeature(Feature.RING_PACKED));
    assert.equal(other.queue(1).format, "packed");
  });
});
