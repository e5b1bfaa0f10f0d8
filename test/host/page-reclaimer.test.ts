import assert from "node:assert/strict";
import { CountingReclaimer } from "../../src/devices/virtio/balloon/reclaimer.js";
import { hostPageReclaimer, MadviseReclaimer, residentBytes } from "../../src/host/page-reclaimer.js";
import { describe, it } from "../support/test.js";

const MiB = 2 ** 20;
/** Guest RAM starts this far into the wasm memory, as RAM_OFFSET puts it. */
const OFFSET = 4 * MiB;

/** A WebAssembly.Memory with `ram` bytes of "guest RAM" at OFFSET, as the interpreter lays it out. */
function wasmRam(ram: number): { memory: WebAssembly.Memory; bytes: Uint8Array } {
  const pages = (OFFSET + ram) / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  return { memory, bytes: new Uint8Array(memory.buffer, OFFSET, ram) };
}

/** (module (import "m" "mem" (memory 1)) (func (export "ld") (param i32) (result i32) local.get 0 i32.load)) */
const LOADER = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x02, 0x0a,
  0x01, 0x01, 0x6d, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01, 0x03, 0x02, 0x01, 0x00, 0x07, 0x06, 0x01, 0x02,
  0x6c, 0x64, 0x00, 0x00, 0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b,
]);

function allZero(bytes: Uint8Array): boolean {
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  return true;
}

describe("madvise page reclaimer", () => {
  const probe = MadviseReclaimer.open(new Uint8Array(4096));
  const skip = probe === null ? "madvise through koffi is not available on this host" : false;

  it("releases a touched 64 MiB region of a WebAssembly.Memory: RSS drops and it reads zeros", {
    skip,
  }, (t) => {
    const { memory, bytes } = wasmRam(64 * MiB);
    bytes.fill(0xa5);
    const before = residentBytes();
    const reclaimer = MadviseReclaimer.open(bytes);
    assert.ok(reclaimer && before !== null);
    assert.equal(reclaimer.reclaim(0, 64 * MiB), 64 * MiB);
    const after = residentBytes() as number;
    t.diagnostic(`RSS ${(before / MiB).toFixed(1)} MiB -> ${(after / MiB).toFixed(1)} MiB`);
    assert.ok(before - after >= 56 * MiB, `RSS dropped by ${((before - after) / MiB).toFixed(1)} MiB`);
    assert.ok(allZero(bytes), "the released range reads as zeros");
    // Wasm code sees the same zeros (the soft-TLB's linear-memory addresses stay valid).
    const module = new WebAssembly.Module(LOADER);
    const { ld } = new WebAssembly.Instance(module, { m: { mem: memory } }).exports as {
      ld: (a: number) => number;
    };
    assert.equal(ld(OFFSET + 12345 * 4), 0);
    // And the memory is usable again: writes fault fresh pages in.
    bytes[100] = 7;
    assert.equal(ld(OFFSET + 100), 7);
    assert.equal(reclaimer.calls, 1);
    assert.equal(reclaimer.releasedBytes, 64 * MiB);
  });

  it("touches only whole host pages inside the range; neighbours keep their contents", { skip }, () => {
    const { bytes } = wasmRam(1 * MiB);
    bytes.fill(0x3c);
    const reclaimer = MadviseReclaimer.open(bytes) as MadviseReclaimer;
    const page = reclaimer.hostPageSize;
    assert.equal(reclaimer.reclaim(2 * page, page), page);
    assert.ok(allZero(bytes.subarray(2 * page, 3 * page)));
    assert.ok(bytes.subarray(0, 2 * page).every((b) => b === 0x3c));
    assert.ok(bytes.subarray(3 * page, 4 * page).every((b) => b === 0x3c));
    // A range that covers no whole host page releases nothing.
    assert.equal(reclaimer.reclaim(5 * page + 8, page - 16), 0);
    assert.ok(bytes.subarray(5 * page, 6 * page).every((b) => b === 0x3c));
    // A view that does not start on a host page: only the whole pages inside are released.
    const shifted = MadviseReclaimer.open(bytes.subarray(8)) as MadviseReclaimer;
    assert.equal(shifted.reclaim(0, 3 * page), 2 * page);
    assert.ok(bytes.subarray(0, page).every((b) => b === 0x3c));
    assert.ok(allZero(bytes.subarray(page, 3 * page)));
    assert.ok(bytes.subarray(3 * page, 3 * page + 8).every((b) => b === 0x3c));
    for (const [o, l] of [
      [-4096, 4096],
      [0, 2 * MiB],
      [MiB - 4096, 8192],
      [0.5, 4096],
    ] as const) {
      assert.throws(() => reclaimer.reclaim(o, l), RangeError);
    }
  });

  it("hostPageReclaimer uses madvise here, and the fallback only counts", { skip }, () => {
    assert.equal(hostPageReclaimer(new Uint8Array(8192)).kind, "madvise");
    const counting = new CountingReclaimer();
    assert.equal(counting.reclaim(4096, 8192), 0);
    assert.equal(counting.pages, 2);
    assert.equal(counting.calls, 1);
  });
});
