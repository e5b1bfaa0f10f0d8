/**
 * The live-migration wire format: frames cut from a stream in chunks of any size come out whole and in
 * order; a stream that ends inside a frame, an unknown frame type, an oversized length, a START from
 * another program or a newer major protocol are each a UserError; random bytes never raise anything else.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeStart,
  encodeFrame,
  encodeStart,
  FrameQueue,
  FrameReader,
  FrameType,
  MAX_FRAME_BYTES,
  MIGRATION_MAJOR,
  textFrame,
} from "../../src/snapshot/migration-wire.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test } from "../support/test.js";

const TYPES = [
  FrameType.START,
  FrameType.PASS_BEGIN,
  FrameType.PASS_DATA,
  FrameType.PASS_END,
  FrameType.STATE,
  FrameType.COMPLETE,
  FrameType.ABANDON,
  FrameType.ACCEPT,
  FrameType.REFUSE,
  FrameType.RUNNING,
];

function joined(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("migration wire format", () => {
  test("frames survive any chunking of the stream", { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom(...TYPES), payload: fc.uint8Array({ maxLength: 300 }) }), {
          maxLength: 20,
        }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 10 }),
        (frames, cuts) => {
          const stream = joined(frames.map((f) => encodeFrame(f.type, f.payload)));
          const reader = new FrameReader();
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const n = cuts[i % cuts.length] as number;
            reader.push(stream.subarray(at, at + n));
            at += n;
          }
          const out = [];
          for (let f = reader.take(); f !== undefined; f = reader.take()) out.push(f);
          assert.equal(reader.pending, 0);
          assert.deepEqual(
            out.map((f) => [f.type, [...f.payload]]),
            frames.map((f) => [f.type, [...f.payload]]),
          );
        },
      ),
    );
  });

  test("a cut stream, an unknown type and an oversized frame are refused", { timeout: 10_000 }, async () => {
    const cut = new FrameQueue();
    cut.push(encodeFrame(FrameType.STATE, new Uint8Array(10)).subarray(0, 8));
    cut.end();
    await assert.rejects(cut.next(), /ended inside a frame/);
    const unknown = new FrameQueue();
    unknown.push(new Uint8Array([99, 0, 0, 0, 0]));
    await assert.rejects(unknown.next(), /unknown frame type 99/);
    const huge = new FrameQueue();
    const header = new Uint8Array(5);
    header[0] = FrameType.PASS_DATA;
    new DataView(header.buffer).setUint32(1, MAX_FRAME_BYTES + 1, true);
    huge.push(header);
    await assert.rejects(huge.next(), /too large/);
    const ended = new FrameQueue();
    ended.push(encodeFrame(FrameType.ACCEPT));
    ended.end();
    assert.equal((await ended.next())?.type, FrameType.ACCEPT);
    assert.equal(await ended.next(), null);
  });

  test("START: checked magic and major version", { timeout: 10_000 }, () => {
    const reader = new FrameReader();
    reader.push(encodeStart({ name: "x" }, [{ id: "d", sizeBytes: 4096 }]));
    const start = decodeStart(reader.take() as never);
    assert.deepEqual(start.spec, { name: "x" });
    const other = (text: string) => {
      const r = new FrameReader();
      r.push(textFrame(FrameType.START, text));
      return () => decodeStart(r.take() as never);
    };
    assert.throws(other("GET / HTTP/1.1"), /not JSON/);
    assert.throws(other(JSON.stringify({ magic: "qemu" })), /does not speak/);
    assert.throws(
      other(JSON.stringify({ magic: "vireo-migration", major: MIGRATION_MAJOR + 1, minor: 0, drives: [] })),
      /protocol 2\.0; this Vireo speaks 1\.x/,
    );
    assert.throws(
      () => decodeStart({ type: FrameType.ACCEPT, payload: new Uint8Array(0) }),
      /expected START/,
    );
  });

  test("random bytes never raise anything but a UserError", { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const reader = new FrameReader();
        try {
          reader.push(bytes);
          for (let f = reader.take(); f !== undefined; f = reader.take()) {
            if (f.type === FrameType.START) decodeStart(f);
          }
        } catch (e) {
          assert.ok(e instanceof UserError, String(e));
        }
      }),
    );
  });
});
