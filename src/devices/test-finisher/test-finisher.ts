import type { MmioDevice } from "../device.js";

const PASS = 0x5555;
const FAIL = 0x3333;
const RESET = 0x7777;
export const TEST_FINISHER_SIZE = 0x1000;

/** What the guest asked for through the finisher. */
export type FinisherRequest = { kind: "exit"; code: number } | { kind: "reset" };

/**
 * SiFive's test finisher ("sifive,test0"): one write ends the machine, with 0x5555 (pass),
 * 0x3333 | code << 16 (fail with code) or 0x7777 (reset). Linux uses it for poweroff/reboot via syscon.
 */
export class TestFinisher implements MmioDevice {
  readonly name = "test-finisher";

  constructor(private readonly onRequest: (request: FinisherRequest) => void) {}

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (offset !== 0 || size !== 4) return false;
    out[0] = 0;
    return true;
  }

  write(offset: number, size: number, lo: number): boolean {
    if (offset !== 0 || size !== 4) return false;
    const kind = lo & 0xffff;
    if (kind === PASS) this.onRequest({ kind: "exit", code: 0 });
    else if (kind === FAIL) this.onRequest({ kind: "exit", code: lo >>> 16 || 1 });
    else if (kind === RESET) this.onRequest({ kind: "reset" });
    return true;
  }
}
