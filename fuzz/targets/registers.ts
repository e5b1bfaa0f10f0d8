/**
 * Register files of the board devices (UART 16550, PLIC, CLINT, Goldfish RTC): random reads and writes
 * of any size and offset (biased to the real registers), interleaved with host events (input bytes,
 * interrupt sources, the clock moving, alarms). Crashes: any exception, and per device an invariant
 * (the PLIC never hands out a claim for a source it does not have, clocks never yield non-integers).
 */
import fc from "fast-check";
import { Clint } from "../../src/devices/clint/clint.js";
import type { InterruptLine, MmioDevice } from "../../src/devices/device.js";
import { GoldfishRtc } from "../../src/devices/goldfish-rtc/goldfish-rtc.js";
import { Plic } from "../../src/devices/plic/plic.js";
import { Uart16550 } from "../../src/devices/uart16550/uart16550.js";
import { defineTarget, invariant, type Target } from "../target.js";

const line = (): InterruptLine & { level: boolean } => ({
  level: false,
  set(l: boolean) {
    this.level = l;
  },
});

const value = fc.oneof(
  fc.nat(0xff),
  fc.constantFrom(0, 1, 0x80, 0xff, 0xffff_ffff, 0x8000_0000),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

function access(offsets: fc.Arbitrary<number>) {
  return fc.record({
    write: fc.boolean(),
    offset: offsets,
    size: fc.constantFrom(1, 2, 4, 4, 8, 3),
    lo: value,
    hi: value,
    event: fc.nat(255),
    bytes: fc.uint8Array({ maxLength: 40 }),
  });
}

type Access = ReturnType<typeof access> extends fc.Arbitrary<infer T> ? T : never;

function registerTarget(
  name: string,
  about: string,
  offsets: fc.Arbitrary<number>,
  make: () => { dev: MmioDevice; event(a: Access): void; check(out: Uint32Array, a: Access): void },
): Target<unknown> {
  return defineTarget({
    name,
    about,
    input: fc.array(access(offsets), { maxLength: 80 }),
    run(steps: Access[]) {
      const { dev, event, check } = make();
      const out = new Uint32Array(2);
      for (const a of steps) {
        if (a.event < 48) event(a);
        else if (a.write) dev.write(a.offset, a.size, a.lo, a.hi);
        else if (dev.read(a.offset, a.size, out)) check(out, a);
      }
    },
  });
}

export const uartTarget = registerTarget(
  "uart16550",
  "16550 UART registers (DLAB, FIFO, loopback, MSR/LSR), host input bursts",
  fc.oneof({ weight: 6, arbitrary: fc.nat(7) }, fc.nat(0xff)),
  () => {
    const irq = line();
    let sent = 0;
    const dev = new Uart16550(irq, { write: () => sent++ });
    return {
      dev,
      event: (a) => {
        const taken = dev.receive(a.bytes);
        invariant(taken >= 0 && taken <= a.bytes.length, `receive took ${taken} of ${a.bytes.length}`);
        invariant(dev.canReceive() >= 0, "canReceive() < 0");
      },
      check: () => invariant(sent >= 0, "sent"),
    };
  },
);

const PLIC_SOURCES = 96;

export const plicTarget = registerTarget(
  "plic",
  "PLIC priorities, pending, enables, thresholds, claim/complete for 2 contexts, source lines",
  fc.oneof(
    fc.nat(4 * PLIC_SOURCES + 8),
    fc.integer({ min: 0x1000, max: 0x1010 }),
    fc.integer({ min: 0x2000, max: 0x2090 }),
    fc.constantFrom(0x20_0000, 0x20_0004, 0x20_1000, 0x20_1004, 0x20_2004),
    fc.nat(0x40_0000),
  ),
  () => {
    const lines = [line(), line()];
    const dev = new Plic({ sources: PLIC_SOURCES, contexts: 2, lines });
    return {
      dev,
      event: (a) => dev.setSource(1 + (a.event % (PLIC_SOURCES - 1)), (a.lo & 1) === 1),
      check: (out, a) => {
        if ((a.offset & 0xfff) === 4 && a.offset >= 0x20_0000 && a.size === 4)
          invariant((out[0] as number) < PLIC_SOURCES, `claimed source ${out[0]}`);
      },
    };
  },
);

export const clintTarget = registerTarget(
  "clint",
  "CLINT msip, mtimecmp and mtime for 2 harts at every size, the clock moving",
  fc.oneof(fc.constantFrom(0, 4, 0x4000, 0x4004, 0x4008, 0x400c, 0xbff8, 0xbffc), fc.nat(0xffff)),
  () => {
    let now = 0;
    const harts = [0, 1].map(() => ({ software: line(), timer: line() }));
    const dev = new Clint({ ticks: () => now }, harts);
    return {
      dev,
      event: (a) => {
        now += a.lo;
        dev.update();
        const d = dev.nextDeadline();
        invariant(!Number.isNaN(d), "nextDeadline() is NaN");
      },
      check: (out) => invariant(Number.isInteger(out[0]) && Number.isInteger(out[1]), "non-integer register"),
    };
  },
);

export const rtcTarget = registerTarget(
  "goldfish-rtc",
  "Goldfish RTC time, alarm, interrupt registers; the host clock moving (also backwards)",
  fc.oneof({ weight: 4, arbitrary: fc.nat(8).map((i) => 4 * i) }, fc.nat(0xfff)),
  () => {
    let ns = 1.7e18;
    const dev = new GoldfishRtc({ nowNanos: () => ns }, line());
    return {
      dev,
      event: (a) => {
        ns = a.event & 1 ? ns + a.lo * 1000 : Math.max(0, ns - a.hi);
        dev.update();
        invariant(!Number.isNaN(dev.nextDeadline()), "nextDeadline() is NaN");
      },
      check: () => {},
    };
  },
);
