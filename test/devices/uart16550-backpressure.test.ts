/** The UART's transmitter against a host sink that fills up: the guest must stall, not the host grow. */
import assert from "node:assert/strict";
import type { InterruptLine } from "../../src/devices/device.js";
import { Uart16550 } from "../../src/devices/uart16550/uart16550.js";
import { describe, it } from "../support/test.js";
import { FakeSink } from "./fake-sink.js";

const THR = 0;
const IER = 1;
const IIR = 2;
const FCR = 2;
const MCR = 4;
const LSR = 5;
const LSR_THRE_TEMT = 0x60;
const IIR_THRI = 0x02;
const IIR_NONE = 0x01;

function make(room: number) {
  const line = {
    level: false,
    set(level: boolean) {
      this.level = level;
    },
  } satisfies InterruptLine & {
    level: boolean;
  };
  const sink = new FakeSink(room);
  const uart = new Uart16550(line, sink);
  const out = new Uint32Array(2);
  const rd = (reg: number) => {
    assert.ok(uart.read(reg, 1, out));
    return out[0] as number;
  };
  const wr = (reg: number, value: number) => assert.ok(uart.write(reg, 1, value, 0));
  return { line, sink, uart, rd, wr };
}

/** What a polling driver (OpenSBI, Linux's console write, our test guests) does for one byte. */
function pollingPut(rig: ReturnType<typeof make>, byte: number): boolean {
  if ((rig.rd(LSR) & LSR_THRE_TEMT) !== LSR_THRE_TEMT) return false;
  rig.wr(THR, byte);
  return true;
}

describe("16550A UART: host backpressure", () => {
  it("a polling writer sees THRE/TEMT clear while the sink is full and loses nothing", {
    timeout: 10_000,
  }, () => {
    const rig = make(4);
    const message = [...Buffer.from("backpressure, in order")];
    const sent: number[] = [];
    let stalls = 0;
    for (const byte of message) {
      while (!pollingPut(rig, byte)) {
        stalls++;
        assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, 0, "both THRE and TEMT clear while full");
        rig.sink.drain();
      }
      sent.push(byte);
    }
    assert.ok(stalls >= 5, `the writer stalled ${stalls} times`);
    assert.deepEqual(rig.sink.all(), message);
    assert.equal(rig.sink.waiting, 0, "nobody waits once the sink has room");
  });

  it("no THR-empty interrupt while full; it comes when the sink drains", { timeout: 10_000 }, () => {
    const rig = make(2);
    rig.wr(FCR, 0x01);
    rig.wr(IER, 0x02);
    assert.equal(rig.rd(IIR) & 0x0f, IIR_THRI, "ETBEI with THR empty raises THRE");
    rig.wr(THR, 0x41);
    assert.ok(rig.line.level, "room left: THR empty again at once");
    rig.wr(THR, 0x42);
    assert.equal(rig.line.level, false, "sink full: no THRE interrupt");
    assert.equal(rig.rd(IIR) & 0x0f, IIR_NONE);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, 0);
    // Re-enabling ETBEI while full must not fake an empty THR either.
    rig.wr(IER, 0);
    rig.wr(IER, 0x02);
    assert.equal(rig.line.level, false);
    assert.equal(rig.sink.waiting, 1, "one resume registered, however often the guest asked");
    rig.sink.drain();
    assert.ok(rig.line.level, "drained: THRE interrupt raised");
    assert.equal(rig.rd(IIR) & 0x0f, IIR_THRI);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, LSR_THRE_TEMT);
    assert.deepEqual(rig.sink.out, [0x41, 0x42]);
  });

  it("drain with THRE interrupts off only sets LSR", { timeout: 10_000 }, () => {
    const rig = make(1);
    rig.wr(THR, 0x31);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, 0);
    rig.sink.drain();
    assert.equal(rig.line.level, false);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, LSR_THRE_TEMT);
  });

  it("loopback does not depend on the host sink", { timeout: 10_000 }, () => {
    const rig = make(1);
    rig.wr(THR, 0x30);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, 0);
    rig.wr(MCR, 0x10);
    assert.equal(rig.rd(LSR) & LSR_THRE_TEMT, LSR_THRE_TEMT);
    rig.wr(THR, 0x55);
    assert.equal(rig.rd(0), 0x55, "looped back into the receiver");
    assert.deepEqual(rig.sink.all(), [0x30]);
  });
});
