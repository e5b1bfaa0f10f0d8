/** VmSpec: the schema accepts what it should, names the field of each problem, and never crashes. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../../src/util/errors.js";
import {
  hasAgent,
  hasKeyboard,
  type VmSpec,
  VmSpecError,
  VmSpecSchema,
  validateVmSpec,
} from "../../src/vm/spec.js";
import { describe, test } from "../support/test.js";

const MiB = 2 ** 20;

function base(overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name: "vm1",
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory: 64 * MiB,
    boot: { kernel: "/boot/Image" },
    drives: [],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "packed",
    ...overrides,
  };
}

/** The problems validateVmSpec reports for `value` (it must throw a VmSpecError). */
function problems(value: unknown): string[] {
  try {
    validateVmSpec(value);
  } catch (e) {
    assert.ok(e instanceof VmSpecError, `not a VmSpecError: ${e}`);
    assert.ok(e instanceof UserError);
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail(`accepted: ${JSON.stringify(value)}`);
}

function assertProblem(value: unknown, path: string, pattern: RegExp): void {
  const found = problems(value);
  assert.ok(
    found.some((p) => p.startsWith(`${path}: `) && pattern.test(p)),
    `expected ${path} ${pattern}, got:\n${found.join("\n")}`,
  );
}

describe("VmSpec", () => {
  test("full specs of both arches pass and come back unchanged", { timeout: 10_000 }, () => {
    const riscv = base({
      drives: [{ path: "a.img", readOnly: true, id: "root" }],
      nics: [{ backend: "switch:lan", mac: "52:54:00:12:34:56" }, { backend: "tap:vtap0" }],
      rng: true,
      console: true,
      balloon: { targetBytes: 16 * MiB },
      vsock: { cid: 3, uds: "/tmp/v.sock" },
      maxInstructions: Number.MAX_SAFE_INTEGER,
      labels: { team: "a" },
      boot: { kernel: "k", initrd: "i", cmdline: "console=ttyS0", firmware: "builtin" },
      cpu: { mode: "shared", weight: 200, cap: 0.5, reservation: 0.25 },
      memoryMode: "reserved",
    });
    assert.equal(validateVmSpec(riscv), riscv);
    const x86 = base({
      arch: "x86_64",
      engine: "kvm",
      cpus: 200,
      memory: 4 * MiB,
      removeCpuFeatures: ["x2apic"],
      vsock: { cid: 9 },
    });
    assert.equal(validateVmSpec(JSON.parse(JSON.stringify(x86))).arch, "x86_64");
  });

  test("each kind of bad field is named by its path", { timeout: 10_000 }, () => {
    assertProblem(
      base({ drives: [{ path: 7 as unknown as string, readOnly: false, id: "d" }] }),
      "/drives/0/path",
      /string/,
    );
    assertProblem(
      base({ drives: [{ path: "a", readOnly: false, id: "no spaces" }] }),
      "/drives/0/id",
      /match/,
    );
    assertProblem(base({ cpus: 0 }), "/cpus", /1/);
    assertProblem(base({ cpus: 9 }), "/cpus", /1 to 8/);
    assertProblem(base({ cpus: 1.5 }), "/cpus", /integer/);
    assertProblem(base({ memory: 4096 }), "/memory", /./);
    assertProblem(base({ memory: 64 * MiB + 1 }), "/memory", /multiple/);
    assertProblem(base({ memory: 4 * 2 ** 30 }), "/memory", /1M to 3G/);
    assertProblem(base({ arch: "x86_64", memory: 2 * MiB }), "/memory", /4M/);
    assertProblem(base({ maxInstructions: 0 }), "/maxInstructions", /./);
    assertProblem(base({ maxInstructions: 2 ** 53 }), "/maxInstructions", /./);
    assertProblem(base({ nics: [{ backend: "switch:a", mac: "52:54:00:12:34" }] }), "/nics/0/mac", /match/);
    assertProblem(
      base({ nics: [{ backend: "switch:a", mac: "01:00:00:00:00:01" }] }),
      "/nics/0/mac",
      /unicast/,
    );
    assertProblem(base({ nics: [{ backend: "bridge:x" }] }), "/nics/0/backend", /match/);
    assertProblem(base({ nics: [{ backend: "tap:t0" }, { backend: "tap:t0" }] }), "/nics/1/backend", /twice/);
    assertProblem(base({ vsock: { cid: 2 } }), "/vsock/cid", /3/);
    assertProblem(base({ vsock: { cid: 3, uds: `/${"x".repeat(107)}` } }), "/vsock/uds", /107 bytes/);
    assertProblem(base({ balloon: { targetBytes: 64 * MiB } }), "/balloon/targetBytes", /smaller/);
    assertProblem(base({ engine: "kvm" }), "/engine", /interpreter/);
    assertProblem(base({ arch: "x86_64", engine: "interpreter", memory: 4 * MiB }), "/engine", /KVM/);
    assertProblem(base({ arch: "arm" as "riscv64" }), "/arch", /./);
    assertProblem(base({ virtioRing: "ring" as "split" }), "/virtioRing", /./);
    assertProblem(
      base({ boot: { kernel: "k", firmware: "none", initrd: "i" } }),
      "/boot/initrd",
      /Linux boot/,
    );
    assertProblem(
      base({
        drives: [
          { path: "a", readOnly: true, id: "a" },
          { path: "a", readOnly: true, id: "b" },
        ],
      }),
      "/drives/1/path",
      /twice/,
    );
    assertProblem({ ...base(), extra: 1 }, "/extra", /./);
    assertProblem(
      base({
        rng: true,
        console: true,
        drives: Array.from({ length: 7 }, (_, i) => ({ path: `${i}`, readOnly: true, id: `d${i}` })),
      }),
      "",
      /too many/,
    );
    assertProblem(null, "", /object/);
  });

  test("the keyboard: riscv64 Linux boots get one unless told, when a slot is free; x86_64 none", () => {
    assert.equal(hasKeyboard(base()), true);
    assert.equal(hasKeyboard(base({ keyboard: false })), false);
    assert.equal(hasKeyboard(base({ boot: { kernel: "k", firmware: "none" } })), false, "bare metal");
    assert.equal(hasKeyboard(base({ boot: { kernel: "k", firmware: "none" }, keyboard: true })), true);
    const drives = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ path: `d${i}.img`, readOnly: false, id: `d${i}` }));
    // Eight devices fill the slots: still valid, without the keyboard; asking for it then is too many.
    const full = base({ drives: drives(8) });
    assert.equal(validateVmSpec(full), full);
    assert.equal(hasKeyboard(full), false);
    assert.equal(hasKeyboard(base({ drives: drives(7) })), true);
    assertProblem(base({ drives: drives(8), keyboard: true }), "", /too many virtio devices/);
    const x86 = base({ arch: "x86_64", engine: "kvm", memory: 64 * MiB });
    assert.equal(hasKeyboard(x86), false);
    assert.equal(hasKeyboard({ ...x86, keyboard: false }), false);
    assertProblem({ ...x86, keyboard: true }, "/keyboard", /only for riscv64 guests/);
    assertProblem(base({ keyboard: "yes" as unknown as boolean }), "/keyboard", /boolean/);
  });

  test("the guest agent: Linux boots (riscv64, x86_64) have one unless told, with a free slot", () => {
    const drives = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ path: `d${i}.img`, readOnly: false, id: `d${i}` }));
    assert.equal(hasAgent(base()), true);
    assert.equal(hasAgent(base({ agent: false })), false);
    assert.equal(hasAgent(base({ boot: { kernel: "k", firmware: "none" } })), false, "bare metal");
    assert.equal(hasAgent(base({ vsock: { cid: 5 } })), false, "a vsock of the spec's own, unsaid");
    assert.equal(hasAgent(base({ vsock: { cid: 5, uds: "/tmp/v.sock" }, agent: true })), true);
    assert.equal(hasAgent(base({ drives: drives(8) })), false, "no slot left for its vsock");
    assertProblem(base({ drives: drives(8), agent: true }), "/agent", /needs a virtio slot/);
    assertProblem(base({ boot: { kernel: "k", firmware: "none" }, agent: true }), "/agent", /Linux boot/);
    // x86_64: the same rule (its default image carries qemu-ga too, its board has vsock).
    const x86 = base({ arch: "x86_64", engine: "kvm", memory: 64 * MiB });
    assert.equal(hasAgent(x86), true);
    assert.equal(hasAgent({ ...x86, agent: false }), false);
    assert.equal(validateVmSpec({ ...x86, agent: true }).agent, true);
    assert.equal(hasAgent({ ...x86, drives: drives(8) }), false, "no slot left for its vsock (x86_64)");
    assertProblem({ ...x86, drives: drives(8), agent: true }, "/agent", /needs a virtio slot/);
  });

  test("CPU shares and memory modes: ranges, and what only a shared VM has", () => {
    assert.equal(validateVmSpec(base({ cpu: { mode: "dedicated" } })).cpu?.mode, "dedicated");
    assertProblem(base({ cpu: { mode: "dedicated", weight: 5 } }), "/cpu/weight", /only for mode shared/);
    assertProblem(base({ cpu: { mode: "shared", weight: 0 } }), "/cpu/weight", /greater or equal to 1/);
    assertProblem(base({ cpu: { mode: "shared", weight: 10_001 } }), "/cpu/weight", /less or equal to 10000/);
    assertProblem(base({ cpu: { mode: "shared", cap: 0 } }), "/cpu/cap", /greater than 0/);
    assertProblem(base({ cpu: { mode: "shared", cap: 1.5 } }), "/cpu/cap", /less or equal to 1/);
    assertProblem(base({ cpu: { mode: "shared", cap: 0.2, reservation: 0.3 } }), "/cpu/reservation", /cap/);
    assertProblem({ ...base(), cpu: { mode: "spare" } }, "/cpu/mode", /./);
    assertProblem({ ...base(), memoryMode: "lazy" }, "/memoryMode", /./);
  });

  test("every problem is listed, in one message", { timeout: 10_000 }, () => {
    const found = problems(base({ cpus: 0, memory: 3, name: "" }));
    assert.equal(found.length, 3, found.join("\n"));
    assert.throws(
      () => validateVmSpec(base({ cpus: 0, memory: 3 })),
      /\/cpus: .*; \/memory: |\/memory: .*; \/cpus: /,
    );
  });

  test("random JSON values give a VmSpecError or a valid spec, never another error", {
    timeout: 60_000,
  }, () => {
    const spec = base();
    const mutated = fc.record({
      key: fc.constantFrom(...Object.keys(VmSpecSchema.properties), "boot", "drives", "nics"),
      value: fc.jsonValue(),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          mutated.map(({ key, value }) => ({ ...spec, [key]: value })),
        ),
        (value) => {
          try {
            validateVmSpec(value);
          } catch (e) {
            if (!(e instanceof VmSpecError)) throw e;
            assert.ok(e.problems.length > 0 && e.message.length > 0);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("the schema is JSON Schema data (for an OpenAPI document)", { timeout: 10_000 }, () => {
    const json = JSON.parse(JSON.stringify(VmSpecSchema));
    assert.equal(json.type, "object");
    assert.ok(json.required.includes("memory"));
    assert.equal(json.properties.memory.multipleOf, 4096);
  });
});
