import assert from "node:assert/strict";
import { FdtBuilder, u64Cells } from "../../../src/machine/fdt/builder.js";
import {
  cellsOf,
  findByPhandle,
  findNode,
  parseFdt,
  readCells,
  readFdt,
  readString,
  readStrings,
  readU32,
  readU64,
} from "../../../src/machine/fdt/parser.js";
import { describe, it } from "../../support/test.js";

const be32 = (bytes: Uint8Array, at: number) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(at);

/** A root with one child holding one property of every kind. */
function everyKind(): Uint8Array {
  const fdt = new FdtBuilder();
  fdt.beginNode("");
  fdt.propU32("#address-cells", 2);
  fdt.beginNode("node@1000");
  fdt.propEmpty("flag");
  fdt.propU32("u32", 0xdead_beef);
  fdt.propCells("cells", [0, 1, 0xffff_ffff]);
  fdt.propU64("u64", 2 ** 53 - 1);
  fdt.propU64("pairs", 0x8000_0000, 0x1_0000_0000);
  fdt.propString("string", "hello");
  fdt.propStrings("strings", ["a", "", "bc"]);
  fdt.propBytes("bytes", Uint8Array.from([1, 2, 3]));
  fdt.prop("p-string", "x");
  fdt.prop("p-strings", ["y", "z"]);
  fdt.prop("p-u32", 7);
  fdt.prop("p-cells", [8, 9]);
  fdt.prop("p-bytes", Uint8Array.from([0xff]));
  fdt.endNode();
  fdt.endNode();
  return fdt.finish({ bootCpuId: 3 });
}

describe("FdtBuilder", () => {
  it("writes a version 17 header with every block in bounds and aligned", () => {
    const blob = everyKind();
    const { header, reservations } = readFdt(blob);
    assert.equal(be32(blob, 0), 0xd00dfeed);
    assert.equal(header.totalSize, blob.length);
    assert.equal(header.version, 17);
    assert.equal(header.lastCompVersion, 16);
    assert.equal(header.bootCpuId, 3);
    assert.equal(header.offRsvmap, 40);
    assert.equal(header.offStruct, 56);
    assert.equal(header.offStruct % 4, 0);
    assert.equal(header.sizeStruct % 4, 0);
    assert.equal(header.offStrings, header.offStruct + header.sizeStruct);
    assert.equal(header.offStrings + header.sizeStrings, header.totalSize);
    assert.deepEqual(reservations, []);
    assert.deepEqual([...blob.subarray(40, 56)], new Array(16).fill(0), "only the terminating entry");
    assert.equal(be32(blob, header.offStrings - 4), 9, "FDT_END closes the structure block");
  });

  it("round-trips every property kind", () => {
    const root = parseFdt(everyKind());
    assert.equal(root.name, "");
    assert.equal(readU32(root, "#address-cells"), 2);
    const node = findNode(root, "/node@1000");
    assert.ok(node);
    assert.deepEqual(node.props.get("flag"), new Uint8Array(0));
    assert.equal(readU32(node, "u32"), 0xdead_beef);
    assert.deepEqual(readCells(node, "cells"), [0, 1, 0xffff_ffff]);
    assert.equal(readU64(node, "u64"), 2 ** 53 - 1);
    assert.deepEqual(readCells(node, "pairs"), [0, 0x8000_0000, 1, 0]);
    assert.equal(readString(node, "string"), "hello");
    assert.deepEqual(readStrings(node, "strings"), ["a", "", "bc"]);
    assert.deepEqual(node.props.get("bytes"), Uint8Array.from([1, 2, 3]));
    assert.equal(readString(node, "p-string"), "x");
    assert.deepEqual(readStrings(node, "p-strings"), ["y", "z"]);
    assert.equal(readU32(node, "p-u32"), 7);
    assert.deepEqual(readCells(node, "p-cells"), [8, 9]);
    assert.deepEqual(node.props.get("p-bytes"), Uint8Array.from([0xff]));
    assert.deepEqual([...node.props.keys()].slice(0, 3), ["flag", "u32", "cells"], "blob order is kept");
  });

  it("pads names and values to 4 bytes", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("");
    fdt.propBytes("a", Uint8Array.from([1])); // 1 byte value + 3 padding
    fdt.beginNode("abc"); // "abc\0" exactly 4 bytes
    fdt.endNode();
    fdt.beginNode("abcd"); // "abcd\0" + 3 padding
    fdt.endNode();
    fdt.endNode();
    const blob = fdt.finish();
    const s = readFdt(blob).header.offStruct;
    const words = Array.from({ length: 13 }, (_, i) => be32(blob, s + i * 4));
    assert.deepEqual(words, [
      1, // BEGIN_NODE ""
      0, // "\0" padded
      3, // PROP
      1, // len
      0, // nameoff
      0x0100_0000, // value 01 + padding
      1, // BEGIN_NODE
      0x6162_6300, // "abc\0"
      2, // END_NODE
      1, // BEGIN_NODE
      0x6162_6364, // "abcd"
      0, // "\0" + padding
      2, // END_NODE
    ]);
  });

  it("stores each property name once in the strings block", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("");
    fdt.propU32("reg", 1);
    fdt.propU32("compatible-ish", 1);
    for (let i = 0; i < 10; i++) {
      fdt.beginNode(`n${i}`);
      fdt.propU32("reg", i);
      fdt.propU32("compatible-ish", i);
      fdt.endNode();
    }
    fdt.endNode();
    const blob = fdt.finish();
    const { header, root } = readFdt(blob);
    const strings = new TextDecoder().decode(
      blob.subarray(header.offStrings, header.offStrings + header.sizeStrings),
    );
    assert.equal(strings, "reg\0compatible-ish\0");
    assert.equal(root.children.length, 10);
    assert.equal(readU32(root.children[9] as never, "reg"), 9);
  });

  it("nests deeply", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("");
    const depth = 200;
    for (let i = 0; i < depth; i++) {
      fdt.beginNode(`level@${i.toString(16)}`);
      fdt.propU32("depth", i);
    }
    for (let i = 0; i <= depth; i++) fdt.endNode();
    let node = parseFdt(fdt.finish());
    for (let i = 0; i < depth; i++) {
      assert.equal(node.children.length, 1);
      node = node.children[0] as typeof node;
      assert.equal(node.name, `level@${i.toString(16)}`);
      assert.equal(readU32(node, "depth"), i);
    }
    assert.equal(node.children.length, 0);
  });

  it("allocates phandles that later nodes refer to by label", () => {
    const fdt = new FdtBuilder();
    const intc = fdt.allocPhandle("intc");
    const other = fdt.allocPhandle();
    assert.deepEqual([intc, other], [1, 2]);
    fdt.beginNode("");
    fdt.beginNode("intc");
    fdt.propPhandle(intc);
    fdt.endNode();
    fdt.beginNode("user");
    fdt.propCells("interrupts-extended", [fdt.phandle("intc"), 11]);
    fdt.propU32("phandle", other);
    fdt.endNode();
    fdt.endNode();
    const root = parseFdt(fdt.finish());
    const user = findNode(root, "/user");
    assert.ok(user);
    const [target] = readCells(user, "interrupts-extended");
    assert.equal(findByPhandle(root, target as number)?.path, "/intc");
    assert.equal(findByPhandle(root, other)?.path, "/user");
  });

  it("appends extra space counted in totalsize", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("").endNode();
    const blob = fdt.finish({ extraSpace: 100 });
    const { header } = readFdt(blob);
    assert.equal(header.totalSize, blob.length);
    assert.equal(blob.length, header.offStrings + header.sizeStrings + 100);
  });

  it("splits 64-bit values into cells", () => {
    assert.deepEqual(u64Cells(0x1_2345_6789), [1, 0x2345_6789]);
    assert.deepEqual(cellsOf(Uint8Array.from([0, 0, 1, 0])), [256]);
    assert.throws(() => u64Cells(2 ** 53), /below 2\^53/);
    assert.throws(() => u64Cells(-1), /below 2\^53/);
  });
});

describe("FdtBuilder misuse", () => {
  const root = () => new FdtBuilder().beginNode("");
  const cases: [string, () => unknown, RegExp][] = [
    ["endNode without beginNode", () => new FdtBuilder().endNode(), /endNode without/],
    ["finish with open nodes", () => root().beginNode("a").finish(), /finish with \/a still open/],
    ["finish without a root", () => new FdtBuilder().finish(), /without a root/],
    ["property outside a node", () => new FdtBuilder().propU32("x", 1), /outside any node/],
    ["property after a child", () => root().beginNode("a").endNode().propU32("x", 1), /after child nodes/],
    ["two roots", () => root().endNode().beginNode(""), /second root/],
    ["a named root", () => new FdtBuilder().beginNode("root"), /root node's name/],
    ["an empty child name", () => root().beginNode(""), /invalid node name/],
    ["a bad node name", () => root().beginNode("a b"), /invalid node name/],
    ["two @ in a name", () => root().beginNode("a@1@2"), /invalid node name/],
    ["a bad property name", () => root().propU32("a/b", 1), /invalid property name/],
    ["duplicate properties", () => root().propU32("x", 1).propU32("x", 2), /two "x" properties/],
    ["duplicate children", () => root().beginNode("a").endNode().beginNode("a"), /two "a" nodes/],
    ["a cell above 32 bits", () => root().propU32("x", 2 ** 32), /does not fit a 32-bit cell/],
    ["a negative cell", () => root().propCells("x", [1, -1]), /does not fit/],
    ["a fractional cell", () => root().propU32("x", 1.5), /does not fit/],
    ["NUL in a string", () => root().propString("x", "a\0b"), /cannot contain NUL/],
    ["an unknown label", () => new FdtBuilder().phandle("nope"), /no phandle labelled "nope"/],
    ["an unallocated phandle", () => root().propPhandle(5), /phandle 5 was not allocated/],
    [
      "a phandle on two nodes",
      () => {
        const fdt = new FdtBuilder();
        const p = fdt.allocPhandle();
        fdt.beginNode("").beginNode("a").propPhandle(p).endNode().beginNode("b").propPhandle(p);
      },
      /given to both \/a and \/b/,
    ],
    [
      "a phandle no node has",
      () => {
        const fdt = new FdtBuilder();
        fdt.allocPhandle("lost");
        fdt.beginNode("").endNode().finish();
      },
      /phandle 1 \("lost"\) was allocated but no node has it/,
    ],
    [
      "a label used twice",
      () => {
        const fdt = new FdtBuilder();
        fdt.allocPhandle("x");
        fdt.allocPhandle("x");
      },
      /already taken/,
    ],
    [
      "use after finish",
      () => {
        const fdt = new FdtBuilder();
        fdt.beginNode("").endNode().finish();
        fdt.beginNode("");
      },
      /already finished/,
    ],
  ];
  for (const [what, action, message] of cases) {
    it(`rejects ${what}`, () => assert.throws(action, message));
  }
});
