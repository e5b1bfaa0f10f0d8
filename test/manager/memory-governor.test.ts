import assert from "node:assert/strict";
import fc from "fast-check";
import {
  governMemory,
  type MemoryVm,
  memoryRefusal,
  waterFill,
} from "../../src/manager/scheduler/memory-governor.js";
import { describe, it } from "../support/test.js";

const MiB = 2 ** 20;
const vm = (id: string, extra: Partial<MemoryVm> = {}): MemoryVm => ({
  id,
  memory: 256 * MiB,
  mode: "overcommit",
  weight: 100,
  reservation: 0,
  ballooned: 0,
  free: 200 * MiB,
  ...extra,
});

describe("memory admission", () => {
  it("fits reserved memory in the budget and overcommitted memory in ratio × the rest", () => {
    const budget = 1024 * MiB;
    const reserved = { memory: 512 * MiB, mode: "reserved" as const };
    assert.equal(memoryRefusal([], reserved, budget, 1.5), null);
    assert.match(
      memoryRefusal([reserved], { memory: 600 * MiB, mode: "reserved" }, budget, 1.5) ?? "",
      /reserved memory/,
    );
    // 512 MiB not reserved × 1.5 = 768 MiB for overcommitted guests.
    const three = [256, 256, 256].map((m) => ({ memory: m * MiB, mode: "overcommit" as const }));
    assert.equal(
      memoryRefusal([reserved, ...three.slice(0, 2)], three[2] as (typeof three)[0], budget, 1.5),
      null,
    );
    assert.match(
      memoryRefusal([reserved, ...three], { memory: 4 * MiB, mode: "overcommit" }, budget, 1.5) ?? "",
      /overcommitted memory would add up to 772 MiB, more than 1.5 × the 512 MiB/,
    );
  });
});

describe("the memory governor", () => {
  const host = (availableMiB: number) => ({ available: availableMiB * MiB, low: 100 * MiB, high: 200 * MiB });

  it("does nothing between the watermarks", () => {
    assert.deepEqual(governMemory([vm("a")], host(150)), []);
  });

  it("takes what the host needs from guests with free memory, lighter and freer ones first", () => {
    const vms = [
      vm("light", { weight: 100, free: 100 * MiB }),
      vm("heavy", { weight: 300, free: 100 * MiB }),
      vm("full", { free: 0 }),
      vm("reserved", { mode: "reserved" }),
    ];
    const d = governMemory(vms, host(40));
    const by = Object.fromEntries(d.map((x) => [x.id, x.target]));
    assert.deepEqual(
      Object.keys(by).sort(),
      ["heavy", "light"],
      "no free memory, or reserved: nothing taken",
    );
    // 160 MiB needed, split 3:1 by free/weight: 120 would be light's, but it has only 100 free.
    assert.equal(by.light, 100 * MiB);
    assert.equal(by.heavy, 60 * MiB);
    for (const x of d) assert.match(x.reason, /< low watermark/);
  });

  it("never goes below a reservation or past what is free, and gives the rest to others", () => {
    const vms = [vm("a", { reservation: 200 * MiB, free: 150 * MiB }), vm("b", { free: 30 * MiB })];
    const by = Object.fromEntries(governMemory(vms, host(0)).map((x) => [x.id, x.target]));
    assert.equal(by.a, 56 * MiB, "256 − 200 reserved");
    assert.equal(by.b, 30 * MiB);
  });

  it("gives back when the pressure has gone, heavier guests first", () => {
    const vms = [
      vm("a", { ballooned: 100 * MiB, weight: 100 }),
      vm("b", { ballooned: 100 * MiB, weight: 300 }),
    ];
    const by = Object.fromEntries(governMemory(vms, host(240)).map((x) => [x.id, x.target]));
    assert.equal(by.a, 90 * MiB);
    assert.equal(by.b, 70 * MiB);
    const all = Object.fromEntries(governMemory(vms, host(2000)).map((x) => [x.id, x.target]));
    assert.deepEqual(all, { a: 0, b: 0 });
  });

  it("water-fills within limits for any claimants (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ limit: fc.nat(1000), weight: fc.nat(50) }), { maxLength: 8 }),
        fc.nat(5000),
        (cs, amount) => {
          const claimants = cs.map((c, i) => ({ id: `c${i}`, ...c }));
          const got = waterFill(claimants, amount);
          let total = 0;
          for (const c of claimants) {
            const g = got.get(c.id) ?? 0;
            assert.ok(g >= 0 && g <= c.limit + 1e-6, `${c.id} got ${g} of limit ${c.limit}`);
            if (c.weight === 0) assert.equal(g, 0);
            total += g;
          }
          const capacity = claimants.filter((c) => c.weight > 0).reduce((s, c) => s + c.limit, 0);
          assert.ok(Math.abs(total - Math.min(amount, capacity)) < 1e-6, `gave ${total} of ${amount}`);
        },
      ),
    );
  });
});
