import assert from "node:assert/strict";
import { ChainFault, QueueFault, SplitQueue } from "../../../src/devices/virtio/queue.js";
import { DescFlag } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { layoutRing, TestMemory, TestRing } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const DATA = BASE + 0x10000;

/** A queue of `size` entries (max `max`) with rings at the start of RAM, enabled. */
function setup(size = 8, max = 16, opts: { eventIdx?: boolean; indirect?: boolean } = {}) {
  const mem = new TestMemory(BASE, RAM);
  const layout = layoutRing(BASE, size);
  const q = new SplitQueue(mem, 0, max);
  const faults: string[] = [];
  q.onFault = (_q, reason) => faults.push(reason);
  q.size = size;
  q.descLo = layout.desc;
  q.driverLo = layout.avail;
  q.deviceLo = layout.used;
  q.eventIdx = opts.eventIdx ?? false;
  q.indirect = opts.indirect ?? false;
  assert.ok(q.enable());
  return { mem, q, ring: new TestRing(mem, layout), faults };
}

describe("split virtqueue: rings and chains", () => {
  it("pops a readable+writable chain, copies across segments, pushes it to the used ring", () => {
    const { mem, q, ring } = setup();
    mem.write(DATA, [1, 2, 3, 4]);
    mem.write(DATA + 0x100, [5, 6, 7, 8, 9]);
    const head = ring.chain([
      { addr: DATA, len: 4 },
      { addr: DATA + 0x100, len: 5 },
      { addr: DATA + 0x200, len: 3, write: true },
      { addr: DATA + 0x300, len: 3, write: true },
    ]);
    ring.publish(head);
    const chain = q.pop();
    assert.ok(chain);
    assert.equal(chain.fault, null);
    assert.equal(chain.head, head);
    assert.equal(chain.length, 4);
    assert.equal(chain.readable, 2);
    assert.equal(chain.readableBytes, 9);
    assert.equal(chain.writableBytes, 6);
    const got = new Uint8Array(9);
    assert.equal(chain.readBytes(0, got, 0, 9), 9);
    assert.deepEqual([...got], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(chain.readU32(2), 0x06050403);
    assert.equal(chain.readU32(6), -1, "reads past the readable part fail");
    assert.equal(chain.writeBytes(1, Uint8Array.from([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]), 0, 6), 5);
    assert.deepEqual([...mem.read(DATA + 0x200, 3)], [0, 0xa, 0xb]);
    assert.deepEqual([...mem.read(DATA + 0x300, 3)], [0xc, 0xd, 0xe]);
    assert.equal(chain.lastWritableByte(), DATA + 0x302);
    assert.equal(q.pop(), null);
    assert.equal(q.inFlight, 1);
    assert.ok(q.push(chain, 6));
    assert.deepEqual(ring.takeUsed(), [[head, 6]]);
    assert.equal(q.inFlight, 0);
    assert.equal(q.push(chain, 6), false, "a chain goes back only once");
  });

  it("wraps the 16-bit indexes and the ring positions", () => {
    const { q, ring } = setup(4);
    for (let i = 0; i < 70_000; i++) {
      const head = ring.chain([{ addr: DATA, len: 8, write: true }]);
      ring.publish(head);
      const chain = q.pop();
      assert.ok(chain, `pop ${i}`);
      assert.equal(chain.head, head);
      assert.ok(q.push(chain, i % 9));
      const used = ring.takeUsed();
      assert.deepEqual(used, [[head, Math.min(i % 9, 8)]]);
    }
  });

  it("keeps chains held out of order and completes them in any order", () => {
    const { q, ring } = setup(8);
    const heads = [0, 1, 2].map(() => {
      const h = ring.chain([{ addr: DATA, len: 1, write: true }]);
      ring.publish(h);
      return h;
    });
    const chains = heads.map(() => q.pop());
    assert.ok(chains.every((c) => c !== null));
    const [a, b, c] = chains as NonNullable<(typeof chains)[number]>[];
    const tickets = [a.ticket, b.ticket, c.ticket];
    assert.ok(q.push(c, 1));
    assert.ok(q.push(a, 1));
    assert.ok(q.holds(b, tickets[1] as number));
    assert.ok(q.push(b, 1));
    assert.deepEqual(
      ring.takeUsed().map(([h]) => h),
      [heads[2], heads[0], heads[1]],
    );
  });

  it("follows an indirect table, also after direct descriptors", () => {
    const { mem, q, ring } = setup(8, 16, { indirect: true });
    mem.write(DATA, [0x11, 0x22]);
    const table = DATA + 0x1000;
    const head = ring.indirectChain(table, [
      { addr: DATA, len: 2 },
      { addr: DATA + 0x40, len: 4, write: true },
    ]);
    ring.publish(head);
    const chain = q.pop();
    assert.ok(chain);
    assert.equal(chain.fault, null);
    assert.equal(chain.length, 2);
    assert.equal(chain.readU8(1), 0x22);
    assert.equal(chain.writableBytes, 4);
    q.push(chain, 4);

    // A direct descriptor, then one pointing at an indirect table (§2.7.5.3.2 allows that).
    const t2 = DATA + 0x2000;
    mem.set64(t2, DATA + 0x80);
    mem.set32(t2 + 8, 16);
    mem.set16(t2 + 12, DescFlag.WRITE);
    ring.desc(5, DATA, 2, DescFlag.NEXT, 6);
    ring.desc(6, t2, 16, DescFlag.INDIRECT, 0);
    ring.publish(5);
    const mixed = q.pop();
    assert.ok(mixed);
    assert.equal(mixed.fault, null);
    assert.equal(mixed.length, 2);
    assert.equal(mixed.readableBytes, 2);
    assert.equal(mixed.writableBytes, 16);
  });

  it("marks chains with unusable buffers but keeps the queue going", () => {
    const { q, ring, faults } = setup(8);
    const cases: [Parameters<TestRing["chain"]>[0], string][] = [
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
      [[{ addr: DATA, len: 0xffff_ffff, write: true }], ChainFault.OUTSIDE_RAM],
    ];
    for (const [bufs, fault] of cases) {
      ring.publish(ring.chain(bufs));
      const chain = q.pop();
      assert.ok(chain);
      assert.equal(chain.fault, fault);
      // Copies into or out of a faulty chain do nothing.
      assert.equal(chain.writeBytes(0, new Uint8Array(4), 0, 4), 0);
      assert.equal(chain.readBytes(0, new Uint8Array(4), 0, 4), 0);
      assert.ok(q.push(chain, 0));
    }
    assert.deepEqual(faults, []);
  });

  it("marks chains whose buffers add up to 4 GiB or more", () => {
    // The same 64 MiB buffer 64 times: every byte is in RAM, the total is 2^32.
    const mem = new TestMemory(BASE, 64 << 20);
    const layout = layoutRing(BASE, 64);
    const q = new SplitQueue(mem, 0, 64);
    q.size = 64;
    q.descLo = layout.desc;
    q.driverLo = layout.avail;
    q.deviceLo = layout.used;
    assert.ok(q.enable());
    const ring = new TestRing(mem, layout);
    ring.publish(ring.chain(Array.from({ length: 64 }, () => ({ addr: BASE, len: 64 << 20, write: true }))));
    const chain = q.pop();
    assert.ok(chain);
    assert.equal(chain.fault, ChainFault.TOO_LONG);
    assert.equal(q.fault, null);
  });

  it("stops the queue on structural errors", () => {
    const structural: [string, (t: TestRing, mem: TestMemory) => void, { indirect?: boolean }?][] = [
      [
        QueueFault.LOOP,
        (t) => {
          t.desc(0, DATA, 1, DescFlag.NEXT, 1);
          t.desc(1, DATA, 1, DescFlag.NEXT, 0);
          t.publish(0);
        },
      ],
      [
        QueueFault.LOOP,
        (t) => {
          t.desc(3, DATA, 1, DescFlag.NEXT, 3);
          t.publish(3);
        },
      ],
      [
        QueueFault.BAD_NEXT,
        (t) => {
          t.desc(0, DATA, 1, DescFlag.NEXT, 8);
          t.publish(0);
        },
      ],
      [QueueFault.BAD_HEAD, (t) => t.publish(8)],
      [
        QueueFault.AVAIL_JUMP,
        (t, mem) => {
          mem.set16(t.ring.avail + 2, 9);
        },
      ],
      [
        QueueFault.INDIRECT_OFF,
        (t) => {
          t.desc(0, DATA, 16, DescFlag.INDIRECT, 0);
          t.publish(0);
        },
      ],
      [
        QueueFault.INDIRECT_NEXT,
        (t) => {
          t.desc(0, DATA, 16, DescFlag.INDIRECT | DescFlag.NEXT, 1);
          t.publish(0);
        },
        { indirect: true },
      ],
      [
        QueueFault.INDIRECT_NESTED,
        (t, mem) => {
          mem.set64(DATA, DATA + 0x100);
          mem.set32(DATA + 8, 16);
          mem.set16(DATA + 12, DescFlag.INDIRECT);
          t.desc(0, DATA, 16, DescFlag.INDIRECT, 0);
          t.publish(0);
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
        ] as const
      ).map(
        ([, table, len]) =>
          [
            QueueFault.INDIRECT_BAD,
            (t: TestRing) => {
              t.desc(0, table, len, DescFlag.INDIRECT, 0);
              t.publish(0);
            },
            { indirect: true },
          ] as [string, (t: TestRing, mem: TestMemory) => void, { indirect?: boolean }],
      ),
      [
        QueueFault.LOOP,
        (t, mem) => {
          // An indirect table whose entries loop.
          mem.set64(DATA, DATA + 0x400);
          mem.set32(DATA + 8, 1);
          mem.set16(DATA + 12, DescFlag.NEXT);
          mem.set16(DATA + 14, 0);
          t.desc(0, DATA, 32, DescFlag.INDIRECT, 0);
          t.publish(0);
        },
        { indirect: true },
      ],
    ];
    for (const [fault, build, opts] of structural) {
      const { mem, q, ring, faults } = setup(8, 16, opts);
      build(ring, mem);
      assert.equal(q.pop(), null, fault);
      assert.equal(q.fault, fault);
      assert.deepEqual(faults, [fault]);
      // The queue stays stopped and reports only once.
      ring.publish(ring.chain([{ addr: DATA, len: 1 }]));
      assert.equal(q.pop(), null);
      assert.equal(faults.length, 1);
      assert.ok(mem.guardsIntact());
    }
  });

  it("refuses a head that is still held", () => {
    const { q, ring, faults } = setup(8);
    const head = ring.chain([{ addr: DATA, len: 1 }]);
    ring.publish(head);
    assert.ok(q.pop());
    ring.publish(head);
    assert.equal(q.pop(), null);
    assert.deepEqual(faults, [QueueFault.HEAD_IN_USE]);
  });

  it("checks size and ring placement when the queue is enabled", () => {
    const mem = new TestMemory(BASE, RAM);
    const bad: [string, Partial<Record<"size" | "desc" | "avail" | "used", number>>][] = [
      ["size 0", { size: 0 }],
      ["size not a power of two", { size: 6 }],
      ["size above the maximum", { size: 32 }],
      ["descriptor table misaligned", { desc: BASE + 8 }],
      ["avail ring misaligned", { avail: BASE + 0x1001 }],
      ["used ring misaligned", { used: BASE + 0x2002 }],
      ["descriptor table past RAM", { desc: BASE + RAM - 16 }],
      ["used ring past RAM", { used: BASE + RAM - 8 }],
      ["ring below RAM", { avail: BASE - 0x1000 }],
      ["ring beyond 2^53", { desc: 2 ** 60 }],
    ];
    for (const [what, over] of bad) {
      const q = new SplitQueue(mem, 0, 16);
      q.size = over.size ?? 8;
      const desc = over.desc ?? BASE;
      q.descLo = desc % 2 ** 32;
      q.descHi = Math.floor(desc / 2 ** 32);
      q.driverLo = (over.avail ?? BASE + 0x1000) % 2 ** 32;
      q.driverHi = Math.floor((over.avail ?? BASE + 0x1000) / 2 ** 32);
      q.deviceLo = (over.used ?? BASE + 0x2000) % 2 ** 32;
      assert.equal(q.enable(), false, what);
      assert.ok(q.fault, what);
      assert.equal(q.pop(), null);
    }
  });
});

describe("split virtqueue: notification suppression", () => {
  it("without EVENT_IDX: interrupts unless VIRTQ_AVAIL_F_NO_INTERRUPT, never for nothing", () => {
    const { q, ring } = setup(8);
    assert.equal(q.needsInterrupt(), false);
    ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
    q.push(q.pop() as NonNullable<ReturnType<SplitQueue["pop"]>>, 1);
    assert.equal(q.needsInterrupt(), true);
    assert.equal(q.needsInterrupt(), false, "nothing new since");
    ring.setAvailFlags(1);
    ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
    q.push(q.pop() as NonNullable<ReturnType<SplitQueue["pop"]>>, 1);
    assert.equal(q.needsInterrupt(), false);
  });

  it("with EVENT_IDX: interrupts when used idx passes used_event; publishes avail_event", () => {
    const { q, ring } = setup(8, 16, { eventIdx: true });
    // Finding the ring empty tells the driver to notify at its next buffer.
    assert.equal(q.pop(), null);
    assert.equal(ring.availEvent(), 0);
    ring.setAvailFlags(1); // ignored with EVENT_IDX
    ring.setUsedEvent(2); // interrupt once the entry at used index 2 is written
    const pushOne = () => {
      ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
      const c = q.pop();
      assert.ok(c);
      q.push(c, 1);
    };
    pushOne(); // used idx 1
    assert.equal(q.needsInterrupt(), false);
    pushOne(); // used idx 2
    assert.equal(q.needsInterrupt(), false);
    pushOne(); // used idx 3: entry 2 written
    assert.equal(q.needsInterrupt(), true);
    // Several at once: one decision covering the batch.
    ring.setUsedEvent(4);
    pushOne();
    pushOne(); // 5
    assert.equal(q.needsInterrupt(), true);
    assert.equal(q.pop(), null);
    assert.equal(ring.availEvent(), 5, "avail_event follows the device");
    // used_event far behind: no interrupt until it wraps around.
    ring.setUsedEvent(1);
    pushOne();
    assert.equal(q.needsInterrupt(), false);
  });
});

describe("split virtqueue: reset and snapshots", () => {
  it("disable lets go of held chains; a late push does nothing", () => {
    const { q, ring } = setup(8);
    ring.publish(ring.chain([{ addr: DATA, len: 1, write: true }]));
    const c = q.pop();
    assert.ok(c);
    const ticket = c.ticket;
    q.disable();
    assert.equal(q.holds(c, ticket), false);
    assert.equal(q.push(c, 1), false);
    assert.equal(ring.usedIdx(), 0);
  });

  it("restores position and held chains", () => {
    const { mem, q, ring } = setup(8);
    for (let i = 0; i < 3; i++) ring.publish(ring.chain([{ addr: DATA + 16 * i, len: 4, write: true }]));
    const a = q.pop();
    const b = q.pop();
    assert.ok(a && b);
    q.push(a, 4);
    const state = JSON.parse(JSON.stringify(q.snapshot()));
    const q2 = new SplitQueue(mem, 0, 16);
    q2.restore(state);
    assert.equal(q2.inFlight, 1);
    const held = q2.heldChain(b.head);
    assert.ok(held);
    assert.equal(held.address(0), DATA + 16);
    const next = q2.pop();
    assert.ok(next);
    assert.equal(next.address(0), DATA + 32);
    assert.ok(q2.push(held, 4));
    assert.ok(q2.push(next, 4));
    assert.equal(ring.usedIdx(), 3);
    assert.throws(() => q2.restore({ ...state, size: 64 }), RangeError);
    assert.throws(() => q2.restore({ ...state, inFlight: [1, 1] }), RangeError);
    assert.throws(() => q2.restore({ ...state, lastAvail: 70000 }), RangeError);
  });
});
