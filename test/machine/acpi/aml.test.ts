/**
 * The AML encoder and the microVM's DSDT: byte-exact encodings from the ACPI spec, a decoder of our own
 * (below) that reads every DSDT back into a tree, and, where acpica-tools is installed, iasl: its
 * disassembly of our DSDT, recompiled without optimisations, gives the same AML byte for byte.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as aml from "../../../src/machine/acpi/aml.js";
import {
  type AcpiVirtioDevice,
  buildAcpiTables,
  dsdtAml,
  VIRTIO_MMIO_HID,
} from "../../../src/machine/x86-microvm/acpi.js";
import { VIRTIO_MMIO } from "../../../src/machine/x86-microvm/memory-map.js";
import { describe, test } from "../../support/test.js";

const bytes = (...b: number[]) => Uint8Array.from(b);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

// --- a decoder for the subset we emit ---

type Node =
  | { kind: "scope" | "device"; name: string; body: Node[] }
  | { kind: "name"; name: string; value: Node }
  | { kind: "integer"; value: bigint }
  | { kind: "string"; value: string }
  | { kind: "package"; elements: Node[] }
  | { kind: "buffer"; bytes: Uint8Array };

class Reader {
  constructor(
    readonly b: Uint8Array,
    public at = 0,
  ) {}
  byte(): number {
    const v = this.b[this.at++];
    if (v === undefined) throw new Error("AML ends early");
    return v;
  }
  /** PkgLength: returns the end offset of the package (the length counts the PkgLength bytes). */
  pkgEnd(): number {
    const start = this.at;
    const lead = this.byte();
    const extra = lead >> 6;
    let length = extra === 0 ? lead & 0x3f : lead & 0x0f;
    for (let i = 0; i < extra; i++) length |= this.byte() << (4 + 8 * i);
    const end = start + length;
    if (end > this.b.length) throw new Error("package runs past its parent");
    return end;
  }
  nameString(): string {
    let prefix = "";
    while (this.b[this.at] === 0x5c || this.b[this.at] === 0x5e) prefix += String.fromCharCode(this.byte());
    const first = this.byte();
    let count = 1;
    if (first === 0x00) count = 0;
    else if (first === 0x2e) count = 2;
    else if (first === 0x2f) count = this.byte();
    else this.at--;
    const segs: string[] = [];
    for (let i = 0; i < count; i++) {
      segs.push(String.fromCharCode(...this.b.subarray(this.at, this.at + 4)));
      this.at += 4;
    }
    return prefix + segs.join(".");
  }
  data(): Node {
    const op = this.byte();
    const le = (n: number) => {
      let v = 0n;
      for (let i = 0; i < n; i++) v |= BigInt(this.byte()) << BigInt(8 * i);
      return v;
    };
    switch (op) {
      case 0x00:
        return { kind: "integer", value: 0n };
      case 0x01:
        return { kind: "integer", value: 1n };
      case 0x0a:
        return { kind: "integer", value: le(1) };
      case 0x0b:
        return { kind: "integer", value: le(2) };
      case 0x0c:
        return { kind: "integer", value: le(4) };
      case 0x0e:
        return { kind: "integer", value: le(8) };
      case 0x0d: {
        const end = this.b.indexOf(0, this.at);
        const value = String.fromCharCode(...this.b.subarray(this.at, end));
        this.at = end + 1;
        return { kind: "string", value };
      }
      case 0x12: {
        const end = this.pkgEnd();
        const n = this.byte();
        const elements: Node[] = [];
        for (let i = 0; i < n; i++) elements.push(this.data());
        assert.equal(this.at, end, "package length");
        return { kind: "package", elements };
      }
      case 0x11: {
        const end = this.pkgEnd();
        const size = this.data();
        assert.equal(size.kind, "integer");
        const body = this.b.slice(this.at, end);
        assert.equal(BigInt(body.length), (size as { value: bigint }).value, "buffer size");
        this.at = end;
        return { kind: "buffer", bytes: body };
      }
      default:
        throw new Error(`unexpected data opcode 0x${op.toString(16)} at ${this.at - 1}`);
    }
  }
  terms(end: number): Node[] {
    const out: Node[] = [];
    while (this.at < end) {
      const op = this.byte();
      if (op === 0x08) out.push({ kind: "name", name: this.nameString(), value: this.data() });
      else if (op === 0x10 || (op === 0x5b && this.byte() === 0x82)) {
        const e = this.pkgEnd();
        const name = this.nameString();
        out.push({ kind: op === 0x10 ? "scope" : "device", name, body: this.terms(e) });
      } else throw new Error(`unexpected term opcode 0x${op.toString(16)}`);
    }
    assert.equal(this.at, end, "term list length");
    return out;
  }
}

function decode(b: Uint8Array): Node[] {
  return new Reader(b).terms(b.length);
}

type Container = Extract<Node, { body: Node[] }>;
type NameNode = Extract<Node, { kind: "name" }>;

interface Resource {
  type: string;
  fields: Record<string, number | boolean | number[]>;
}

/** Resource descriptors in a _CRS buffer, checking each length and the end tag. */
function resources(b: Uint8Array): Resource[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Resource[] = [];
  let at = 0;
  for (;;) {
    const tag = b[at] as number;
    if (tag === 0x79) {
      assert.equal(at + 2, b.length, "end tag last");
      return out;
    }
    assert.ok(tag & 0x80, "large item");
    const length = v.getUint16(at + 1, true);
    if (tag === 0x86) {
      assert.equal(length, 9);
      out.push({
        type: "Memory32Fixed",
        fields: {
          writable: b[at + 3] === 1,
          base: v.getUint32(at + 4, true),
          length: v.getUint32(at + 8, true),
        },
      });
    } else if (tag === 0x89) {
      const flags = b[at + 3] as number;
      const n = b[at + 4] as number;
      assert.equal(length, 2 + 4 * n);
      out.push({
        type: "Interrupt",
        fields: {
          consumer: (flags & 1) !== 0,
          edge: (flags & 2) !== 0,
          activeLow: (flags & 4) !== 0,
          shared: (flags & 8) !== 0,
          gsis: Array.from({ length: n }, (_, i) => v.getUint32(at + 5 + 4 * i, true)),
        },
      });
    } else throw new Error(`unexpected resource 0x${tag.toString(16)}`);
    at += 3 + length;
  }
}

// --- encoder ---

describe("AML encoder", () => {
  test("PkgLength: one byte up to 63 in all, then 2, 3 and 4 bytes with the low nibble first", () => {
    assert.deepEqual(aml.pkgLength(0), bytes(0x01));
    assert.deepEqual(aml.pkgLength(62), bytes(0x3f));
    // 63 + 2 = 65 = 0x41: lead 0x40 | 1, then 0x41 >> 4 = 4
    assert.deepEqual(aml.pkgLength(63), bytes(0x41, 0x04));
    assert.deepEqual(aml.pkgLength(0xffd), bytes(0x4f, 0xff)); // 0xfff
    assert.deepEqual(aml.pkgLength(0xffe), bytes(0x81, 0x00, 0x01)); // 0x1001
    assert.deepEqual(aml.pkgLength(0xffffc), bytes(0x8f, 0xff, 0xff)); // 0xfffff
    assert.deepEqual(aml.pkgLength(0xffffd), bytes(0xc1, 0x00, 0x00, 0x01)); // 0x100001
    assert.throws(() => aml.pkgLength(2 ** 28), RangeError);
    assert.throws(() => aml.pkgLength(-1), RangeError);
  });

  test("PkgLength round-trips through the decoder (lengths up to 1 MiB; the 4-byte form is above)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 20 }), (n) => {
        const p = aml.pkgLength(n);
        const r = new Reader(new Uint8Array(p.length + n));
        r.b.set(p);
        return r.pkgEnd() === p.length + n && r.at === p.length;
      }),
    );
  });

  test("names: segments padded with '_', root and parent prefixes, dual and multi names", () => {
    assert.deepEqual(aml.nameString("_HID"), bytes(...ascii("_HID")));
    assert.deepEqual(aml.nameString("_S5"), bytes(...ascii("_S5_")));
    assert.deepEqual(aml.nameString("\\_SB"), bytes(0x5c, ...ascii("_SB_")));
    assert.deepEqual(aml.nameString("\\_SB.V000"), bytes(0x5c, 0x2e, ...ascii("_SB_V000")));
    assert.deepEqual(aml.nameString("^^A.B.C"), bytes(0x5e, 0x5e, 0x2f, 3, ...ascii("A___B___C___")));
    assert.deepEqual(aml.nameString("\\"), bytes(0x5c, 0x00));
    for (const bad of ["_hid", "TOOLONG", "1ABC", "A..B", "A-B"]) {
      assert.throws(() => aml.nameString(bad), RangeError, bad);
    }
  });

  test("integers take the shortest encoding", () => {
    assert.deepEqual(aml.integer(0), bytes(0x00));
    assert.deepEqual(aml.integer(1), bytes(0x01));
    assert.deepEqual(aml.integer(5), bytes(0x0a, 0x05));
    assert.deepEqual(aml.integer(0x1000), bytes(0x0b, 0x00, 0x10));
    assert.deepEqual(aml.integer(0xc000_1000), bytes(0x0c, 0x00, 0x10, 0x00, 0xc0));
    assert.deepEqual(aml.integer(2 ** 32), bytes(0x0e, 0, 0, 0, 0, 1, 0, 0, 0));
    assert.deepEqual(aml.integer(0xffff_ffff_ffff_ffffn), bytes(0x0e, ...new Array(8).fill(0xff)));
    assert.throws(() => aml.integer(-1), RangeError);
    assert.throws(() => aml.integer(2 ** 64), RangeError);
    assert.throws(() => aml.integer(2n ** 64n), RangeError);
  });

  test("strings, packages and buffers", () => {
    assert.deepEqual(aml.string("LNRO0005"), bytes(0x0d, ...ascii("LNRO0005"), 0));
    assert.throws(() => aml.string("é"), RangeError);
    // The DSDT's \_S5 object, as the board has always encoded it.
    assert.deepEqual(
      aml.name("_S5_", aml.pkg(aml.integer(5), aml.integer(0))),
      bytes(0x08, ...ascii("_S5_"), 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00),
    );
    assert.deepEqual(aml.buffer(bytes(0xaa, 0xbb)), bytes(0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb));
    // A buffer needing a two-byte PkgLength: 100 bytes + 2 (size) + 2 (PkgLength) = 104.
    const big = aml.buffer(new Uint8Array(100).fill(7));
    assert.deepEqual(big.subarray(0, 5), bytes(0x11, 0x48, 0x06, 0x0a, 100));
    assert.equal(big.length, 1 + 104);
  });

  test("Device and Scope wrap their terms in a package", () => {
    const d = aml.device("V000", aml.name("_UID", aml.integer(0)));
    assert.deepEqual(d, bytes(0x5b, 0x82, 0x0b, ...ascii("V000"), 0x08, ...ascii("_UID"), 0x00));
    const s = aml.scope("\\_SB", d);
    assert.deepEqual(s.subarray(0, 7), bytes(0x10, 0x13, 0x5c, ...ascii("_SB_")));
    assert.deepEqual(decode(s), [
      {
        kind: "scope",
        name: "\\_SB_",
        body: [
          {
            kind: "device",
            name: "V000",
            body: [{ kind: "name", name: "_UID", value: { kind: "integer", value: 0n } }],
          },
        ],
      },
    ]);
  });

  test("resource descriptors: Memory32Fixed, Interrupt, end tag (ACPI 6.5 §6.4.3)", () => {
    assert.deepEqual(
      aml.memory32Fixed(0xc000_1000, 0x1000),
      bytes(0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xc0, 0x00, 0x10, 0x00, 0x00),
    );
    assert.equal(aml.memory32Fixed(0x1000, 0x1000, false)[3], 0);
    assert.throws(() => aml.memory32Fixed(0xffff_f000, 0x2000), RangeError);
    // consumer (bit 0), level (bit 1 clear), active-high (bit 2 clear), exclusive (bit 3 clear)
    assert.deepEqual(
      aml.interrupt({ edge: false, activeLow: false, shared: false }, 5),
      bytes(0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00),
    );
    assert.equal(aml.interrupt({ edge: true, activeLow: true, shared: true, wakeCapable: true }, 9)[3], 0x1f);
    assert.deepEqual(
      aml.interrupt({ edge: true, activeLow: false, shared: false }, 1, 2).subarray(1, 5),
      bytes(10, 0, 0x03, 2),
    );
    assert.throws(() => aml.interrupt({ edge: true, activeLow: false, shared: false }), RangeError);
    const crs = aml.resourceTemplate(aml.memory32Fixed(0x1000, 0x100));
    assert.deepEqual(crs, bytes(0x11, 0x11, 0x0a, 0x0e, ...aml.memory32Fixed(0x1000, 0x100), 0x79, 0x00));
  });
});

// --- the board's DSDT ---

const SLOTS: AcpiVirtioDevice[] = Array.from({ length: VIRTIO_MMIO.slots }, (_, i) => ({
  base: VIRTIO_MMIO.base + i * VIRTIO_MMIO.size,
  size: VIRTIO_MMIO.size,
  gsi: VIRTIO_MMIO.firstGsi + i,
}));

describe("microVM DSDT", () => {
  test("without virtio devices it is only \\_S5", () => {
    assert.deepEqual(dsdtAml(), bytes(0x08, ...ascii("_S5_"), 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00));
  });

  test("each virtio window is a LNRO0005 device under \\_SB with its window and level interrupt", () => {
    const tree = decode(dsdtAml(SLOTS));
    assert.equal(tree.length, 2);
    const sb = tree[1] as Container;
    assert.equal(sb.kind, "scope");
    assert.equal(sb.name, "\\_SB_");
    assert.equal(sb.body.length, 8);
    sb.body.forEach((dev, i) => {
      assert.equal(dev.kind, "device");
      const d = dev as Container;
      assert.equal(d.name, `V00${i}`);
      const names = Object.fromEntries(d.body.map((n) => [(n as NameNode).name, (n as NameNode).value]));
      assert.deepEqual(Object.keys(names), ["_HID", "_UID", "_CRS"]);
      assert.deepEqual(names._HID, { kind: "string", value: VIRTIO_MMIO_HID });
      assert.deepEqual(names._UID, { kind: "integer", value: BigInt(i) });
      assert.equal(names._CRS?.kind, "buffer");
      assert.deepEqual(resources((names._CRS as { bytes: Uint8Array }).bytes), [
        { type: "Memory32Fixed", fields: { writable: true, base: 0xc000_1000 + 0x1000 * i, length: 0x1000 } },
        {
          type: "Interrupt",
          fields: { consumer: true, edge: false, activeLow: false, shared: false, gsis: [5 + i] },
        },
      ]);
    });
  });

  test("the tables point at it: RSDP → XSDT → FADT → DSDT, checksums zero", () => {
    const { dsdt } = tablesWith(SLOTS.slice(0, 2));
    assert.equal(String.fromCharCode(...dsdt.subarray(0, 4)), "DSDT");
    assert.equal(
      dsdt.reduce((s, b) => (s + b) & 0xff, 0),
      0,
    );
    assert.deepEqual(dsdt.subarray(36), dsdtAml(SLOTS.slice(0, 2)));
  });

  const iasl = spawnSync("iasl", ["-v"], { encoding: "utf8" });
  const noIasl = iasl.error ? "iasl is not installed (apt-get install acpica-tools)" : undefined;
  if (noIasl) console.log(`# skipping the iasl check: ${noIasl}`);

  test("iasl disassembles it, and recompiles the disassembly to the same AML", { skip: noIasl }, () => {
    const dir = mkdtempSync(join(tmpdir(), "vireo-dsdt-"));
    const { dsdt } = tablesWith(SLOTS.slice(0, 3));
    writeFileSync(join(dir, "dsdt.dat"), dsdt);
    const d = spawnSync("iasl", ["-d", "dsdt.dat"], { cwd: dir, encoding: "utf8" });
    assert.equal(d.status, 0, d.stdout + d.stderr);
    const dsl = readFileSync(join(dir, "dsdt.dsl"), "utf8");
    assert.match(dsl, /DefinitionBlock \("", "DSDT", 2, "VIREO ", "VIREOVM ", 0x00000001\)/);
    assert.match(dsl, /Name \(_S5, Package \(0x02\)/);
    assert.match(dsl, /Scope \(\\_SB\)/);
    for (let i = 0; i < 3; i++) {
      assert.match(dsl, new RegExp(`Device \\(V00${i}\\)`));
      assert.match(dsl, new RegExp(`0xC000${i + 1}000, +// Address Base`));
      assert.match(dsl, new RegExp(`0x0000000${5 + i},`));
    }
    assert.equal(dsl.match(/Name \(_HID, "LNRO0005"\)/g)?.length, 3);
    assert.equal(dsl.match(/Interrupt \(ResourceConsumer, Level, ActiveHigh, Exclusive, ,, \)/g)?.length, 3);
    // -oa: no optimisations (iasl would drop the root prefix of \_SB at the root).
    const c = spawnSync("iasl", ["-oa", "-p", "again", "dsdt.dsl"], { cwd: dir, encoding: "utf8" });
    assert.equal(c.status, 0, c.stdout + c.stderr);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, "again.aml"))).subarray(36), dsdt.subarray(36));
  });
});

/** Builds the board's tables into a 1 MiB scratch memory and follows the pointers to the DSDT. */
function tablesWith(virtio: AcpiVirtioDevice[]): { dsdt: Uint8Array } {
  const mem = new Uint8Array(0x100000);
  const rsdp = buildAcpiTables({ write: (p, d) => mem.set(d, p) }, { cpus: 1, virtio });
  const v = new DataView(mem.buffer);
  assert.equal(String.fromCharCode(...mem.subarray(rsdp, rsdp + 8)), "RSD PTR ");
  const xsdt = Number(v.getBigUint64(rsdp + 24, true));
  const fadt = Number(v.getBigUint64(xsdt + 36, true));
  assert.equal(String.fromCharCode(...mem.subarray(fadt, fadt + 4)), "FACP");
  const address = v.getUint32(fadt + 40, true);
  assert.equal(Number(v.getBigUint64(fadt + 140, true)), address, "X_DSDT = DSDT");
  return { dsdt: mem.slice(address, address + v.getUint32(address + 4, true)) };
}
