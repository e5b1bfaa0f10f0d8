import assert from "node:assert/strict";
import { HostCpus } from "../../src/manager/scheduler/host-cpus.js";
import { describe, it } from "../support/test.js";

describe("HostCpus", () => {
  it("dedicates CPUs from the top, keeps one for the shared pool, and gives them back", () => {
    const cpus = new HostCpus([0, 1, 2, 3]);
    assert.deepEqual(cpus.dedicate("a"), { cpus: [3] });
    assert.deepEqual(cpus.dedicate("a"), { cpus: [3] }, "asking again keeps the same CPU");
    assert.deepEqual(cpus.dedicate("b"), { cpus: [2] });
    assert.deepEqual(cpus.dedicate("c"), { cpus: [1] });
    assert.deepEqual(cpus.shared(), [0]);
    const refused = cpus.dedicate("d");
    assert.ok(
      "refusal" in refused &&
        /no host CPU left to dedicate: 1 wanted, 4 CPU\(s\), 3 dedicated/.test(refused.refusal),
    );
    cpus.release("b");
    assert.deepEqual(cpus.shared(), [0, 2]);
    assert.deepEqual(cpus.dedicate("d"), { cpus: [2] });
    assert.deepEqual(
      cpus.dedicatedCpus().map((d) => d.id),
      ["a", "c", "d"],
    );
  });

  it("dedicates one CPU per vCPU of a KVM VM", () => {
    const cpus = new HostCpus([0, 1, 2, 3]);
    assert.deepEqual(cpus.dedicate("smp", 2), { cpus: [2, 3] });
    assert.ok("refusal" in cpus.dedicate("big", 2));
    assert.deepEqual(cpus.dedicate("one"), { cpus: [1] });
    assert.deepEqual(cpus.shared(), [0]);
  });

  it("refuses any dedicated CPU on a one-CPU host, and bounds the shared pool when told", () => {
    assert.ok("refusal" in new HostCpus([5]).dedicate("a"));
    const cpus = new HostCpus([0, 1, 2, 3], 2);
    assert.deepEqual(cpus.shared(), [0, 1]);
    cpus.dedicate("a");
    cpus.dedicate("b");
    assert.deepEqual(cpus.shared(), [0, 1]);
    cpus.dedicate("c");
    assert.deepEqual(cpus.shared(), [0]);
  });
});
