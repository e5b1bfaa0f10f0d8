/**
 * Guest time comes from the VmHost's clock: a riscv64 VM's CLINT mtime (and the board's timebase, which
 * the `time` CSR and the timers read) and its goldfish RTC read exactly what a fake clock says.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { type HostClock, platformClock } from "../../src/devices/host-clock.js";
import { createVm } from "../../src/vm/create.js";
import type { RiscvVm } from "../../src/vm/riscv.js";
import { bareMetalSpec } from "../support/bare-metal.js";
import { after, before, describe, test } from "../support/test.js";

const MTIME = 0xbff8;
const RTC_TIME_LOW = 0x00;
const RTC_TIME_HIGH = 0x04;
/** Where the fake monotonic clock stands when the VM is built: mtime counts from there. */
const ORIGIN_MS = 1234.5;

class FakeClock implements HostClock {
  ms = ORIGIN_MS;
  nanos = 0;
  monotonicMs(): number {
    return this.ms;
  }
  wallNanos(): number {
    return this.nanos;
  }
}

describe("the VM's clock", () => {
  const clock = new FakeClock();
  let dir: string;
  let vm: RiscvVm;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "vireo-clock-"));
    const kernel = join(dir, "wfi.bin");
    // A raw program (wfi; j .): the VM is built, never started; the test reads its devices.
    writeFileSync(kernel, new Uint8Array([0x73, 0x00, 0x50, 0x10, 0x6f, 0x00, 0x00, 0x00]));
    const host = nodeVmHost({ console: { write() {} }, clock });
    vm = (await createVm(bareMetalSpec("clock", kernel, 2 ** 20), host)) as RiscvVm;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("mtime is the clock's milliseconds since the board was built, at 10 MHz", () => {
    const { board } = vm;
    const out = new Uint32Array(2);
    assert.ok(board.clint.read(MTIME, 8, out));
    assert.deepEqual([...out], [0, 0]);
    fc.assert(
      // Quarter milliseconds: exact in a double, and a whole number of 10 MHz ticks (below 2^53).
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (quarters) => {
        clock.ms = ORIGIN_MS + quarters / 4;
        const ticks = quarters * 2500;
        assert.ok(board.clint.read(MTIME, 8, out));
        assert.equal((out[1] as number) * 2 ** 32 + (out[0] as number), ticks);
        assert.equal(board.clock.ticks(), ticks);
      }),
    );
  });

  test("the RTC reads the clock's wall time in nanoseconds", () => {
    const { rtc } = vm.board;
    const out = new Uint32Array(2);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (nanos) => {
        clock.nanos = nanos;
        assert.ok(rtc.read(RTC_TIME_LOW, 4, out));
        const low = out[0] as number;
        assert.ok(rtc.read(RTC_TIME_HIGH, 4, out));
        assert.equal((out[0] as number) * 2 ** 32 + low, nanos);
      }),
    );
  });

  test("a Node host without one given runs on the platform's clock", () => {
    assert.equal(nodeVmHost({ console: { write() {} } }).clock, platformClock);
  });
});
