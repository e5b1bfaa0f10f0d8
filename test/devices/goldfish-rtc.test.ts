import assert from "node:assert/strict";
import type { InterruptLine } from "../../src/devices/device.js";
import { GoldfishRtc } from "../../src/devices/goldfish-rtc/goldfish-rtc.js";
import { describe, it } from "../support/test.js";

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;

const NS = 1_000_000_000n;
/** About 2023-11-14T22:13:20.123Z in nanoseconds: a double, at this magnitude a multiple of 256. */
const HOST_NOW = 1_700_000_000_123 * 1e6;

class Line implements InterruptLine {
  level = false;
  set(level: boolean): void {
    this.level = level;
  }
}

function make(start = HOST_NOW) {
  const clock = { ns: start, nowNanos: () => clock.ns };
  const line = new Line();
  const rtc = new GoldfishRtc(clock, line);
  const out = new Uint32Array(2);
  const rd = (offset: number): number => {
    assert.ok(rtc.read(offset, 4, out), `read ${offset}`);
    return out[0] as number;
  };
  const wr = (offset: number, value: number): void => {
    assert.ok(rtc.write(offset, 4, value, 0), `write ${offset}`);
  };
  /** rtc-goldfish's read_time: TIME_LOW, then the latched TIME_HIGH. */
  const readTime = (): bigint => {
    const low = BigInt(rd(TIME_LOW));
    return (BigInt(rd(TIME_HIGH)) << 32n) | low;
  };
  /** rtc-goldfish's set_time: TIME_HIGH, then TIME_LOW. */
  const setTime = (t: bigint): void => {
    wr(TIME_HIGH, Number(t >> 32n));
    wr(TIME_LOW, Number(t & 0xffff_ffffn));
  };
  /** rtc-goldfish's set_alarm with the alarm enabled. */
  const setAlarm = (t: bigint): void => {
    wr(ALARM_HIGH, Number(t >> 32n));
    wr(ALARM_LOW, Number(t & 0xffff_ffffn));
    wr(IRQ_ENABLED, 1);
  };
  return { rtc, clock, line, rd, wr, readTime, setTime, setAlarm };
}

describe("Goldfish RTC: time", () => {
  it("reads the host wall clock in nanoseconds", () => {
    const { readTime, clock } = make();
    assert.equal(readTime(), BigInt(HOST_NOW));
    clock.ns += 2.5e9;
    assert.equal(readTime(), BigInt(HOST_NOW) + 2_500_000_000n);
  });

  it("a TIME_LOW read latches TIME_HIGH", () => {
    const high = 0x1797_0000;
    const { rd, clock } = make(high * 2 ** 32 - 4096);
    assert.equal(rd(TIME_LOW), 2 ** 32 - 4096);
    clock.ns += 8192; // the high word ticks over between the two reads
    assert.equal(rd(TIME_HIGH), high - 1, "still the latched word");
    assert.equal(rd(TIME_HIGH), high - 1);
    assert.equal(rd(TIME_LOW), 4096);
    assert.equal(rd(TIME_HIGH), high);
  });

  it("the guest sets the time exactly, and it keeps running from there", () => {
    const { readTime, setTime, clock } = make();
    const y2k = 946_684_800n * NS;
    setTime(y2k);
    assert.equal(readTime(), y2k);
    const before = clock.ns;
    clock.ns += 1.5e9 + 512;
    assert.equal(readTime(), y2k + BigInt(clock.ns) - BigInt(before));
    const future = 4_102_444_800n * NS + 999_999_999n; // 2100-01-01, ahead of the host
    setTime(future);
    assert.equal(readTime(), future);
  });

  it("carries from TIME_LOW into TIME_HIGH as time passes", () => {
    const { readTime, setTime, clock } = make();
    const t = (0x1234_5678n << 32n) | 0xffff_ff00n;
    setTime(t);
    clock.ns += 0x200;
    assert.equal(readTime(), t + 0x200n);
  });

  it("a TIME_LOW write alone keeps the current high word", () => {
    const { wr, readTime } = make();
    const now = readTime();
    wr(TIME_LOW, 7);
    assert.equal(readTime(), (now & ~0xffff_ffffn) | 7n);
  });

  it("rejects other sizes, misaligned offsets and offsets past CLEAR_INTERRUPT", () => {
    const { rtc, rd } = make();
    const out = new Uint32Array(2);
    for (const [offset, size] of [
      [0, 1],
      [0, 2],
      [0, 8],
      [2, 4],
      [0x20, 4],
      [0xffc, 4],
      [-4, 4],
    ] as const) {
      assert.equal(rtc.read(offset, size, out), false);
      assert.equal(rtc.write(offset, size, 0, 0), false);
    }
    assert.equal(rd(CLEAR_ALARM), 0);
    assert.equal(rd(CLEAR_INTERRUPT), 0);
  });
});

describe("Goldfish RTC: alarm", () => {
  it("fires at the alarm time on update() and is cleared by CLEAR_INTERRUPT", () => {
    const { rtc, rd, wr, setAlarm, readTime, clock, line } = make();
    const now = readTime();
    const start = clock.ns;
    setAlarm(now + 5n * NS);
    assert.equal(rd(ALARM_STATUS), 1);
    assert.equal(rd(IRQ_ENABLED), 1);
    assert.equal((BigInt(rd(ALARM_HIGH)) << 32n) | BigInt(rd(ALARM_LOW)), now + 5n * NS);
    assert.equal(rtc.nextDeadline(), start + 5e9);
    clock.ns = start + 4.9e9;
    rtc.update();
    assert.equal(line.level, false);
    assert.equal(rd(ALARM_STATUS), 1);
    clock.ns = start + 5e9;
    rtc.update();
    assert.equal(line.level, true, "due exactly at the alarm time");
    assert.equal(rd(ALARM_STATUS), 0);
    assert.equal(rtc.nextDeadline(), Number.POSITIVE_INFINITY);
    wr(CLEAR_INTERRUPT, 1);
    assert.equal(line.level, false);
    clock.ns += 10e9;
    rtc.update();
    assert.equal(line.level, false, "one-shot");
  });

  it("an alarm in the past fires when ALARM_LOW is written", () => {
    const { rd, wr, readTime, line } = make();
    const now = readTime();
    wr(ALARM_HIGH, Number((now - NS) >> 32n));
    wr(ALARM_LOW, Number((now - NS) & 0xffff_ffffn));
    assert.equal(rd(ALARM_STATUS), 0);
    assert.equal(line.level, false, "latched, but IRQ_ENABLED is clear");
    wr(IRQ_ENABLED, 1);
    assert.equal(line.level, true);
    wr(IRQ_ENABLED, 0);
    assert.equal(line.level, false);
    wr(IRQ_ENABLED, 1);
    assert.equal(line.level, true, "still latched");
    wr(CLEAR_INTERRUPT, 1);
    assert.equal(line.level, false);
  });

  it("CLEAR_ALARM disarms it; ALARM_HIGH alone does not arm", () => {
    const { rtc, rd, wr, setAlarm, readTime, clock, line } = make();
    setAlarm(readTime() + NS);
    wr(CLEAR_ALARM, 1);
    assert.equal(rd(ALARM_STATUS), 0);
    clock.ns += 2e9;
    rtc.update();
    assert.equal(line.level, false);
    wr(ALARM_HIGH, 0);
    assert.equal(rd(ALARM_STATUS), 0);
  });

  it("alarms follow the guest's time, not the host's", () => {
    const { rtc, setTime, setAlarm, clock, line } = make();
    const start = clock.ns;
    setTime(946_684_800n * NS);
    setAlarm(946_684_800n * NS + 3n * NS);
    assert.equal(rtc.nextDeadline(), start + 3e9);
    clock.ns = start + 2e9;
    rtc.update();
    assert.equal(line.level, false);
    clock.ns = start + 3e9;
    rtc.update();
    assert.equal(line.level, true);
  });
});

describe("Goldfish RTC: snapshot and reset", () => {
  it("round-trips through JSON, keeping the guest's time offset and armed alarm", () => {
    const a = make();
    a.setTime(946_684_800n * NS);
    a.setAlarm(946_684_800n * NS + 10n * NS);
    a.rd(TIME_LOW);
    const state = JSON.parse(JSON.stringify(a.rtc.snapshot()));
    const b = make();
    b.rtc.restore(state);
    assert.deepEqual(b.rtc.snapshot(), a.rtc.snapshot());
    assert.equal(b.readTime(), 946_684_800n * NS);
    assert.equal(b.rd(ALARM_STATUS), 1);
    b.clock.ns += 10e9;
    b.rtc.update();
    assert.equal(b.line.level, true);
  });

  it("rejects malformed snapshots without changing state", () => {
    const { rtc } = make();
    const before = rtc.snapshot();
    const bad: unknown[] = [
      undefined,
      [],
      { ...before, version: 2 },
      { ...before, offsetLow: 2 ** 32 },
      { ...before, alarmHigh: -1 },
      { ...before, latchedHigh: 0.5 },
      { ...before, irqEnabled: 1 },
      { ...before, alarmRunning: undefined },
    ];
    for (const state of bad) {
      assert.throws(() => rtc.restore(state));
      assert.deepEqual(rtc.snapshot(), before);
    }
  });

  it("reset disarms and clears the interrupt but keeps the time", () => {
    const { rtc, rd, setTime, setAlarm, readTime, line } = make();
    setTime(946_684_800n * NS);
    setAlarm(0n);
    assert.equal(line.level, true);
    rtc.reset();
    assert.equal(line.level, false);
    assert.equal(rd(IRQ_ENABLED), 0);
    assert.equal(rd(ALARM_STATUS), 0);
    assert.equal(readTime(), 946_684_800n * NS);
  });
});
