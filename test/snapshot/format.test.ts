/** The snapshot file formats on their own: CRC-64, state file checks, the memory file both ways. */
import assert from "node:assert/strict";
import { deflateSync, inflateSync } from "node:zlib";
import { Crc64 } from "../../src/snapshot/crc64.js";
import {
  decodeMemoryHeader,
  encodeMemoryHeader,
  MemoryDecoder,
  memoryPayload,
  nonZeroPages,
  PAGE_BYTES,
} from "../../src/snapshot/memory-file.js";
import { decodeState, encodeState, type SnapshotBody } from "../../src/snapshot/state-file.js";
import { FORMAT_MAJOR } from "../../src/snapshot/version.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test } from "../support/test.js";

const body: SnapshotBody = {
  spec: { name: "t", arch: "riscv64" },
  drives: [{ id: "root", path: "/x.img", sizeBytes: 4096 }],
  sections: [{ name: "uart0", kind: "uart16550", version: 1, state: { version: 1, rx: [1, 2] } }],
  takenAt: "2026-01-01T00:00:00.000Z",
};

function concat(chunks: Iterable<Uint8Array>): Uint8Array {
  const list = [...chunks].map((c) => c.slice());
  const out = new Uint8Array(list.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of list) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

describe("snapshot format", () => {
  test("CRC-64/XZ of the standard check string", { timeout: 10_000 }, () => {
    assert.equal(new Crc64().update(new TextEncoder().encode("123456789")).hex(), "995dc9bbdf1939fa");
    // Fed in pieces, the same.
    const c = new Crc64().update(new TextEncoder().encode("1234")).update(new TextEncoder().encode("56789"));
    assert.equal(c.hex(), "995dc9bbdf1939fa");
  });

  test("the state file round-trips and refuses damage with a clear error", { timeout: 10_000 }, () => {
    const bytes = encodeState("riscv64", body);
    const back = decodeState(bytes, "s");
    assert.equal(back.arch, "riscv64");
    assert.deepEqual(back.body, body);
    assert.throws(() => decodeState(bytes.subarray(0, bytes.length - 1), "s"), /s: truncated/);
    assert.throws(() => decodeState(bytes.subarray(0, 20), "s"), /s: truncated \(no complete header\)/);
    for (const at of [60, bytes.length - 2]) {
      const flipped = bytes.slice();
      flipped[at] = (flipped[at] as number) ^ 0x10;
      assert.throws(() => decodeState(flipped, "s"), /CRC-64 mismatch/);
    }
    const notOurs = bytes.slice();
    notOurs[0] = 0x41;
    assert.throws(() => decodeState(notOurs, "s"), /not a Vireo snapshot state file/);
    const newer = bytes.slice();
    new DataView(newer.buffer).setUint16(8, FORMAT_MAJOR + 1, true);
    assert.throws(
      () => decodeState(newer, "s"),
      (e) => e instanceof UserError && /newer Vireo/.test(e.message),
    );
    // A minor bump only adds optional things: it loads.
    const minor = bytes.slice();
    new DataView(minor.buffer).setUint16(10, 7, true);
    assert.equal(decodeState(minor, "s").version.minor, 7);
  });

  test("the memory file holds only non-zero pages and round-trips, plain and deflated", {
    timeout: 20_000,
  }, () => {
    const pages = 300;
    const ram = new Uint8Array(pages * PAGE_BYTES);
    const used = [0, 1, 7, 8, 9, 150, 299];
    for (const p of used) ram[p * PAGE_BYTES + ((p * 37) % PAGE_BYTES)] = p + 1;
    const bitmap = nonZeroPages(ram);
    const payload = concat(memoryPayload(ram, bitmap));
    assert.equal(payload.length, Math.ceil(pages / 8) + used.length * PAGE_BYTES + 8);
    const header = encodeMemoryHeader({
      compression: "zlib",
      pageBytes: PAGE_BYTES,
      pages,
      base: 0x8000_0000,
    });
    assert.deepEqual(decodeMemoryHeader(header, "m"), {
      compression: "zlib",
      pageBytes: PAGE_BYTES,
      pages,
      base: 0x8000_0000,
    });
    const deflated = deflateSync(payload);
    assert.ok(deflated.length < payload.length / 10, `compressed to ${deflated.length} of ${payload.length}`);
    for (const data of [payload, inflateSync(deflated)]) {
      const target = new Uint8Array(ram.length).fill(0);
      const decoder = new MemoryDecoder(target, decodeMemoryHeader(header, "m"), "m");
      // Odd chunk sizes cross every boundary (bitmap, pages, trailer).
      for (let at = 0; at < data.length; at += 1000) decoder.push(data.subarray(at, at + 1000));
      decoder.finish();
      assert.equal(decoder.loaded, used.length);
      assert.deepEqual(target, ram);
    }
    const flipped = payload.slice();
    flipped[Math.ceil(pages / 8) + 5] = 0xff;
    const decoder = new MemoryDecoder(new Uint8Array(ram.length), decodeMemoryHeader(header, "m"), "m");
    decoder.push(flipped);
    assert.throws(() => decoder.finish(), /m: CRC-64 mismatch/);
    const short = new MemoryDecoder(new Uint8Array(ram.length), decodeMemoryHeader(header, "m"), "m");
    short.push(payload.subarray(0, payload.length - 9));
    assert.throws(() => short.finish(), /m: truncated memory image/);
    assert.throws(
      () => new MemoryDecoder(new Uint8Array(PAGE_BYTES), decodeMemoryHeader(header, "m"), "m"),
      /the VM has 4096/,
    );
  });

  test("a dirty-page pass can send only the pages it names, zero ones included", { timeout: 10_000 }, () => {
    const ram = new Uint8Array(16 * PAGE_BYTES);
    ram[3 * PAGE_BYTES] = 9;
    const only = new Uint8Array(2);
    only[0] = (1 << 3) | (1 << 5); // page 5 is zero and still sent
    const target = new Uint8Array(ram.length).fill(7);
    const decoder = new MemoryDecoder(
      target,
      { compression: "none", pageBytes: PAGE_BYTES, pages: 16, base: 0 },
      "m",
    );
    for (const chunk of memoryPayload(ram, only)) decoder.push(chunk);
    decoder.finish();
    assert.equal(target[3 * PAGE_BYTES], 9);
    assert.equal(target[5 * PAGE_BYTES], 0);
    assert.equal(target[4 * PAGE_BYTES], 7, "pages not in the bitmap are left alone");
  });
});
