import assert from "node:assert/strict";
import { formatMegabytes, ProgressBar, renderBar } from "../../src/images/progress.js";
import { describe, test } from "../support/test.js";

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (t: string) => writes.push(t) } };
}

describe("progress", () => {
  test("renderBar", () => {
    assert.equal(renderBar(50_100_000, 112_000_000, 10), "[####......]  44% 50.1/112.0 MB");
    assert.equal(renderBar(0, 112_000_000, 4), "[....]   0% 0.0/112.0 MB");
    assert.equal(renderBar(200, 100, 4), "[####] 100% 0.0/0.0 MB");
    assert.equal(renderBar(5, 0, 4), "[....]   0% 0.0/0.0 MB");
    assert.equal(formatMegabytes(941_532), "0.9");
  });

  test("not a TTY: one plain line per 10 %, never twice", () => {
    const { writes, stream } = sink(false);
    const bar = new ProgressBar(stream, 1000, "downloading");
    for (let done = 0; done <= 1000; done += 7) bar.update(done);
    bar.update(50);
    bar.finish();
    assert.deepEqual(
      writes,
      Array.from({ length: 11 }, (_, i) => `downloading ${i * 10}% 0.0/0.0 MB\n`),
    );
    assert.ok(writes.every((w) => !w.includes("\r")));
  });

  test("TTY: redraws in place at most every 100 ms, ends with a newline", () => {
    let now = 0;
    const { writes, stream } = sink(true);
    const bar = new ProgressBar(stream, 100_000_000, "dl", () => now);
    bar.update(1_000_000);
    now = 50;
    bar.update(2_000_000); // too soon
    now = 150;
    bar.update(45_000_000);
    bar.finish();
    assert.equal(writes.length, 4);
    assert.ok(writes[0]?.startsWith("\rdl [") && writes[0].endsWith("\x1b[K"));
    assert.match(writes[1] as string, /45% 45\.0\/100\.0 MB/);
    assert.match(writes[2] as string, /\[#{30}\] 100% 100\.0\/100\.0 MB/);
    assert.equal(writes[3], "\n");
  });

  test("abandon ends a drawn TTY line, and writes nothing otherwise", () => {
    const tty = sink(true);
    const bar = new ProgressBar(tty.stream, 10, "x");
    bar.abandon();
    assert.deepEqual(tty.writes, []);
    bar.update(3);
    bar.abandon();
    assert.equal(tty.writes.at(-1), "\n");
    const plain = sink(false);
    new ProgressBar(plain.stream, 10, "x").abandon();
    assert.deepEqual(plain.writes, []);
  });
});
