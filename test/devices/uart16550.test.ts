import assert from "node:assert/strict";
import fc from "fast-check";
import type { InterruptLine } from "../../src/devices/device.js";
import { Uart16550 } from "../../src/devices/uart16550/uart16550.js";
import { describe, it } from "../support/test.js";

const RBR = 0;
const THR = 0;
const DLL = 0;
const IER = 1;
const DLM = 1;
const IIR = 2;
const FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

class Line implements InterruptLine {
  level = false;
  rises = 0;
  falls = 0;
  set(level: boolean): void {
    if (level && !this.level) this.rises++;
    if (!level && this.level) this.falls++;
    this.level = level;
  }
}

function make() {
  const line = new Line();
  const sent: number[] = [];
  const uart = new Uart16550(line, { write: (b) => sent.push(b) });
  const out = new Uint32Array(2);
  const rd = (offset: number, size = 1): number => {
    assert.ok(uart.read(offset, size, out), `read ${offset}/${size}`);
    return out[0] as number;
  };
  const wr = (offset: number, value: number, size = 1): void => {
    assert.ok(uart.write(offset, size, value, 0), `write ${offset}/${size}`);
  };
  const rx = (...bytes: number[]): number => uart.receive(Uint8Array.from(bytes));
  return { uart, line, sent, rd, wr, rx };
}

type Rig = ReturnType<typeof make>;

/**
 * Linux's 8250 probe as the driver performs it (drivers/tty/serial/8250/8250_port.c: autoconfig,
 * autoconfig_16550a, size_fifo), reduced to the register accesses and the decisions taken on them.
 */
function linuxAutoconfig({ rd, wr }: Rig): { type: string; fifoSize: number } {
  // Scratch test through IER: the low nibble must hold 0 and then 0x0f.
  const ier = rd(IER);
  wr(IER, 0);
  const scratch2 = rd(IER) & 0x0f;
  wr(IER, 0x0f);
  const scratch3 = rd(IER) & 0x0f;
  wr(IER, ier);
  if (scratch2 !== 0 || scratch3 !== 0x0f) return { type: "none (IER)", fifoSize: 0 };
  const saveMcr = rd(MCR);
  const saveLcr = rd(LCR);
  // Loopback: RTS|OUT2 must come back as CTS|DCD.
  wr(MCR, 0x10 | 0x0a);
  const status = rd(MSR) & 0xf0;
  wr(MCR, saveMcr);
  if (status !== 0x90) return { type: "none (loopback)", fifoSize: 0 };
  wr(LCR, 0xbf);
  wr(2, 0); // EFR on chips that have one
  wr(LCR, 0x03);
  wr(FCR, 0x01);
  const kind = rd(IIR) >> 6;
  let type = ["8250/16450", "unknown", "16550"][kind] ?? "16550A";
  let fifoSize = type === "16550A" ? 16 : 1;
  if (kind === 3) {
    wr(LCR, 0x80);
    if (rd(2) === 0) type = "16650 (EFR with DLAB)";
    wr(LCR, 0xbf);
    if (rd(2) === 0) type = "16650V2 (EFR with 0xBF)";
    // National Semiconductor SuperIO: MCR's loop bit visible at offset 2 with LCR=0xE0.
    wr(LCR, 0);
    const mcr = rd(MCR);
    wr(LCR, 0xe0);
    let excr = rd(2);
    if (((excr ^ mcr) & 0x10) === 0) {
      wr(LCR, 0);
      wr(MCR, mcr ^ 0x10);
      wr(LCR, 0xe0);
      excr = rd(2);
      wr(LCR, 0);
      wr(MCR, mcr);
      if (((excr ^ mcr) & 0x10) !== 0) type = "NS16550";
    }
    // TI16750: IIR bit 5 with 64-byte FIFO mode requested under DLAB.
    wr(LCR, 0);
    wr(FCR, 0x21);
    const s1 = rd(IIR) & 0xe0;
    wr(FCR, 0x01);
    wr(LCR, 0x80);
    wr(FCR, 0x21);
    const s2 = rd(IIR) & 0xe0;
    wr(FCR, 0x01);
    wr(LCR, 0);
    if (s1 === 0xc0 && s2 === 0xe0) type = "16750";
    // XScale: IER bit 6 (UUE) sticks.
    const iersave = rd(IER);
    wr(IER, iersave & ~0x40);
    if ((rd(IER) & 0x40) === 0) {
      wr(IER, iersave | 0x40);
      if ((rd(IER) & 0x40) !== 0) type = "XScale";
    }
    wr(IER, iersave);
    if (type === "16550A") fifoSize = sizeFifo({ rd, wr });
  }
  wr(LCR, saveLcr);
  // Reset the UART as the driver does after probing.
  wr(MCR, saveMcr);
  wr(FCR, 0x07);
  wr(FCR, 0);
  rd(RBR);
  wr(IER, 0);
  return { type, fifoSize };
}

/** size_fifo: in loopback at the fastest rate, send 256 bytes and count how many can be read back. */
function sizeFifo({ rd, wr }: Pick<Rig, "rd" | "wr">): number {
  const oldLcr = rd(LCR);
  wr(LCR, 0);
  const oldFcr = rd(FCR); // reads IIR, as the driver does
  const oldMcr = rd(MCR);
  wr(FCR, 0x07);
  wr(MCR, 0x10);
  wr(LCR, 0x80);
  const oldDl = rd(DLL) | (rd(DLM) << 8);
  wr(DLL, 1);
  wr(DLM, 0);
  wr(LCR, 0x03);
  for (let i = 0; i < 256; i++) wr(THR, i);
  let count = 0;
  while ((rd(LSR) & 0x01) !== 0 && count < 256) {
    assert.equal(rd(RBR), count, "loopback bytes come back in order");
    count++;
  }
  wr(FCR, oldFcr);
  wr(MCR, oldMcr);
  wr(LCR, 0x80);
  wr(DLL, oldDl & 0xff);
  wr(DLM, oldDl >> 8);
  wr(LCR, oldLcr);
  return count;
}

describe("16550A UART: Linux probing", () => {
  it("autoconfig detects a 16550A with a 16-byte FIFO and sends nothing out", () => {
    const rig = make();
    assert.deepEqual(linuxAutoconfig(rig), { type: "16550A", fifoSize: 16 });
    assert.deepEqual(rig.sent, []);
    assert.equal(rig.line.level, false);
    // The probe left the divisor it found and the UART idle.
    rig.wr(LCR, 0x80);
    assert.equal(rig.rd(DLL) | (rig.rd(DLM) << 8), 0x0c);
    rig.wr(LCR, 0x03);
    assert.equal(rig.rd(LSR) & 0x61, 0x60);
  });

  it("startup's THRE and TXEN tests see a UART that re-asserts THRE", () => {
    const { rd, wr } = make();
    wr(IER, 0x02);
    const iir1 = rd(IIR);
    wr(IER, 0);
    wr(IER, 0x02);
    const iir2 = rd(IIR);
    wr(IER, 0);
    assert.equal(iir1 & 0x0f, 0x02);
    assert.equal(iir2 & 0x0f, 0x02, "no UART_BUG_THRE");
    wr(IER, 0x02);
    const lsr = rd(LSR);
    const iir = rd(IIR);
    wr(IER, 0);
    assert.ok(!((lsr & 0x40) !== 0 && (iir & 0x01) !== 0), "no UART_BUG_TXEN");
  });

  it("scratch register and IER keep what the probe writes", () => {
    const { rd, wr } = make();
    for (const v of [0x00, 0x55, 0xaa, 0xff]) {
      wr(SCR, v);
      assert.equal(rd(SCR), v);
    }
    wr(IER, 0xff);
    assert.equal(rd(IER), 0x0f, "IER bits 7:4 read as 0 (no UUE, no sleep mode)");
  });
});

describe("16550A UART: registers", () => {
  it("DLAB selects the divisor latch at offsets 0 and 1", () => {
    const { rd, wr, sent, uart } = make();
    wr(IER, 0x05);
    wr(LCR, 0x83);
    wr(DLL, 0x34);
    wr(DLM, 0x12);
    assert.equal(rd(DLL), 0x34);
    assert.equal(rd(DLM), 0x12);
    assert.deepEqual(sent, [], "a DLL write transmits nothing");
    wr(LCR, 0x03);
    assert.equal(rd(IER), 0x05, "IER untouched by the DLM write");
    wr(THR, 0x41);
    assert.deepEqual(sent, [0x41]);
    uart.receive(Uint8Array.of(0x42));
    wr(LCR, 0x83);
    assert.equal(rd(DLL), 0x34, "DLL, not the received byte");
    wr(LCR, 0x03);
    assert.equal(rd(RBR), 0x42);
  });

  it("LCR keeps all 8 bits, MCR its low 5", () => {
    const { rd, wr } = make();
    for (let v = 0; v < 256; v++) {
      wr(LCR, v);
      assert.equal(rd(LCR), v);
    }
    wr(LCR, 0);
    for (let v = 0; v < 256; v++) {
      wr(MCR, v);
      assert.equal(rd(MCR), v & 0x1f);
    }
  });

  it("MSR mirrors MCR in loopback and reports deltas", () => {
    const { rd, wr, line } = make();
    assert.equal(rd(MSR), 0xb0, "CTS, DSR and DCD asserted outside loopback");
    wr(IER, 0x08);
    wr(MCR, 0x10);
    assert.equal(line.level, true, "CTS/DSR/DCD dropped: modem status interrupt");
    assert.equal(rd(IIR), 0x00);
    assert.equal(rd(MSR), 0x0b);
    assert.equal(line.level, false);
    const cases: [number, number][] = [
      [0x11, 0x20], // DTR -> DSR
      [0x12, 0x10], // RTS -> CTS
      [0x14, 0x40], // OUT1 -> RI
      [0x18, 0x80], // OUT2 -> DCD
      [0x1f, 0xf0],
    ];
    for (const [mcr, inputs] of cases) {
      wr(MCR, mcr);
      rd(MSR);
      assert.equal(rd(MSR), inputs, `MCR 0x${mcr.toString(16)}`);
    }
    wr(MCR, 0x1b); // RI falls: trailing-edge ring indicator
    assert.equal(rd(MSR), 0xb4);
    wr(MCR, 0x00);
    assert.equal(rd(MSR), 0xb0, "leaving loopback with DTR/RTS/OUT2 set changes no input");
  });

  it("accepts 1-, 2- and 4-byte accesses at offsets 0..7 only", () => {
    const { uart } = make();
    const out = new Uint32Array(2);
    assert.ok(uart.write(7, 4, 0xdeadbe5a, 0));
    assert.ok(uart.read(7, 4, out));
    assert.equal(out[0], 0x5a, "low byte of the write, zero-extended");
    assert.ok(uart.read(7, 2, out));
    assert.equal(out[0], 0x5a);
    assert.equal(uart.read(8, 1, out), false);
    assert.equal(uart.read(0xff, 1, out), false);
    assert.equal(uart.write(8, 1, 0, 0), false);
    assert.equal(uart.read(0, 8, out), false);
    assert.equal(uart.write(0, 3, 0, 0), false);
    assert.equal(uart.read(-1, 1, out), false);
  });
});

describe("16550A UART: receive path", () => {
  it("delivers bytes in order with DR tracking the FIFO", () => {
    const { rd, wr, rx, line } = make();
    wr(FCR, 0x07);
    assert.equal(rx(1, 2, 3), 3);
    assert.equal(line.level, false, "no interrupt without IER.ERBFI");
    assert.equal(rd(LSR), 0x61);
    assert.equal(rd(RBR), 1);
    assert.equal(rd(RBR), 2);
    assert.equal(rd(LSR) & 1, 1);
    assert.equal(rd(RBR), 3);
    assert.equal(rd(LSR), 0x60);
  });

  it("reports RDA at the trigger level and character timeout below it", () => {
    for (const [fcr, level] of [
      [0x01, 1],
      [0x41, 4],
      [0x81, 8],
      [0xc1, 14],
    ] as const) {
      const { rd, wr, rx, line } = make();
      wr(FCR, fcr);
      wr(IER, 0x01);
      assert.equal(line.level, false);
      for (let i = 1; i < level; i++) {
        rx(i);
        assert.equal(line.level, true, "timeout asserted at once");
        assert.equal(rd(IIR), 0xcc, `${i} of ${level}`);
      }
      rx(0xee);
      assert.equal(rd(IIR), 0xc4, `trigger ${level}`);
      assert.equal(line.rises, 1, "the line rose once and stayed up");
      for (let i = 0; i < level; i++) {
        assert.equal(line.level, true);
        rd(RBR);
      }
      assert.equal(line.level, false, "dropped by the read that emptied the FIFO");
      assert.equal(rd(IIR), 0xc1);
    }
  });

  it("overflow drops the extra bytes and sets OE until LSR is read", () => {
    const { rd, wr, rx, uart } = make();
    wr(FCR, 0x01);
    assert.equal(uart.canReceive(), 16);
    const bytes = Array.from({ length: 20 }, (_, i) => 0x30 + i);
    assert.equal(rx(...bytes), 16);
    assert.equal(uart.canReceive(), 0);
    assert.equal(rx(0x99), 0);
    assert.equal(rd(LSR), 0x63);
    assert.equal(rd(LSR), 0x61, "OE cleared by the read");
    for (let i = 0; i < 16; i++) assert.equal(rd(RBR), 0x30 + i);
    assert.equal(rd(LSR), 0x60);
  });

  it("line status interrupt outranks received data", () => {
    const { rd, wr, rx, line } = make();
    wr(FCR, 0x01);
    wr(IER, 0x05);
    rx(...new Array(17).fill(7));
    assert.equal(rd(IIR), 0xc6);
    assert.equal(line.level, true);
    rd(LSR);
    assert.equal(rd(IIR), 0xc4);
  });

  it("without FIFOs holds one byte, and an overrun replaces it", () => {
    const { rd, rx, wr, uart } = make();
    wr(IER, 0x01);
    assert.equal(uart.canReceive(), 1);
    assert.equal(rx(1, 2, 3), 1);
    assert.equal(rd(IIR), 0x04, "no FIFO bits");
    assert.equal(rd(LSR), 0x63);
    assert.equal(rd(RBR), 3);
    assert.equal(rd(LSR), 0x60);
  });

  it("FCR clears the receive FIFO, and toggling FIFO mode empties it", () => {
    const { rd, wr, rx } = make();
    wr(FCR, 0x01);
    rx(1, 2, 3);
    wr(FCR, 0x03);
    assert.equal(rd(LSR) & 1, 0);
    rx(4, 5);
    wr(FCR, 0x00);
    assert.equal(rd(LSR) & 1, 0);
    assert.equal(rd(IIR), 0x01);
    rx(6);
    wr(FCR, 0xc1);
    assert.equal(rd(LSR) & 1, 0);
  });

  it("loopback sends THR to the receiver and ignores host input", () => {
    const { rd, wr, rx, sent, uart } = make();
    wr(FCR, 0x01);
    wr(MCR, 0x10);
    assert.equal(uart.canReceive(), 0);
    assert.equal(rx(9), 0);
    wr(THR, 0x5a);
    assert.deepEqual(sent, []);
    assert.equal(rd(RBR), 0x5a);
    wr(MCR, 0);
    wr(THR, 0x5b);
    assert.deepEqual(sent, [0x5b]);
    assert.equal(rd(LSR) & 1, 0);
  });
});

describe("16550A UART: interrupts", () => {
  it("THRE: ETBEI raises it, an IIR read clears it, a THR write re-arms it", () => {
    const { rd, wr, line, sent } = make();
    wr(FCR, 0x01);
    assert.equal(rd(IIR), 0xc1);
    wr(IER, 0x02);
    assert.equal(line.level, true);
    assert.equal(rd(IIR), 0xc2);
    assert.equal(line.level, false, "reading IIR cleared THRE");
    assert.equal(rd(IIR), 0xc1);
    wr(IER, 0x02);
    assert.equal(line.level, false, "rewriting the same IER does not re-arm");
    wr(THR, 0x21);
    assert.deepEqual(sent, [0x21]);
    assert.equal(line.level, true, "the byte left at once: THR empty again");
    wr(IER, 0x00);
    assert.equal(line.level, false);
    wr(IER, 0x02);
    assert.equal(line.level, true, "enabling ETBEI with THR empty raises THRE");
    assert.equal(rd(LSR) & 0x60, 0x60, "THRE and TEMT");
    assert.equal(line.level, true, "LSR reads leave THRE alone");
  });

  it("IIR reports the highest-priority cause, and reading IIR clears only THRE", () => {
    const { rd, wr, rx, line } = make();
    wr(FCR, 0xc1); // trigger 14
    wr(IER, 0x0f);
    wr(MCR, 0x10); // loopback: modem inputs drop -> MSR deltas
    wr(MCR, 0x00);
    rx(...new Array(20).fill(1)); // overrun: OE
    assert.equal(rd(IIR), 0xc6, "line status first");
    rd(LSR);
    assert.equal(rd(IIR), 0xc4, "then received data (16 >= 14)");
    for (let i = 0; i < 3; i++) rd(RBR);
    assert.equal(rd(IIR), 0xcc, "then character timeout (13 < 14)");
    while (rd(LSR) & 1) rd(RBR);
    assert.equal(rd(IIR), 0xc2, "then THRE, cleared by this read");
    assert.equal(rd(IIR), 0xc0, "then modem status");
    assert.equal(line.level, true);
    rd(MSR);
    assert.equal(rd(IIR), 0xc1);
    assert.equal(line.level, false);
  });

  it("a THRE under a higher-priority cause survives IIR reads", () => {
    const { rd, wr, rx } = make();
    wr(IER, 0x03);
    rx(0x10);
    assert.equal(rd(IIR), 0x04);
    assert.equal(rd(IIR), 0x04);
    rd(RBR);
    assert.equal(rd(IIR), 0x02);
    assert.equal(rd(IIR), 0x01);
  });
});

describe("16550A UART: snapshot", () => {
  it("restores mid-stream state into a fresh UART through JSON", () => {
    const a = make();
    a.wr(LCR, 0x83);
    a.wr(DLL, 3);
    a.wr(LCR, 0x03);
    a.wr(FCR, 0xc1);
    a.wr(IER, 0x03);
    a.wr(SCR, 0x99);
    a.rx(...new TextEncoder().encode("hello world"));
    for (let i = 0; i < 3; i++) a.rd(RBR);
    a.rd(IIR); // CTI: THRE stays pending underneath
    const state = JSON.parse(JSON.stringify(a.uart.snapshot()));
    const b = make();
    b.uart.restore(state);
    assert.equal(b.line.level, true);
    assert.equal(b.uart.peekIir(), a.uart.peekIir());
    assert.deepEqual(b.uart.snapshot(), a.uart.snapshot());
    const rest = (r: Rig) => {
      const got: number[] = [];
      while (r.rd(LSR) & 1) got.push(r.rd(RBR));
      return String.fromCharCode(...got);
    };
    assert.equal(rest(b), "lo world");
    assert.equal(rest(a), "lo world");
    assert.equal(b.rd(IIR), 0xc2);
    assert.equal(b.rd(SCR), 0x99);
    b.wr(LCR, 0x83);
    assert.equal(b.rd(DLL), 3);
  });

  it("rejects malformed snapshots without changing state", () => {
    const { uart, rx } = make();
    rx(1, 2);
    const before = uart.snapshot();
    const good = uart.snapshot();
    const bad: unknown[] = [
      null,
      [],
      "x",
      { ...good, version: 2 },
      { ...good, ier: 0x10 },
      { ...good, fcr: 0x02 },
      { ...good, fcr: 0x31 },
      { ...good, rx: [1, 2] }, // two bytes without FIFOs
      { ...good, fcr: 0x01, rx: new Array(17).fill(0) },
      { ...good, rx: [256] },
      { ...good, rx: "ab" },
      { ...good, thrPending: 1 },
      { ...good, thrPending: true, ier: 0 },
      { ...good, lsrErrors: 0x01 },
      { ...good, dll: 1.5 },
      { ...good, scr: undefined },
    ];
    for (const state of bad) {
      assert.throws(() => uart.restore(state), `${JSON.stringify(state)}`);
      assert.deepEqual(uart.snapshot(), before);
    }
  });

  it("reset returns to the power-on state and lowers the line", () => {
    const { uart, rd, wr, rx, line } = make();
    wr(FCR, 0x01);
    wr(IER, 0x0f);
    rx(1, 2, 3);
    assert.equal(line.level, true);
    uart.reset();
    assert.equal(line.level, false);
    assert.equal(rd(IER), 0);
    assert.equal(rd(IIR), 0x01);
    assert.equal(rd(LSR), 0x60);
  });
});

type Op =
  | { kind: "read"; offset: number; size: number }
  | { kind: "write"; offset: number; size: number; value: number }
  | { kind: "receive"; bytes: number[] }
  | { kind: "snapshot" }
  | { kind: "reset" };

const interesting = fc.oneof(
  fc.integer({ min: 0, max: 0xff }),
  fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x07, 0x0f, 0x10, 0x1f, 0x41, 0x80, 0x81, 0xc1, 0xc7),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const offsetArb = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 9 }));
const sizeArb = fc.constantFrom(1, 1, 1, 2, 4, 8);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("read" as const), offset: offsetArb, size: sizeArb }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      offset: offsetArb,
      size: sizeArb,
      value: interesting,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("receive" as const),
      bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("snapshot" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const) }) },
);

describe("16550A UART: fuzz", () => {
  it("random accesses never throw and keep the FIFO and line invariants", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300, size: "max" }), (ops) => {
        const line = new Line();
        const uart = new Uart16550(line, { write: () => {} });
        const out = new Uint32Array(2);
        for (const op of ops) {
          const before = uart.snapshot();
          const lineBefore = line.level;
          const valid = (o: number, s: number) => o < 8 && (s === 1 || s === 2 || s === 4);
          if (op.kind === "read") {
            const ok = uart.read(op.offset, op.size, out);
            assert.equal(ok, valid(op.offset, op.size));
            const value = out[0] as number;
            const dlab = (before.lcr & 0x80) !== 0;
            if (ok) assert.ok(value <= 0xff);
            if (ok && op.offset === IIR) {
              assert.equal((value & 1) === 0, lineBefore, "IIR agrees with the line");
              assert.ok([0x01, 0x00, 0x02, 0x04, 0x06, 0x0c].includes(value & 0x0f));
              assert.equal(value & 0xf0, (before.fcr & 1) !== 0 ? 0xc0 : 0);
            }
            if (ok && op.offset === LSR) {
              assert.equal(value & 0x61, 0x60 | (before.rx.length > 0 ? 1 : 0));
            }
            if (ok && op.offset === RBR && !dlab) assert.equal(value, before.rx[0] ?? 0);
            if (ok) {
              // A read changes nothing but what it consumes: a byte, OE, MSR deltas, or a reported THRE.
              const expected = { ...before };
              if (op.offset === RBR && !dlab) expected.rx = before.rx.slice(1);
              if (op.offset === IIR) expected.thrPending = before.thrPending && (value & 0x0f) !== 0x02;
              if (op.offset === LSR) expected.lsrErrors = 0;
              if (op.offset === MSR) expected.msrDeltas = 0;
              assert.deepEqual(uart.snapshot(), expected, `side effects of reading ${op.offset}`);
            }
          } else if (op.kind === "write") {
            assert.equal(uart.write(op.offset, op.size, op.value, 0), valid(op.offset, op.size));
          } else if (op.kind === "receive") {
            const room = uart.canReceive();
            const taken = uart.receive(Uint8Array.from(op.bytes));
            assert.equal(taken, Math.min(room, op.bytes.length));
            const overran = op.bytes.length > room && (before.mcr & 0x10) === 0;
            if (overran) assert.equal(uart.snapshot().lsrErrors & 0x02, 0x02);
          } else if (op.kind === "snapshot") {
            uart.restore(JSON.parse(JSON.stringify(before)));
            assert.deepEqual(uart.snapshot(), before);
          } else {
            uart.reset();
          }
          const after = uart.snapshot();
          assert.ok(after.rx.length <= ((after.fcr & 1) !== 0 ? 16 : 1), "FIFO within capacity");
          assert.equal(line.level, (uart.peekIir() & 1) === 0, "line follows IIR");
        }
      }),
      { numRuns: 300 },
    );
  });
});
