/**
 * Device writes into guest RAM are reported (GuestMemory.written) so the translator can drop code
 * compiled from those bytes: a virtqueue chain's writable buffers (copy and fill) and the used ring.
 */
import assert from "node:assert/strict";
import { SplitQueue } from "../../../src/devices/virtio/queue.js";
import { layoutRing, TestMemory, TestRing } from "../../devices/virtio/harness.js";
import { describe, it } from "../../support/test.js";

const BASE = 0x8000_0000;
const DATA = BASE + 0x10000;

class RecordingMemory extends TestMemory {
  readonly writes: [number, number][] = [];
  written(paddr: number, length: number): void {
    this.writes.push([paddr, length]);
  }
  covers(paddr: number, length: number): boolean {
    for (let a = paddr; a < paddr + length; a++) {
      if (!this.writes.some(([p, n]) => a >= p && a < p + n)) return false;
    }
    return true;
  }
}

describe("translator: device writes to guest RAM are reported", () => {
  it("buffer copies, fills and used-ring updates of a split virtqueue", () => {
    const mem = new RecordingMemory(BASE, 1 << 20);
    const layout = layoutRing(BASE, 8);
    const q = new SplitQueue(mem, 0, 8);
    q.size = 8;
    q.descLo = layout.desc;
    q.driverLo = layout.avail;
    q.deviceLo = layout.used;
    assert.ok(q.enable());
    const ring = new TestRing(mem, layout);
    const head = ring.chain([
      { addr: DATA, len: 6, write: true },
      { addr: DATA + 0x1000, len: 4, write: true },
    ]);
    ring.publish(head);
    const chain = q.pop();
    assert.ok(chain);
    assert.equal(chain.writeBytes(0, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 0, 8), 8);
    assert.ok(mem.covers(DATA, 6) && mem.covers(DATA + 0x1000, 2), "copied bytes reported");
    assert.equal(chain.fillWritable(8, 2, 0xff), 2);
    assert.ok(mem.covers(DATA + 0x1002, 2), "filled bytes reported");
    const before = mem.writes.length;
    assert.ok(q.push(chain, 10));
    assert.ok(mem.writes.length > before, "used ring update reported");
    assert.ok(mem.covers(layout.used + 2, 2), "used idx reported");
  });
});
