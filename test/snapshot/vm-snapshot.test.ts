/**
 * Snapshot and restore of riscv64 VMs in this process, on a bare-metal guest that prints a counting
 * line for ever (test/guest-daemon/counter.S): on both CPU engines the restored guest goes on from the
 * next number, with no line lost or doubled; damaged snapshots are refused with a clear error and start
 * nothing; random damage to the state records never throws anything but that error.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { decodeState, encodeState } from "../../src/snapshot/state-file.js";
import { MEMORY_FILE, STATE_FILE } from "../../src/snapshot/store.js";
import { UserError } from "../../src/util/errors.js";
import { createVm } from "../../src/vm/create.js";
import { restoreVm } from "../../src/vm/restore.js";
import type { Vm } from "../../src/vm/vm.js";
import { bareMetalSpec, buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";
import { Lines, ticks } from "../support/console-lines.js";
import { after, before, describe, test } from "../support/test.js";

const MiB = 2 ** 20;

const missing = crossCompilerMissing();

describe("snapshot and restore of a riscv64 VM", { skip: missing }, () => {
  let dir: string;
  let elf: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vireo-snap-"));
    elf = buildBareMetal("test/guest-daemon/counter.S", join(dir, "counter.elf"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function running(engine: "interpreter" | "translate", sink: Lines): Promise<Vm> {
    const vm = await createVm(
      bareMetalSpec(`snap-${engine}`, elf, 4 * MiB, { engine }),
      nodeVmHost({ console: sink }),
    );
    vm.start();
    return vm;
  }

  for (const engine of ["interpreter", "translate"] as const) {
    test(`--engine ${engine}: the restored guest counts on from the next number`, {
      timeout: 60_000,
    }, async () => {
      const first = new Lines();
      const vm = await running(engine, first);
      await first.until(50);
      const snap = join(dir, `snap-${engine}`);
      // A directory each way, and one file (a location ending in .vsnap).
      const saves = [
        ["none", `${snap}-none`],
        ["zlib", `${snap}-zlib`],
        ["zlib", `${snap}-one.vsnap`],
      ] as const;
      for (const [compression, at] of saves) {
        const result = await (vm.saveSnapshot as NonNullable<Vm["saveSnapshot"]>)(at, {
          resume: false,
          compression,
        });
        assert.equal(vm.state.name, "paused");
        assert.ok(result.pages > 0 && result.pages < (4 * MiB) / 4096, `${result.pages} pages`);
      }
      const before = first.text;
      vm.kill();
      await vm.wait();
      for (const [, at] of saves) {
        const second = new Lines();
        const restored = await restoreVm(at, nodeVmHost({ console: second }), {
          name: "restored",
        });
        assert.equal(restored.spec.name, "restored");
        assert.equal(restored.spec.engine, engine);
        restored.start();
        await second.until(30);
        restored.kill();
        await restored.wait();
        // The first VM's output and the restored one's join into one count, each line once.
        const all = ticks(before + second.text);
        assert.ok(all.length >= 80);
        assert.deepEqual(
          all,
          all.map((_, i) => i),
          `one count from 0 (${at})`,
        );
      }
      if (engine === "translate") {
        const restored = await restoreVm(`${snap}-none`, nodeVmHost({ console: new Lines() }));
        restored.start();
        await new Promise((r) => setTimeout(r, 200));
        const stats = restored.stats();
        restored.kill();
        await restored.wait();
        assert.ok((stats.translation?.blocks ?? 0) > 0, "the translator compiles after a restore");
      }
    });
  }

  test("damaged snapshots are refused with a clear error", { timeout: 60_000 }, async () => {
    const sink = new Lines();
    const vm = await running("interpreter", sink);
    await sink.until(5);
    const good = join(dir, "good");
    await (vm.saveSnapshot as NonNullable<Vm["saveSnapshot"]>)(good, { resume: false });
    vm.kill();
    await vm.wait();
    const state = new Uint8Array(readFileSync(join(good, STATE_FILE)));
    const memory = new Uint8Array(readFileSync(join(good, MEMORY_FILE)));
    const variant = (name: string, s: Uint8Array, m: Uint8Array): string => {
      const d = join(dir, name);
      rmSync(d, { recursive: true, force: true });
      // A copy of the good snapshot with one file replaced.
      for (const [file, bytes] of [
        [STATE_FILE, s],
        [MEMORY_FILE, m],
      ] as const) {
        writeFileSync(join(mkdirp(d), file), bytes);
      }
      return d;
    };
    const flip = (b: Uint8Array, at: number): Uint8Array => {
      const c = b.slice();
      c[at] = (c[at] as number) ^ 0x01;
      return c;
    };
    const wrongArch = state.slice();
    wrongArch.set(new TextEncoder().encode("aarch64\0"), 16);
    // A riscv64 VM's spec under an x86_64 header: the header and the spec must agree.
    const otherArch = state.slice();
    otherArch.set(new TextEncoder().encode("x86_64\0\0"), 16);
    const newer = state.slice();
    new DataView(newer.buffer, newer.byteOffset).setUint16(8, 99, true);
    const cases: [string, Uint8Array, Uint8Array, RegExp][] = [
      ["truncated-state", state.subarray(0, state.length - 100), memory, /truncated/],
      ["truncated-memory", state, memory.subarray(0, memory.length - 100), /truncated memory image/],
      ["flipped-state", flip(state, 200), memory, /CRC-64 mismatch/],
      ["flipped-memory", state, flip(memory, memory.length - 3000), /CRC-64 mismatch/],
      ["wrong-arch", wrongArch, memory, /aarch64 VM; only riscv64 and x86_64/],
      ["spec-arch", otherArch, memory, /VM spec is for riscv64, the header says x86_64/],
      ["newer-major", newer, memory, /newer Vireo/],
    ];
    for (const [name, s, m, message] of cases) {
      const host = nodeVmHost({ console: new Lines() });
      await assert.rejects(restoreVm(variant(name, s, m), host), (e) => {
        assert.ok(e instanceof UserError, `${name}: ${String(e)}`);
        assert.match(e.message, message, name);
        return true;
      });
    }
    await assert.rejects(
      restoreVm(join(dir, "nowhere"), nodeVmHost({ console: new Lines() })),
      /cannot read/,
    );
    // One file: magic, the state's length, the state, the memory file.
    const single = (name: string, bytes: Uint8Array): string => {
      const path = join(dir, `${name}.vsnap`);
      writeFileSync(path, bytes);
      return path;
    };
    const prefix = new Uint8Array(12);
    prefix.set(new TextEncoder().encode("VIREOSF1"));
    new DataView(prefix.buffer).setUint32(8, state.length, true);
    // A Uint8Array: flip() copies with slice(), which on a Buffer would share the bytes.
    const whole = new Uint8Array(Buffer.concat([prefix, state, memory]));
    const singleCases: [string, Uint8Array, RegExp][] = [
      [
        "single-wrong-magic",
        Buffer.concat([Buffer.from("NOTVIREO"), whole.subarray(8)]),
        /no VIREOSF1 magic/,
      ],
      ["single-cut-state", whole.subarray(0, 12 + state.length - 1), /truncated \(the state file is cut\)/],
      ["single-cut-memory", whole.subarray(0, whole.length - 100), /truncated memory image/],
      ["single-flipped", flip(whole, 12 + 200), /CRC-64 mismatch/],
    ];
    for (const [name, bytes, message] of singleCases) {
      await assert.rejects(
        restoreVm(single(name, bytes), nodeVmHost({ console: new Lines() })),
        message,
        name,
      );
    }
    // The good bytes in one file restore.
    const ok = await restoreVm(single("single-good", whole), nodeVmHost({ console: new Lines() }));
    ok.kill();
    await ok.wait();
  });

  test("random damage to every kind of state record gives only the clear error", {
    timeout: 180_000,
  }, async () => {
    // Every device a riscv64 VM can have, and two harts: each kind of section is in the snapshot.
    const disk = join(dir, "fuzz-disk.img");
    writeFileSync(disk, new Uint8Array(MiB));
    const spec = bareMetalSpec("fuzz-all", elf, 4 * MiB, {
      cpus: 2,
      drives: [{ id: "d0", path: disk, readOnly: false }],
      nics: [{ backend: "switch:fuzz" }],
      rng: true,
      console: true,
      balloon: {},
      vsock: { cid: 3 },
      keyboard: true,
    });
    const sink = new Lines();
    const vm = await createVm(spec, nodeVmHost({ console: sink }));
    vm.start();
    await sink.until(5);
    const good = join(dir, "fuzz-base");
    await (vm.saveSnapshot as NonNullable<Vm["saveSnapshot"]>)(good, { resume: false });
    vm.kill();
    await vm.wait();
    const decoded = decodeState(readFileSync(join(good, STATE_FILE)), "base");
    const sections = decoded.body.sections;
    assert.deepEqual(
      [...new Set(sections.map((x) => x.kind))].sort(),
      ["clint", "goldfish-rtc", "hart", "plic", "uart16550", "virt-board", "virtio-mmio"],
      "every kind of section",
    );
    // blk, net, rng, console, balloon, vsock, input (the keyboard), and both harts.
    assert.equal(sections.filter((x) => x.kind === "virtio-mmio").length, 7);
    assert.equal(sections.filter((x) => x.kind === "hart").length, 2);
    const memory = readFileSync(join(good, MEMORY_FILE));
    const target = join(dir, "fuzz");
    mkdirp(target);
    writeFileSync(join(target, MEMORY_FILE), memory);
    const odd = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.string(),
      fc.array(fc.integer(), { maxLength: 4 }),
      fc.constant({}),
      fc.constant(2 ** 53),
      fc.constant(-1),
    );
    // Each section in turn, so none is left to chance; the damage goes as deep as the record does
    // (a virtio transport's queues, its device's own record).
    for (let which = 0; which < sections.length; which++) {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(1000), { minLength: 1, maxLength: 5 }), odd, async (path, value) => {
          const body = structuredClone(decoded.body);
          let holder = body.sections[which] as { state: unknown } as unknown as Record<string, unknown>;
          let key = "state";
          for (const pick of path) {
            const inner = holder[key];
            if (typeof inner !== "object" || inner === null) break;
            const keys = Object.keys(inner);
            if (keys.length === 0) break;
            holder = inner as Record<string, unknown>;
            key = keys[pick % keys.length] as string;
          }
          holder[key] = value;
          writeFileSync(join(target, STATE_FILE), encodeState("riscv64", body));
          try {
            const restored = await restoreVm(target, nodeVmHost({ console: new Lines() }));
            restored.kill();
            await restored.wait();
          } catch (e) {
            assert.ok(
              e instanceof UserError,
              `${sections[which]?.name} ${JSON.stringify(path)}: not a UserError: ${(e as Error)?.stack ?? String(e)}`,
            );
          }
        }),
        { numRuns: 25 },
      );
    }
  });
});

function mkdirp(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}
