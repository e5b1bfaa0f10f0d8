import assert from "node:assert/strict";
import fc from "fast-check";
import { FdtBuilder } from "../../../src/machine/fdt/builder.js";
import { FdtError, type FdtNode, isFdt, parseFdt, readFdt } from "../../../src/machine/fdt/parser.js";
import { buildVirtDeviceTree } from "../../../src/machine/riscv-virt/device-tree.js";
import { UserError } from "../../../src/util/errors.js";
import { describe, it } from "../../support/test.js";

// ---- Random trees --------------------------------------------------------------------------------

type Value =
  | { kind: "empty" }
  | { kind: "u32"; value: number }
  | { kind: "u64"; value: number }
  | { kind: "cells"; value: number[] }
  | { kind: "string"; value: string }
  | { kind: "strings"; value: string[] }
  | { kind: "bytes"; value: Uint8Array };

interface Tree {
  name: string;
  props: [string, Value][];
  children: Tree[];
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._+-";
const nodeName = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...nameChars), minLength: 1, maxLength: 12 }),
    fc.option(
      fc.nat().map((n) => n.toString(16)),
      { nil: undefined },
    ),
  )
  .map(([base, unit]) => (unit === undefined ? base : `${base}@${unit}`));
const propName = fc.string({ unit: fc.constantFrom(...`${nameChars}?#`), minLength: 1, maxLength: 20 });
const text = fc.string({ maxLength: 10 }).map((s) => s.replaceAll("\0", ""));
const cell = fc.nat({ max: 0xffff_ffff });
const value: fc.Arbitrary<Value> = fc.oneof(
  fc.constant({ kind: "empty" as const }),
  cell.map((v) => ({ kind: "u32" as const, value: v })),
  fc.maxSafeNat().map((v) => ({ kind: "u64" as const, value: v })),
  fc.array(cell, { maxLength: 6 }).map((v) => ({ kind: "cells" as const, value: v })),
  text.map((v) => ({ kind: "string" as const, value: v })),
  fc.array(text, { maxLength: 4 }).map((v) => ({ kind: "strings" as const, value: v })),
  fc.uint8Array({ maxLength: 11 }).map((v) => ({ kind: "bytes" as const, value: v })),
);
const props = fc.uniqueArray(fc.tuple(propName, value), { selector: ([n]) => n, maxLength: 5 });
/** Trees at most `depth` levels below this node, so generation always ends. */
function nodeAt(depth: number, name: fc.Arbitrary<string>): fc.Arbitrary<Tree> {
  const children =
    depth === 0
      ? fc.constant<Tree[]>([])
      : fc.uniqueArray(nodeAt(depth - 1, nodeName), { selector: (n) => n.name, maxLength: 3 });
  return fc.record({ name, props, children });
}
const tree = nodeAt(4, fc.constant(""));

function write(fdt: FdtBuilder, node: Tree): void {
  fdt.beginNode(node.name);
  for (const [name, v] of node.props) {
    if (v.kind === "empty") fdt.propEmpty(name);
    else if (v.kind === "u32") fdt.propU32(name, v.value);
    else if (v.kind === "u64") fdt.propU64(name, v.value);
    else if (v.kind === "cells") fdt.propCells(name, v.value);
    else if (v.kind === "string") fdt.propString(name, v.value);
    else if (v.kind === "strings") fdt.propStrings(name, v.value);
    else fdt.propBytes(name, v.value);
  }
  for (const child of node.children) write(fdt, child);
  fdt.endNode();
}

function encode(v: Value): Uint8Array {
  const cells = (list: number[]) => {
    const bytes = new Uint8Array(list.length * 4);
    list.forEach((c, i) => {
      new DataView(bytes.buffer).setUint32(i * 4, c);
    });
    return bytes;
  };
  switch (v.kind) {
    case "empty":
      return new Uint8Array(0);
    case "u32":
      return cells([v.value]);
    case "u64":
      return cells([Math.floor(v.value / 2 ** 32), v.value >>> 0]);
    case "cells":
      return cells(v.value);
    case "string":
      return new TextEncoder().encode(`${v.value}\0`);
    case "strings":
      return new TextEncoder().encode(v.value.map((s) => `${s}\0`).join(""));
    case "bytes":
      return v.value;
  }
}

function expected(node: Tree): FdtNode {
  return {
    name: node.name,
    props: new Map(node.props.map(([n, v]) => [n, encode(v)])),
    children: node.children.map(expected),
  };
}

function build(t: Tree, bootCpuId = 0): Uint8Array {
  const fdt = new FdtBuilder();
  write(fdt, t);
  return fdt.finish({ bootCpuId });
}

/** A parse either succeeds or fails with an FdtError; anything else (RangeError, TypeError) is a bug. */
function parseOrFdtError(blob: Uint8Array): void {
  try {
    parseFdt(blob);
  } catch (e) {
    if (!(e instanceof FdtError)) throw e;
    assert.match(e.message, /^invalid device tree blob: /);
  }
}

const sample = buildVirtDeviceTree({
  cpus: 2,
  memoryBytes: 256 * 2 ** 20,
  bootargs: "console=ttyS0",
  initrd: { start: 0x8800_0000, end: 0x8810_0000 },
  virtioSlots: [0, 1],
  isaExtensions: ["i", "m", "a", "c", "zicsr"],
  mmuType: "riscv,sv39",
});

describe("parseFdt", () => {
  it("reads back random trees exactly", () => {
    fc.assert(
      fc.property(tree, fc.nat({ max: 0xffff_ffff }), (t, cpu) => {
        const blob = build(t, cpu);
        const parsed = readFdt(blob);
        assert.deepEqual(parsed.root, expected(t));
        assert.equal(parsed.header.bootCpuId, cpu);
        assert.equal(parsed.header.totalSize, blob.length);
      }),
      { numRuns: 300 },
    );
  });

  it("accepts a blob inside a larger buffer and ignores bytes past totalsize", () => {
    const padded = new Uint8Array(sample.length + 64).fill(0xee);
    padded.set(sample, 16);
    const view = padded.subarray(16, 16 + sample.length + 32);
    assert.deepEqual(parseFdt(view), parseFdt(sample));
  });

  it("reads version 16 headers, which have no size_dt_struct", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("").propU32("x", 5).endNode();
    const blob = fdt.finish();
    const view = new DataView(blob.buffer);
    view.setUint32(20, 16);
    view.setUint32(36, 0xffff_ffff); // not a version 16 field: ignored
    const parsed = readFdt(blob);
    assert.equal(parsed.header.version, 16);
    assert.deepEqual(parsed.root.props.get("x"), Uint8Array.from([0, 0, 0, 5]));
  });

  it("skips FDT_NOP tokens", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("").propU32("gone", 5).beginNode("kept").endNode().endNode();
    const blob = fdt.finish();
    const view = new DataView(blob.buffer);
    const s = readFdt(blob).header.offStruct;
    // The property is words 2..5 (PROP, len, nameoff, value): overwrite them with NOPs.
    for (let word = 2; word < 6; word++) view.setUint32(s + word * 4, 4);
    const root = parseFdt(blob);
    assert.equal(root.props.size, 0);
    assert.deepEqual(
      root.children.map((c) => c.name),
      ["kept"],
    );
  });

  it("recognises the magic number", () => {
    assert.ok(isFdt(sample));
    assert.ok(!isFdt(Uint8Array.from([0xd0, 0x0d, 0xfe])));
    assert.ok(!isFdt(new Uint8Array(8)));
  });

  it("reports problems as FdtError, a UserError the CLI prints on one line", () => {
    assert.throws(
      () => parseFdt(new Uint8Array(64)),
      (e: unknown) =>
        e instanceof UserError && e instanceof FdtError && /bad magic 0x00000000/.test(e.message),
    );
  });
});

describe("parseFdt on malformed blobs", () => {
  const patched = (edit: (view: DataView, blob: Uint8Array) => void) => {
    const blob = sample.slice();
    edit(new DataView(blob.buffer), blob);
    return blob;
  };
  const { header } = readFdt(sample);
  const cases: [string, Uint8Array, RegExp][] = [
    ["an empty buffer", new Uint8Array(0), /too short for a header/],
    ["bad magic", patched((v) => v.setUint32(0, 0xfeedd00d)), /bad magic 0xfeedd00d/],
    ["an old version", patched((v) => v.setUint32(20, 15)), /version 15 is too old/],
    ["a newer incompatible version", patched((v) => v.setUint32(24, 18)), /needs a reader for version 18/],
    ["totalsize past the buffer", patched((v) => v.setUint32(4, sample.length + 1)), /larger than/],
    ["totalsize inside the header", patched((v) => v.setUint32(4, 20)), /smaller than the header/],
    [
      "a misaligned structure block",
      patched((v) => v.setUint32(8, header.offStruct + 2)),
      /not 4-byte aligned/,
    ],
    ["a misaligned reservation block", patched((v) => v.setUint32(16, 44)), /not 8-byte aligned/],
    ["a block over the header", patched((v) => v.setUint32(8, 4)), /overlaps the header/],
    ["a structure block past the end", patched((v) => v.setUint32(36, sample.length)), /extends past/],
    ["a strings block past the end", patched((v) => v.setUint32(32, sample.length)), /extends past/],
    [
      "no reservation terminator",
      patched((v) => v.setUint32(16, Math.floor((header.totalSize - 8) / 8) * 8)),
      /no terminating entry/,
    ],
    [
      "a reservation above 2^53",
      patched((v) => v.setUint32(40, 0xffff_ffff)),
      /reserved address at byte 40 does not fit below 2\^53/,
    ],
    ["an unknown token", patched((v) => v.setUint32(header.offStruct, 7)), /unknown token 0x7/],
    ["a root that does not begin", patched((v) => v.setUint32(header.offStruct, 2)), /without an open node/],
    [
      "a property name outside the strings block",
      patched((v) => v.setUint32(header.offStruct + 16, header.sizeStrings)),
      /name offset \d+ is outside the strings block/,
    ],
    [
      "a property running past the structure block",
      patched((v) => v.setUint32(header.offStruct + 12, header.sizeStruct)),
      /runs past the structure block/,
    ],
    [
      "a structure block cut short",
      patched((v) => v.setUint32(36, header.sizeStruct - 4)),
      /ends inside a token/,
    ],
    [
      "FDT_END with nodes open",
      patched((v) => v.setUint32(header.offStruct + header.sizeStruct - 8, 9)),
      /FDT_END at byte \d+ with \/ still open/,
    ],
    [
      "a named root",
      patched((_, b) => {
        b[header.offStruct + 4] = 0x61;
      }),
      /root node is named "a/,
    ],
  ];
  for (const [what, blob, message] of cases) {
    it(`rejects ${what}`, () => {
      assert.throws(
        () => parseFdt(blob),
        (e: unknown) => e instanceof FdtError && message.test(e.message),
      );
    });
  }

  it("rejects every truncation of a valid blob", () => {
    for (let length = 0; length < sample.length; length++) {
      assert.throws(() => parseFdt(sample.subarray(0, length)), FdtError, `length ${length}`);
    }
  });

  it("rejects truncations even when the header is patched to match", () => {
    for (let length = header.offStrings; length < sample.length; length++) {
      const blob = sample.slice(0, length);
      const view = new DataView(blob.buffer);
      view.setUint32(4, length);
      view.setUint32(32, length - header.offStrings);
      parseOrFdtError(blob);
    }
  });

  it("never throws anything but FdtError on garbled blobs", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: sample.length - 1 }), fc.nat({ max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const blob = sample.slice();
          for (const [at, byte] of edits) blob[at] = byte;
          parseOrFdtError(blob);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("never throws anything but FdtError on garbled structure words", () => {
    const words = header.sizeStruct / 4;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat({ max: words - 1 }),
            fc.oneof(fc.constantFrom(1, 2, 3, 4, 9, 0), fc.nat({ max: 0xffff_ffff })),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        (edits) => {
          const blob = sample.slice();
          const view = new DataView(blob.buffer);
          for (const [word, value] of edits) view.setUint32(header.offStruct + word * 4, value);
          parseOrFdtError(blob);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("never throws anything but FdtError on random bytes behind a valid-looking header", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat({ max: 400 }), (body, strings) => {
        const blob = new Uint8Array(56 + body.length);
        const view = new DataView(blob.buffer);
        view.setUint32(0, 0xd00dfeed);
        view.setUint32(4, blob.length);
        view.setUint32(8, 56);
        view.setUint32(12, Math.min(56 + strings, blob.length));
        view.setUint32(16, 40);
        view.setUint32(20, 17);
        view.setUint32(24, 16);
        view.setUint32(32, Math.max(0, blob.length - Math.min(56 + strings, blob.length)));
        view.setUint32(36, body.length);
        blob.set(body, 56);
        parseOrFdtError(blob);
      }),
      { numRuns: 2000 },
    );
  });
});
