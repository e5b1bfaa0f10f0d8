/**
 * The i8042's Ctrl-Alt-Del as Linux's i8042 driver reads it: one byte in the output buffer at a time,
 * OBF in the status register while there is one, an IRQ 1 edge per byte, set 1 codes behind a
 * translating controller (atkbd on a SERIO_8042_XL port) and set 2 without translation (i8042.direct),
 * nothing while the keyboard interface is disabled, and garbage port accesses that break nothing.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { I8042 } from "../../src/machine/x86-microvm/i8042.js";
import { describe, test } from "../support/test.js";

const OBF = 0x01;
const SET1 = [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d];
const SET2 = [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

function controller() {
  let edges = 0;
  let level = false;
  let resets = 0;
  const dev = new I8042(
    {
      set(l) {
        if (l && !level) edges++;
        level = l;
      },
    },
    () => resets++,
  );
  const out = new Uint32Array(2);
  const read = (offset: number) => {
    assert.ok(dev.read(offset, 1, out));
    return out[0] as number;
  };
  const writeCtr = (ctr: number) => {
    dev.write(4, 1, 0x60);
    dev.write(0, 1, ctr);
  };
  /** What Linux's i8042_interrupt does per IRQ: status, then one data byte if OBF. */
  const drain = () => {
    const bytes: number[] = [];
    const perByte: number[] = [];
    while (read(4) & OBF) {
      const before = edges;
      bytes.push(read(0));
      perByte.push(edges - before);
    }
    return { bytes, perByte };
  };
  return { dev, read, writeCtr, drain, edges: () => edges, resets: () => resets };
}

describe("i8042 Ctrl-Alt-Del", () => {
  test("translated (the default CTR): set 1 press and release, OBF and one IRQ per byte", () => {
    const c = controller();
    assert.equal(c.read(4) & OBF, 0);
    c.dev.pressCtrlAltDel();
    assert.equal(c.read(4) & OBF, OBF, "the first byte is in the output buffer");
    assert.equal(c.edges(), 1, "its IRQ is raised at once");
    const { bytes, perByte } = c.drain();
    assert.deepEqual(bytes, SET1);
    // Reading a byte brings in the next one with its own edge; the last read leaves the buffer empty.
    assert.deepEqual(perByte, [1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(c.edges(), SET1.length);
    assert.equal(c.read(4) & OBF, 0);
    assert.equal(c.read(0), 0, "an empty buffer reads 0");
    assert.equal(c.edges(), SET1.length, "and raises nothing");
  });

  test("untranslated (CTR bit 6 clear, i8042.direct): the keyboard's set 2 bytes", () => {
    const c = controller();
    c.writeCtr(0x05);
    c.dev.pressCtrlAltDel();
    assert.deepEqual(c.drain().bytes, SET2);
    assert.equal(c.edges(), SET2.length);
  });

  test("no IRQ with the keyboard interrupt disabled; no bytes while the interface is", () => {
    const c = controller();
    c.writeCtr(0x44); // translation, no KBDINT: polled
    c.dev.pressCtrlAltDel();
    assert.deepEqual(c.drain().bytes, SET1);
    assert.equal(c.edges(), 0);

    // As Linux's i8042_controller_init leaves it until the port is opened: KBDDIS set, KBDINT clear.
    c.writeCtr(0x54);
    c.dev.pressCtrlAltDel();
    assert.equal(c.read(4) & OBF, 0, "the keyboard holds its bytes");
    c.dev.write(4, 1, 0xae); // enable the keyboard interface
    assert.equal(c.read(4) & OBF, OBF);
    c.dev.write(4, 1, 0xad); // disabled again after one byte: that byte stays readable, no more come
    assert.equal(c.read(0), SET1[0]);
    assert.equal(c.read(4) & OBF, 0);
    c.writeCtr(0x45);
    assert.equal(c.edges(), 1, "enabling by the CTR brings the next byte in with its IRQ");
    assert.deepEqual(c.drain().bytes, SET1.slice(1));
  });

  test("controller replies queued ahead of the keyboard come first", () => {
    const c = controller();
    c.dev.write(4, 1, 0xaa); // self-test: 0x55
    c.dev.pressCtrlAltDel();
    assert.deepEqual(c.drain().bytes, [0x55, ...SET1]);
  });

  test("garbage port accesses are harmless: the chord still reads right once the guest re-initialises", () => {
    const access = fc.record({
      offset: fc.integer({ min: 0, max: 7 }),
      size: fc.constantFrom(1, 2, 4, 8),
      value: fc.integer({ min: 0, max: 0xffff_ffff }),
      write: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(access, { maxLength: 64 }), fc.boolean(), (accesses, pressFirst) => {
        const c = controller();
        if (pressFirst) c.dev.pressCtrlAltDel();
        const out = new Uint32Array(2);
        for (const a of accesses) {
          const handled = a.write
            ? c.dev.write(a.offset, a.size, a.value)
            : c.dev.read(a.offset, a.size, out);
          // Only the two byte-wide registers exist; everything else is refused, never thrown on.
          assert.equal(handled, a.size === 1 && (a.offset === 0 || a.offset === 4));
        }
        // A driver's (re)initialisation: flush, CTR back to translated + KBDINT, keyboard enabled.
        c.drain();
        c.writeCtr(0x45);
        c.dev.write(4, 1, 0xae);
        c.drain();
        const edges = c.edges();
        c.dev.pressCtrlAltDel();
        assert.deepEqual(c.drain().bytes, SET1);
        assert.equal(c.edges() - edges, SET1.length);
      }),
    );
  });
});
