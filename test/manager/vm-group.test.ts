import assert from "node:assert/strict";
import { VmGroup } from "../../src/manager/vm-group.js";
import { describe, it } from "../support/test.js";

/** An engine that works in turns (yielding like the interpreter) until stopped or `turns` ran out. */
class FakeEngine {
  ran = 0;
  stopped = false;
  constructor(
    private readonly turns: number,
    private readonly log: string[],
    private readonly name: string,
    private readonly fail = false,
  ) {}

  async run(): Promise<string> {
    for (;;) {
      if (this.stopped) return "stopped";
      if (this.ran === this.turns) {
        if (this.fail) throw new Error(`${this.name} broke`);
        return "exit";
      }
      this.ran++;
      this.log.push(this.name);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

describe("VmGroup", () => {
  it("runs engines at the same time, taking turns, and collects each result", async () => {
    const log: string[] = [];
    const group = new VmGroup<string>();
    const a = new FakeEngine(3, log, "a");
    const b = new FakeEngine(3, log, "b");
    group.add("a", a);
    group.add("b", b);
    assert.throws(() => group.add("a", a), /already/);
    const ended: string[] = [];
    const results = await group.run((name) => ended.push(name));
    assert.deepEqual(log, ["a", "b", "a", "b", "a", "b"], "round-robin turns");
    assert.deepEqual(
      [...results],
      [
        ["a", "exit"],
        ["b", "exit"],
      ],
    );
    assert.deepEqual(ended, ["a", "b"]);
  });

  it("stop() ends every VM; a failing engine stops the others and its error is rethrown", async () => {
    const log: string[] = [];
    const group = new VmGroup<string>();
    const forever = new FakeEngine(Number.POSITIVE_INFINITY, log, "forever");
    group.add("forever", forever);
    group.add("broken", new FakeEngine(2, log, "broken", true));
    await assert.rejects(group.run(), /broken broke/);
    assert.ok(forever.stopped);
    const g2 = new VmGroup<string>();
    const x = new FakeEngine(Number.POSITIVE_INFINITY, log, "x");
    g2.add("x", x);
    const running = g2.run();
    setImmediate(() => g2.stop());
    assert.deepEqual([...(await running)], [["x", "stopped"]]);
  });
});
