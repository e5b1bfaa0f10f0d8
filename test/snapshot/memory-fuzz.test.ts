/**
 * Damaged memory files: the decoder on its own (truncated, bit-flipped, spliced, wrong-length, a bitmap
 * naming pages past the end of RAM, any header field changed) and the whole restore path through the
 * Node store (a directory with a plain or deflated memory file, and the single-file container). Every
 * damage ends in a UserError or, where the damage changed nothing that matters, the saved RAM exactly;
 * never another exception, a hang, or a write outside the RAM the decoder was given.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import fc from "fast-check";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { Crc64 } from "../../src/snapshot/crc64.js";
import {
  decodeMemoryHeader,
  encodeMemoryHeader,
  MEMORY_HEADER_BYTES,
  MemoryDecoder,
  memoryPayload,
  nonZeroPages,
  PAGE_BYTES,
} from "../../src/snapshot/memory-file.js";
import { MEMORY_FILE, STATE_FILE } from "../../src/snapshot/store.js";
import { UserError } from "../../src/util/errors.js";
import { createVm } from "../../src/vm/create.js";
import { restoreVm } from "../../src/vm/restore.js";
import type { Vm } from "../../src/vm/vm.js";
import { bareMetalSpec, buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";
import { Lines } from "../support/console-lines.js";
import { after, before, describe, test } from "../support/test.js";

const MiB = 2 ** 20;

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

/** One way to damage a byte string; positions are taken modulo its length. */
type Damage =
  | { kind: "truncate"; at: number }
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; n: number }
  | { kind: "append"; bytes: Uint8Array };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({
    kind: fc.constant("append" as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
);

function apply(bytes: Uint8Array, d: Damage, from = 0): Uint8Array {
  const span = bytes.length - from;
  if (span <= 0) return bytes;
  const at = d.kind === "append" ? bytes.length : from + (d.at % span);
  switch (d.kind) {
    case "truncate":
      return bytes.slice(0, at);
    case "flip": {
      const out = bytes.slice();
      out[at] = (out[at] as number) ^ (1 << d.bit);
      return out;
    }
    case "set": {
      const out = bytes.slice();
      out[at] = d.value;
      return out;
    }
    case "insert":
    case "append": {
      const out = new Uint8Array(bytes.length + d.bytes.length);
      out.set(bytes.subarray(0, at));
      out.set(d.bytes, at);
      out.set(bytes.subarray(at), at + d.bytes.length);
      return out;
    }
    case "delete": {
      const out = new Uint8Array(bytes.length - Math.min(d.n, bytes.length - at));
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + d.n), at);
      return out;
    }
  }
}

/** Fails with the stack of anything that is not a UserError. */
function userErrorOnly(e: unknown, what: string): void {
  assert.ok(e instanceof UserError, `${what}: not a UserError: ${(e as Error)?.stack ?? String(e)}`);
}

describe("damaged snapshot memory files", () => {
  test("the decoder gives the saved RAM or a UserError, and writes only inside RAM", {
    timeout: 60_000,
  }, () => {
    // 45 pages: the bitmap's last byte has bits past the end of RAM.
    const pages = 45;
    const ram = new Uint8Array(pages * PAGE_BYTES);
    for (let p = 0; p < pages; p += 3)
      ram.fill((p * 7) & 0xff || 1, p * PAGE_BYTES, p * PAGE_BYTES + 100 + p);
    const header = encodeMemoryHeader({
      compression: "none",
      pageBytes: PAGE_BYTES,
      pages,
      base: 0x8000_0000,
    });
    const file = concat([header, ...memoryPayload(ram, nonZeroPages(ram))]);
    const CANARY = 0xa5;
    fc.assert(
      fc.property(fc.array(damage, { minLength: 1, maxLength: 3 }), fc.nat(3000), (damages, chunkPick) => {
        let bytes = file;
        for (const d of damages) bytes = apply(bytes, d);
        // RAM with a page of canary on each side: the decoder gets only the middle.
        const guarded = new Uint8Array((pages + 2) * PAGE_BYTES).fill(CANARY);
        const target = guarded.subarray(PAGE_BYTES, (pages + 1) * PAGE_BYTES);
        target.fill(0);
        const chunk = chunkPick + 1;
        try {
          const h = decodeMemoryHeader(bytes.subarray(0, MEMORY_HEADER_BYTES), "m");
          const decoder = new MemoryDecoder(target, h, "m");
          for (let at = MEMORY_HEADER_BYTES; at < bytes.length; at += chunk) {
            decoder.push(bytes.subarray(at, at + chunk));
          }
          decoder.finish();
          assert.deepEqual(target, ram, "a damaged image that loads must be the saved RAM");
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          userErrorOnly(e, JSON.stringify(damages));
        }
        for (const i of [0, PAGE_BYTES - 1, (pages + 1) * PAGE_BYTES, guarded.length - 1]) {
          assert.equal(guarded[i], CANARY, "nothing written outside the RAM");
        }
        assert.ok(guarded.subarray(0, PAGE_BYTES).every((b) => b === CANARY));
        assert.ok(guarded.subarray((pages + 1) * PAGE_BYTES).every((b) => b === CANARY));
      }),
      { numRuns: 400 },
    );
  });

  test("a bitmap naming pages past the end of RAM is refused even with a matching CRC", {
    timeout: 10_000,
  }, () => {
    const pages = 45;
    const ram = new Uint8Array(pages * PAGE_BYTES);
    const bitmap = nonZeroPages(ram);
    bitmap[bitmap.length - 1] = 1 << 6; // page 46 of 45
    const payload = concat(memoryPayload(ram, bitmap));
    const [lo, hi] = new Crc64().update(bitmap).digest();
    const view = new DataView(payload.buffer, payload.length - 8);
    view.setUint32(0, lo, true);
    view.setUint32(4, hi, true);
    const decoder = new MemoryDecoder(
      new Uint8Array(ram.length),
      { compression: "none", pageBytes: PAGE_BYTES, pages, base: 0 },
      "m",
    );
    assert.throws(() => decoder.push(payload), /m: the page bitmap names pages past the end of RAM/);
  });
});

const missing = crossCompilerMissing();

describe("restoring from damaged memory files", { skip: missing }, () => {
  let dir: string;
  const saved: Record<"none" | "zlib" | "single", string> = { none: "", zlib: "", single: "" };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "vireo-memfuzz-"));
    const elf = buildBareMetal("test/guest-daemon/counter.S", join(dir, "counter.elf"));
    const sink = new Lines();
    const vm = await createVm(bareMetalSpec("memfuzz", elf, 4 * MiB), nodeVmHost({ console: sink }));
    vm.start();
    await sink.until(3);
    const save = (at: string, options: Parameters<NonNullable<Vm["saveSnapshot"]>>[1]) =>
      (vm.saveSnapshot as NonNullable<Vm["saveSnapshot"]>).call(vm, at, options);
    saved.none = join(dir, "none");
    saved.zlib = join(dir, "zlib");
    saved.single = join(dir, "one.vsnap");
    await save(saved.none, { resume: false, compression: "none" });
    await save(saved.zlib, { resume: false, compression: "zlib" });
    await save(saved.single, { resume: false, compression: "zlib" });
    vm.kill();
    await vm.wait();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Restores `location`; a UserError or a VM (killed again), within 30 s whatever the bytes. */
  async function tryRestore(location: string, what: string): Promise<"ok" | UserError> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: restore did not finish in 30 s`)), 30_000);
    });
    try {
      const vm = await Promise.race([restoreVm(location, nodeVmHost({ console: new Lines() })), hang]);
      vm.kill();
      await vm.wait();
      return "ok";
    } catch (e) {
      userErrorOnly(e, what);
      return e as UserError;
    } finally {
      clearTimeout(timer);
    }
  }

  test("random damage to the memory file or the single file gives only a clear error", {
    timeout: 240_000,
  }, async () => {
    const files = {
      none: new Uint8Array(readFileSync(join(saved.none, MEMORY_FILE))),
      zlib: new Uint8Array(readFileSync(join(saved.zlib, MEMORY_FILE))),
      single: new Uint8Array(readFileSync(saved.single)),
    };
    const states = {
      none: readFileSync(join(saved.none, STATE_FILE)),
      zlib: readFileSync(join(saved.zlib, STATE_FILE)),
    };
    const target = join(dir, "damaged");
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("none", "zlib", "single") as fc.Arbitrary<"none" | "zlib" | "single">,
        fc.array(damage, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (which, damages, inPayload) => {
          let bytes: Uint8Array = files[which];
          // Half the time the damage stays out of the headers, where the payload's own checks have to catch it.
          const memoryAt = which === "single" ? 12 + Buffer.from(bytes).readUInt32LE(8) : 0;
          const from = inPayload ? memoryAt + MEMORY_HEADER_BYTES : 0;
          for (const d of damages) bytes = apply(bytes, d, from);
          const what = `${which} ${JSON.stringify(damages)}`;
          let location: string;
          if (which === "single") {
            location = join(dir, `damaged-${run++}.vsnap`);
            writeFileSync(location, bytes);
          } else {
            location = `${target}-${run++}`;
            mkdirSync(location);
            writeFileSync(join(location, STATE_FILE), states[which]);
            writeFileSync(join(location, MEMORY_FILE), bytes);
          }
          await tryRestore(location, what);
          rmSync(location, { recursive: true, force: true });
        },
      ),
      { numRuns: 120 },
    );
  });

  test("hostile sizes: a state length past the file, a deflate bomb, a header for more RAM", {
    timeout: 60_000,
  }, async () => {
    const single = new Uint8Array(readFileSync(saved.single));
    const huge = single.slice();
    new DataView(huge.buffer).setUint32(8, 0xffff_ffff, true);
    writeFileSync(join(dir, "huge.vsnap"), huge);
    const e1 = await tryRestore(join(dir, "huge.vsnap"), "huge state length");
    assert.ok(e1 instanceof UserError && /truncated \(the state file is cut\)/.test(e1.message));

    // 64 MiB of zeros deflate to some 64 KiB; the 4 MiB VM's decoder must stop at its own end.
    const bomb = join(dir, "bomb");
    mkdirSync(bomb);
    writeFileSync(join(bomb, STATE_FILE), readFileSync(join(saved.zlib, STATE_FILE)));
    const header = readFileSync(join(saved.zlib, MEMORY_FILE)).subarray(0, MEMORY_HEADER_BYTES);
    writeFileSync(join(bomb, MEMORY_FILE), Buffer.concat([header, deflateSync(new Uint8Array(64 * MiB))]));
    const e2 = await tryRestore(bomb, "deflate bomb");
    assert.ok(
      e2 instanceof UserError && /data after the end of the memory image/.test(e2.message),
      String(e2),
    );

    // A header for 3 GiB of RAM (the most a riscv64 VM may have) against the 4 MiB VM: refused up front.
    const bigger = join(dir, "bigger");
    mkdirSync(bigger);
    writeFileSync(join(bigger, STATE_FILE), readFileSync(join(saved.none, STATE_FILE)));
    const memory = new Uint8Array(readFileSync(join(saved.none, MEMORY_FILE)));
    new DataView(memory.buffer).setUint32(20, (3 * 1024 * MiB) / PAGE_BYTES, true);
    writeFileSync(join(bigger, MEMORY_FILE), memory);
    const e3 = await tryRestore(bigger, "bigger header");
    assert.ok(e3 instanceof UserError && /the VM has 4194304/.test(e3.message), String(e3));

    // Compressed by the header, not by the bytes: zlib's complaint, named as such.
    const plainAsZlib = join(dir, "plain-as-zlib");
    mkdirSync(plainAsZlib);
    writeFileSync(join(plainAsZlib, STATE_FILE), readFileSync(join(saved.none, STATE_FILE)));
    const relabelled = new Uint8Array(readFileSync(join(saved.none, MEMORY_FILE)));
    relabelled[12] = 1;
    writeFileSync(join(plainAsZlib, MEMORY_FILE), relabelled);
    const e4 = await tryRestore(plainAsZlib, "plain bytes labelled zlib");
    assert.ok(e4 instanceof UserError && /compressed memory image is damaged/.test(e4.message), String(e4));
  });
});
