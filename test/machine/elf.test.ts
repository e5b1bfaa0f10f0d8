import assert from "node:assert/strict";
import fc from "fast-check";
import { isElf, parseElf } from "../../src/machine/loader/elf.js";
import { UserError } from "../../src/util/errors.js";
import { describe, it } from "../support/test.js";
import {
  buildElf,
  PT_NOTE,
  patch,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FILE,
  STT_OBJECT,
  STT_SECTION,
  type SymbolSpec,
} from "./elf-builder.js";

const text = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const data = Uint8Array.from([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22]);

const symbols: SymbolSpec[] = [
  { name: "dup", value: 1n, info: (STB_LOCAL << 4) | STT_OBJECT },
  { name: "main.c", value: 0n, info: (STB_LOCAL << 4) | STT_FILE },
  { name: "text", value: 0x8000_0000n, info: (STB_LOCAL << 4) | STT_SECTION },
  { name: "printf", value: 0n, section: 0 },
  { name: "huge", value: 0xffff_ffff_8000_0000n },
  { name: "tohost", value: 0x8000_1000n },
  { name: "fromhost", value: 0x8000_1008n },
  { name: "dup", value: 2n, info: (STB_GLOBAL << 4) | STT_OBJECT },
  { name: "läuft", value: 3n },
];

/** Two PT_LOAD segments (the second with .bss) around a PT_NOTE, and a symbol table. */
function sample() {
  return buildElf({
    entry: 0x8000_0004n,
    segments: [
      { paddr: 0x8000_0000, vaddr: 0x8000_0000, data: text, memSize: 16 },
      { type: PT_NOTE, paddr: 0, vaddr: 0, data: Uint8Array.of(9, 9, 9, 9), memSize: 4 },
      { paddr: 0x8000_1000, vaddr: 0x10_0000_1000, data, memSize: 0x100 },
    ],
    symbols,
  });
}

function parse(bytes: Uint8Array) {
  return parseElf(bytes, "guest.elf");
}

/** Asserts that parsing fails with a UserError naming the file and matching `problem`. */
function assertRejects(bytes: Uint8Array, problem: RegExp): void {
  assert.throws(
    () => parse(bytes),
    (error: unknown) =>
      error instanceof UserError && /^guest\.elf: /.test(error.message) && problem.test(error.message),
  );
}

describe("parseElf on a well-formed file", () => {
  it("returns the entry point and only the PT_LOAD segments", () => {
    const built = sample();
    const image = parse(built.bytes);
    assert.equal(image.entry, 0x8000_0004);
    assert.deepEqual(
      image.segments.map(({ paddr, vaddr, memSize, data }) => ({ paddr, vaddr, memSize, data: [...data] })),
      [
        { paddr: 0x8000_0000, vaddr: 0x8000_0000, memSize: 16, data: [...text] },
        { paddr: 0x8000_1000, vaddr: 0x10_0000_1000, memSize: 0x100, data: [...data] },
      ],
    );
  });

  it("gives segment data as views into the file, not copies", () => {
    const built = sample();
    const [first] = parse(built.bytes).segments;
    assert.equal(first?.data.buffer, built.bytes.buffer);
    assert.equal(first?.data.byteOffset, built.segmentData[0]);
  });

  it("keeps named, defined, representable symbols, preferring globals", () => {
    const image = parse(sample().bytes);
    assert.deepEqual(
      [...image.symbols].sort(),
      [
        ["dup", 2],
        ["fromhost", 0x8000_1008],
        ["läuft", 3],
        ["tohost", 0x8000_1000],
      ].sort(),
    );
  });

  it("reads a file that sits at an offset inside a larger buffer", () => {
    const built = sample().bytes;
    const padded = new Uint8Array(built.length + 13);
    padded.set(built, 5);
    const image = parse(padded.subarray(5, 5 + built.length));
    assert.equal(image.symbols.get("tohost"), 0x8000_1000);
    assert.deepEqual([...(image.segments[1]?.data ?? [])], [...data]);
  });

  it("accepts a position-independent executable (ET_DYN)", () => {
    assert.equal(parse(patch(sample().bytes, 16, 2, 3)).entry, 0x8000_0004);
  });

  it("accepts a file without section headers and gives no symbols", () => {
    const built = buildElf({ entry: 0n, segments: [{ paddr: 0, vaddr: 0, data: text, memSize: 16 }] });
    assert.equal(parse(built.bytes).symbols.size, 0);
  });
});

describe("isElf", () => {
  it("recognises the magic number and nothing else", () => {
    assert.equal(isElf(sample().bytes), true);
    assert.equal(isElf(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46)), true);
    assert.equal(isElf(Uint8Array.of(0x7f, 0x45, 0x4c)), false);
    assert.equal(isElf(new TextEncoder().encode("#!/bin/sh\n")), false);
    assert.equal(isElf(new Uint8Array(0)), false);
  });
});

type Built = ReturnType<typeof sample>;
/** Byte offsets of fields in the second PT_LOAD header and in the .symtab and .strtab section headers. */
const loadField = (b: Built, field: number) => b.programHeaders + 2 * 56 + field;
const symtabField = (b: Built, field: number) => b.sectionHeaders + 64 + field;
const strtabField = (b: Built, field: number) => b.sectionHeaders + 128 + field;

describe("parseElf on a bad file", () => {
  const cases: [string, (b: Built) => Uint8Array, RegExp][] = [
    ["an empty file", () => new Uint8Array(0), /not an ELF file/],
    ["a text file", () => new TextEncoder().encode("kernel image"), /not an ELF file/],
    ["a 32-bit ELF", (b) => patch(b.bytes, 4, 1, 1), /not a 64-bit/],
    ["a short 32-bit ELF", (b) => patch(b.bytes.slice(0, 52), 4, 1, 1), /not a 64-bit/],
    ["a big-endian ELF", (b) => patch(b.bytes, 5, 1, 2), /not a little-endian/],
    ["an x86-64 ELF", (b) => patch(b.bytes, 18, 2, 62), /not a RISC-V .*e_machine is 62/],
    ["an object file", (b) => patch(b.bytes, 16, 2, 1), /object file.*link it first/],
    ["a core dump", (b) => patch(b.bytes, 16, 2, 4), /not an executable \(e_type is 4\)/],
    ["a truncated header", (b) => b.bytes.slice(0, 40), /truncated ELF header/],
    ["truncated program headers", (b) => b.bytes.slice(0, 64 + 56 + 10), /truncated program headers/],
    ["no program headers", (b) => patch(b.bytes, 56, 2, 0), /no program headers/],
    ["65535 program headers", (b) => patch(b.bytes, 56, 2, 0xffff), /extended numbering/],
    ["a bad program header size", (b) => patch(b.bytes, 54, 2, 32), /program header size is 32/],
    ["a huge program header offset", (b) => patch(b.bytes, 32, 8, 1n << 62n), /offset .*2\^53/],
    ["only non-loadable segments", (b) => onlyNotes(b.bytes), /no loadable \(PT_LOAD\)/],
    ["file size above memory size", (b) => patch(b.bytes, loadField(b, 40), 8, 4), /exceeds its memory size/],
    ["segment data past the end", (b) => patch(b.bytes, loadField(b, 8), 8, 1 << 20), /truncated segment 2/],
    ["a huge segment size", (b) => patch(b.bytes, loadField(b, 40), 8, 1n << 60n), /memory size .*2\^53/],
    ["a segment ending past 2^53", (b) => patch(b.bytes, loadField(b, 24), 8, 2 ** 53 - 8), /beyond 2\^53/],
    ["an entry point above 2^53", (b) => patch(b.bytes, 24, 8, 0xffff_ffff_8000_0000n), /entry point/],
    ["truncated section headers", (b) => b.bytes.slice(0, b.sectionHeaders + 100), /truncated section/],
    ["a bad section header size", (b) => patch(b.bytes, 58, 2, 40), /section header size is 40/],
    ["a bad symbol size", (b) => patch(b.bytes, symtabField(b, 56), 8, 16), /symbol size is 16/],
    ["a ragged symbol table", (b) => patch(b.bytes, symtabField(b, 32), 8, 30), /not a multiple of 24/],
    [
      "a symbol table past the end",
      (b) => patch(b.bytes, symtabField(b, 24), 8, 1e6),
      /truncated symbol table/,
    ],
    ["a missing string table", (b) => patch(b.bytes, symtabField(b, 40), 4, 7), /string table 7/],
    [
      "a string table past the end",
      (b) => patch(b.bytes, strtabField(b, 32), 8, 1e6),
      /truncated symbol string/,
    ],
    [
      "a name past the string table",
      (b) => patch(b.bytes, b.symtab + 6 * 24, 4, 5000),
      /symbol name at 5000/,
    ],
    ["an unterminated last name", (b) => unterminateLastName(b), /runs past the string table/],
  ];
  for (const [name, damage, problem] of cases) {
    it(`rejects ${name}`, () => assertRejects(damage(sample()), problem));
  }
});

/** Turns every program header into PT_NOTE. */
function onlyNotes(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < 3; i++) patch(bytes, 64 + i * 56, 4, PT_NOTE);
  return bytes;
}

/** Shrinks the string table by one byte so the last name loses its terminating NUL. */
function unterminateLastName(built: Built): Uint8Array {
  const sizeField = strtabField(built, 32);
  const size = new DataView(built.bytes.buffer).getUint32(sizeField, true);
  return patch(built.bytes, sizeField, 8, size - 1);
}

describe("parseElf on damaged input", () => {
  it("either parses or throws UserError, whatever bytes are changed or cut off", () => {
    const original = sample().bytes;
    const mutation = fc.record({
      offset: fc.nat(original.length - 1),
      value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0xff, 0x80, 0x7f)),
      width: fc.constantFrom(1, 8),
    });
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 8 }), fc.nat(original.length), (mutations, length) => {
        const bytes = original.slice(0, length);
        for (const { offset, value, width } of mutations) bytes.fill(value, offset, offset + width);
        try {
          parse(bytes);
        } catch (error) {
          if (!(error instanceof UserError)) throw error;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
