import assert from "node:assert/strict";
import fc from "fast-check";
import { EV_KEY, EV_LED, EV_SYN, KEY } from "../../../src/devices/virtio/input/codes.js";
import {
  EVENT_SIZE,
  InputConfig,
  MAX_PENDING_EVENTS,
  VirtioInput,
} from "../../../src/devices/virtio/input/virtio-input.js";
import { MmioReg } from "../../../src/devices/virtio/mmio.js";
import { Interrupt } from "../../../src/devices/virtio/spec.js";
import { describe, it } from "../../support/test.js";
import { TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 4 << 20;
const BUFS = BASE + 0x10_0000;

type Event = [type: number, code: number, value: number];

/** select/subsel as Linux's virtinput_cfg_select writes them; returns size and the union's bytes. */
function query(drv: TestDriver, select: number, subsel: number): { size: number; bytes: number[] } {
  assert.ok(drv.mmio.write(0x100, 1, select, 0));
  assert.ok(drv.mmio.write(0x101, 1, subsel, 0));
  const size = drv.config(2, 1);
  const bytes: number[] = [];
  for (let i = 0; i < size; i++) bytes.push(drv.config(8 + i, 1));
  return { size, bytes };
}

function setup(device = new VirtioInput()) {
  const mem = new TestMemory(BASE, RAM);
  const drv = new TestDriver(mem, device);
  let next = BUFS;
  /** Where each head's buffer is (the test ring reuses descriptors as it wraps). */
  const addrOf = new Map<number, number>();
  /** Posts `n` 8-byte event buffers on the event queue (one notify each, as Linux refills). */
  const post = (n: number) => {
    for (let i = 0; i < n; i++) {
      const ring = drv.rings[0] as NonNullable<(typeof drv.rings)[0]>;
      const head = ring.chain([{ addr: next, len: EVENT_SIZE, write: true }]);
      addrOf.set(head, next);
      ring.publish(head);
      drv.wr(MmioReg.QUEUE_NOTIFY, 0);
      next += EVENT_SIZE;
    }
  };
  /** The events in the used buffers since the last call, in order. */
  const take = (): Event[] =>
    (drv.rings[0]?.takeUsed() ?? []).map(([head, len]) => {
      assert.equal(len, EVENT_SIZE);
      const addr = addrOf.get(head) as number;
      return [mem.u16(addr), mem.u16(addr + 2), mem.u32(addr + 4)];
    });
  /** A driver reset and bring-up on zeroed rings (as a real driver allocates them afresh). */
  const restart = () => {
    mem.bytes.fill(0, 0, BUFS - BASE);
    drv.start();
  };
  return { mem, drv, device, post, take, restart };
}

const syn: Event = [EV_SYN, 0, 0];
const CTRL_ALT_DEL: Event[] = [
  [EV_KEY, KEY.LEFTCTRL, 1],
  syn,
  [EV_KEY, KEY.LEFTALT, 1],
  syn,
  [EV_KEY, KEY.DELETE, 1],
  syn,
  [EV_KEY, KEY.DELETE, 0],
  syn,
  [EV_KEY, KEY.LEFTALT, 0],
  syn,
  [EV_KEY, KEY.LEFTCTRL, 0],
  syn,
];

describe("virtio-input keyboard", () => {
  it("answers the driver's config questions: name, serial, IDs, EV_KEY and EV_LED bits, nothing else", () => {
    const { drv } = setup(new VirtioInput({ name: "kbd", serial: "S1" }));
    assert.equal(drv.rd(0x008), 18);
    assert.deepEqual(query(drv, InputConfig.ID_NAME, 0), { size: 3, bytes: [...Buffer.from("kbd")] });
    assert.deepEqual(query(drv, InputConfig.ID_SERIAL, 0), { size: 2, bytes: [...Buffer.from("S1")] });
    assert.deepEqual(query(drv, InputConfig.ID_DEVIDS, 0), { size: 8, bytes: [6, 0, 0, 0, 1, 0, 1, 0] });
    const keys = query(drv, InputConfig.EV_BITS, EV_KEY);
    assert.equal(keys.size, 32);
    assert.equal(keys.bytes[0], 0xfe, "codes 1..7, not 0 (KEY_RESERVED)");
    assert.ok(keys.bytes.slice(1).every((b) => b === 0xff));
    assert.deepEqual(query(drv, InputConfig.EV_BITS, EV_LED), { size: 1, bytes: [0x07] });
    for (const [select, subsel] of [
      [InputConfig.EV_BITS, 0x02], // EV_REL
      [InputConfig.EV_BITS, 0x03], // EV_ABS
      [InputConfig.PROP_BITS, 0],
      [InputConfig.ABS_INFO, 0],
      [InputConfig.UNSET, 0],
      [InputConfig.ID_NAME, 1],
      [0x7f, 0],
    ] as const) {
      assert.equal(query(drv, select, subsel).size, 0, `select ${select} subsel ${subsel}`);
    }
    // One 16-bit write sets both; size and the union are read-only.
    assert.ok(drv.mmio.write(0x100, 2, InputConfig.EV_BITS | (EV_LED << 8), 0));
    assert.ok(drv.mmio.write(0x102, 1, 99, 0));
    assert.equal(drv.config(2, 1), 1);
    assert.equal(drv.config(8, 1), 0x07);
  });

  it("delivers a press in order, each key change followed by EV_SYN, one event per buffer", () => {
    const { drv, device, post, take } = setup();
    drv.start();
    post(16);
    assert.equal(drv.ack(), 0, "nothing happens without a press");
    assert.ok(device.pressCtrlAltDel());
    assert.deepEqual(take(), CTRL_ALT_DEL);
    assert.equal(drv.ack() & Interrupt.USED_BUFFER, Interrupt.USED_BUFFER);
    assert.ok(device.press([KEY.A]));
    assert.deepEqual(take(), [[EV_KEY, KEY.A, 1], syn, [EV_KEY, KEY.A, 0], syn]);
    assert.equal(device.stats.delivered, 16);
    assert.throws(() => device.press([0]), RangeError);
    assert.throws(() => device.press([256]), RangeError);
  });

  it("holds events until the guest posts buffers, even from before its driver started", () => {
    const { drv, device, post, take } = setup();
    assert.ok(device.pressCtrlAltDel(), "before the driver is up");
    drv.start();
    assert.equal(device.pendingEvents, 12);
    post(5);
    assert.deepEqual(take(), CTRL_ALT_DEL.slice(0, 5));
    assert.equal(device.pendingEvents, 7);
    post(10);
    assert.deepEqual(take(), CTRL_ALT_DEL.slice(5));
    assert.equal(device.pendingEvents, 0);
  });

  it("a full queue refuses whole presses and counts their events as dropped", () => {
    const { drv, device, post, take, restart } = setup();
    drv.start();
    const fits = Math.floor(MAX_PENDING_EVENTS / 12);
    for (let i = 0; i < fits; i++) assert.ok(device.pressCtrlAltDel());
    assert.equal(device.pressCtrlAltDel(), false);
    // A press of one key (4 events) may still fit where a chord does not.
    const room = MAX_PENDING_EVENTS - fits * 12;
    assert.equal(device.press([KEY.A]), room >= 4);
    assert.equal(device.stats.dropped, 12 + (room >= 4 ? 0 : 4));
    const queued = device.pendingEvents;
    assert.equal(queued, fits * 12 + (room >= 4 ? 4 : 0));
    // The test ring holds 64 buffers: take the events in rounds, the driver reset in between.
    const got: Event[] = [];
    while (device.pendingEvents > 0) {
      post(Math.min(60, device.pendingEvents + 4));
      got.push(...take());
      restart();
    }
    assert.equal(got.length, queued);
    assert.deepEqual(got.slice(0, 12), CTRL_ALT_DEL);
    assert.deepEqual(got.slice((fits - 1) * 12, fits * 12), CTRL_ALT_DEL, "the last chord whole");
  });

  it("reads the guest's LED events off the status queue and returns the buffers", () => {
    const { drv, device, mem } = setup();
    drv.start();
    const led = (code: number, value: number, at: number) => {
      mem.set16(at, EV_LED);
      mem.set16(at + 2, code);
      mem.set32(at + 4, value);
      return drv.submit(1, [{ addr: at, len: EVENT_SIZE }]);
    };
    const a = led(1, 1, BUFS);
    const b = led(0, 1, BUFS + 8);
    assert.deepEqual(drv.rings[1]?.takeUsed(), [
      [a, 0],
      [b, 0],
    ]);
    assert.equal(device.leds, 0b011);
    led(1, 0, BUFS + 16);
    assert.equal(device.leds, 0b001);
    assert.equal(device.stats.statusEvents, 3);
  });

  it("garbage from the guest stops that queue (DEVICE_NEEDS_RESET), never throws, and RAM stays intact", () => {
    const cases: [string, (d: ReturnType<typeof setup>) => void][] = [
      ["event buffer beyond RAM", (d) => d.drv.submit(0, [{ addr: BASE + RAM - 4, len: 8, write: true }])],
      ["event buffer far beyond RAM", (d) => d.drv.submit(0, [{ addr: 2 ** 40, len: 8, write: true }])],
      ["event buffer too short", (d) => d.drv.submit(0, [{ addr: BUFS, len: 4, write: true }])],
      ["event buffer device-readable", (d) => d.drv.submit(0, [{ addr: BUFS, len: 8 }])],
      ["status buffer beyond RAM", (d) => d.drv.submit(1, [{ addr: BASE + RAM, len: 8 }])],
      ["status buffer too short", (d) => d.drv.submit(1, [{ addr: BUFS, len: 2 }])],
    ];
    for (const [what, act] of cases) {
      const d = setup();
      d.drv.start();
      assert.ok(d.device.pressCtrlAltDel());
      act(d);
      assert.ok(d.drv.needsReset(), what);
      assert.ok(d.mem.guardsIntact(), what);
      // The host side goes on: presses queue (up to the bound) and a reset driver gets them.
      d.device.press([KEY.A]);
      d.restart();
      d.post(20);
      assert.equal(d.take().length, 16, what);
    }
  });

  it("snapshot and restore keep the pending events, LEDs, counters and the config question", () => {
    const { drv, device } = setup();
    drv.start();
    device.pressCtrlAltDel();
    query(drv, InputConfig.EV_BITS, EV_LED);
    const state = device.snapshot();
    const copy = new VirtioInput();
    copy.restore(JSON.parse(JSON.stringify(state)));
    assert.deepEqual(copy.snapshot(), state);
    assert.equal(copy.readConfig(2, 1), 1);
    assert.equal(copy.pendingEvents, 12);
    for (const bad of [
      null,
      { ...state, version: 2 },
      { ...state, pending: [1, 2] },
      { ...state, pending: [1, 2, -1] },
      { ...state, leds: 8 },
      { ...state, stats: { delivered: 1 } },
      { ...state, select: 256 },
    ]) {
      assert.throws(() => copy.restore(bad), /virtio-input snapshot/);
    }
    assert.deepEqual(copy.snapshot(), state, "a bad snapshot changes nothing");
  });

  it("property: whatever the interleaving of presses and buffers, the guest sees the accepted presses whole and in order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ press: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 4 }) }),
            fc.record({ buffers: fc.integer({ min: 0, max: 20 }) }),
          ),
          { maxLength: 40 },
        ),
        (steps) => {
          const { drv, device, post, take } = setup();
          drv.start();
          const expected: Event[] = [];
          const got: Event[] = [];
          let posted = 0;
          for (const step of steps) {
            if ("press" in step) {
              const accepted = device.press(step.press);
              assert.equal(
                accepted || device.pendingEvents + step.press.length * 4 > MAX_PENDING_EVENTS,
                true,
              );
              if (!accepted) continue;
              for (const k of step.press) expected.push([EV_KEY, k, 1], syn);
              for (const k of [...step.press].reverse()) expected.push([EV_KEY, k, 0], syn);
            } else if (posted + step.buffers <= 64) {
              post(step.buffers);
              posted += step.buffers;
            }
            got.push(...take());
          }
          assert.deepEqual(got, expected.slice(0, got.length));
          assert.equal(got.length + device.pendingEvents, expected.length);
        },
      ),
    );
  });
});
