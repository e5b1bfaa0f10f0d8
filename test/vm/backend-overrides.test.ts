/**
 * overrideBackends: NIC backends by index and the vsock socket replace the saved ones and nothing else;
 * an index or a vsock the VM lacks is refused by name; what it makes is checked by validateVmSpec.
 */
import assert from "node:assert/strict";
import { UserError } from "../../src/util/errors.js";
import { overrideBackends } from "../../src/vm/backend-overrides.js";
import { VmSpecError, validateVmSpec } from "../../src/vm/spec.js";
import { describe, test } from "../support/test.js";

const saved = {
  nics: [{ backend: "switch:a", mac: "52:54:00:00:00:01" }, { backend: "tap:tap0" }],
  vsock: { cid: 7, uds: "/run/old.vsock" },
};

describe("overrideBackends", () => {
  test("replaces the named backends only, and leaves the saved spec alone", () => {
    const out = overrideBackends(saved, { vsockUds: "/run/new.vsock", nics: { "1": "switch:b" } }, "snap");
    assert.deepEqual(out, {
      nics: [{ backend: "switch:a", mac: "52:54:00:00:00:01" }, { backend: "switch:b" }],
      vsock: { cid: 7, uds: "/run/new.vsock" },
    });
    assert.equal(saved.nics[1]?.backend, "tap:tap0");
    assert.equal(saved.vsock.uds, "/run/old.vsock");
    assert.deepEqual(overrideBackends({ nics: [] }, {}, "snap"), { nics: [] });
  });

  test("an index or a vsock the VM lacks is a UserError that says so", () => {
    assert.throws(
      () => overrideBackends(saved, { nics: { "2": "switch:c" } }, "snap"),
      /snap: the VM has no NIC 2 .*it has 2/,
    );
    assert.throws(() => overrideBackends(saved, { nics: { "01": "switch:c" } }, "snap"), UserError);
    assert.throws(() => overrideBackends({ nics: [] }, { vsockUds: "/run/x" }, "snap"), /no vsock device/);
  });

  test("a bad backend or socket path is found by validateVmSpec, at the field", () => {
    const spec = {
      name: "v",
      arch: "riscv64",
      engine: "auto",
      cpus: 1,
      memory: 16 * 2 ** 20,
      boot: { kernel: "/k", firmware: "none" },
      drives: [],
      rng: false,
      console: false,
      virtioRing: "split",
    };
    const bad = (o: Parameters<typeof overrideBackends>[1]) => {
      try {
        validateVmSpec({ ...spec, ...overrideBackends(saved, o, "snap") });
      } catch (e) {
        assert.ok(e instanceof VmSpecError);
        return e.problems.map((p) => p.path);
      }
      assert.fail("validated");
    };
    assert.deepEqual(bad({ nics: { "0": "bridge:br0" } }), ["/nics/0/backend"]);
    assert.deepEqual(bad({ nics: { "0": "tap:tap0" } }), ["/nics/1/backend"]);
    assert.deepEqual(bad({ vsockUds: `/${"x".repeat(200)}` }), ["/vsock/uds"]);
  });
});
