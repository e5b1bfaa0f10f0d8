/** Reserved memory: locked where the lock works, touched page by page (content kept) where it does not. */
import assert from "node:assert/strict";
import { reserveMemory } from "../../src/vm/prefault.js";
import { describe, it } from "../support/test.js";

describe("reserved memory", () => {
  it("locks every chunk, or pre-faults them all and says why", () => {
    const chunks = [{ bytes: new Uint8Array(3 * 4096 + 1).fill(7) }, { bytes: new Uint8Array(4096) }];
    const locked: number[] = [];
    assert.deepEqual(
      reserveMemory(chunks, (b) => locked.push(b.length)),
      { locked: true, pages: 5 },
    );
    assert.deepEqual(locked, [3 * 4096 + 1, 4096]);
    const refused = reserveMemory(chunks, () => {
      throw new Error("mlock: ENOMEM");
    });
    assert.deepEqual(refused, { locked: false, pages: 5, why: "mlock: ENOMEM" });
    assert.ok(
      chunks[0]?.bytes.every((b) => b === 7),
      "touching keeps the content",
    );
    assert.equal(reserveMemory(chunks, undefined).why, "this host cannot lock memory");
  });
});
