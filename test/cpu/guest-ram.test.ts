import assert from "node:assert/strict";
import { GuestRam } from "../../src/cpu/riscv/memory-map.js";
import { RAM_OFFSET } from "../../src/cpu/riscv/state.js";
import { test } from "../support/test.js";

const PAGE = 65536;
const BASE = 0x8000_0000;

/** Page-table entries beyond the first 2 GiB of RAM: offsets there do not fit a 32-bit shift. */
test("PTEs in the last page of a 3 GiB RAM are read and written where they are", { timeout: 30_000 }, () => {
  const size = 3 * 2 ** 30;
  const pages = Math.ceil((RAM_OFFSET + size) / PAGE);
  // Only the pages touched here are ever backed by host memory.
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const ram = new GuestRam(memory, BASE, size);
  assert.equal(ram.bytes.length, size);
  const last = BASE + size - 8;
  const view = new DataView(memory.buffer);
  view.setUint32(RAM_OFFSET + size - 8, 0x1234_5678, true);
  view.setUint32(RAM_OFFSET + size - 4, 0x9abc_def0, true);
  const out = new Int32Array(2);
  assert.equal(ram.readPte(last, out), true);
  assert.deepEqual([(out[0] as number) >>> 0, (out[1] as number) >>> 0], [0x1234_5678, 0x9abc_def0]);
  assert.equal(ram.writePteLow(last, 0x0bad_cafe), true);
  assert.equal(view.getUint32(RAM_OFFSET + size - 8, true), 0x0bad_cafe);
  // Just past 2 GiB, where `offset >> 2` turned negative.
  const past2G = BASE + 2 ** 31 + 8;
  assert.equal(ram.writePteLow(past2G, 77), true);
  assert.equal(view.getInt32(RAM_OFFSET + 2 ** 31 + 8, true), 77);
  assert.equal(ram.readPte(BASE + size, out), false);
});
