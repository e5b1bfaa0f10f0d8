/** The console ring's replay then follow, as the console WebSocket uses them: each byte once. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConsoleRing } from "../../src/manager/console-ring.js";
import { describe, test } from "../support/test.js";

const tick = () => new Promise<void>((r) => queueMicrotask(r));

describe("console ring replay", () => {
  test("a reader attaching between writes gets contents() then the rest, each byte once", {
    timeout: 20_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.boolean(),
        async (before, afterBytes, otherFollower) => {
          const ring = new ConsoleRing(256);
          // Another reader makes the ring batch bytes that the new reader's replay already holds.
          const stopOther = otherFollower ? ring.follow(() => {}) : () => {};
          for (const b of before) ring.write(b);
          const seen: number[] = [...ring.contents()];
          const stop = ring.follow((chunk) => seen.push(...chunk));
          for (const b of afterBytes) ring.write(b);
          await tick();
          await tick();
          stop();
          stopOther();
          assert.deepEqual(seen, [...before, ...afterBytes]);
        },
      ),
    );
  });
});
