/**
 * Builds small ELF64 RISC-V executables byte by byte, so the parser's tests need no toolchain, and tells
 * where each structure landed so error tests can corrupt exactly one field.
 *
 * Layout: ELF header, program headers, segment data, string table, symbol table, section headers
 * (null, .symtab, .strtab). Section names are not written: the parser finds .symtab by its type.
 */

export interface SegmentSpec {
  type?: number; // PT_LOAD unless given
  paddr: number;
  vaddr: number;
  data: Uint8Array;
  memSize: number;
}

export interface SymbolSpec {
  name: string;
  value: bigint;
  /** st_info: binding << 4 | type. Global object unless given. */
  info?: number;
  /** Section index; 1 (defined) unless given, 0 means undefined. */
  section?: number;
}

export interface ElfSpec {
  entry: bigint;
  segments: SegmentSpec[];
  symbols?: SymbolSpec[]; // no section headers at all when absent
}

export interface BuiltElf {
  bytes: Uint8Array;
  programHeaders: number;
  segmentData: number[];
  strtab: number;
  symtab: number;
  sectionHeaders: number;
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STT_OBJECT = 1;
export const STT_SECTION = 3;
export const STT_FILE = 4;

const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;

const align8 = (n: number) => (n + 7) & ~7;

export function buildElf(spec: ElfSpec): BuiltElf {
  const symbols = spec.symbols;
  const programHeaders = 64;
  let end = programHeaders + spec.segments.length * 56;
  const segmentData = spec.segments.map((segment) => {
    const at = align8(end);
    end = at + segment.data.length;
    return at;
  });
  const names = stringTable(symbols?.map((symbol) => symbol.name) ?? []);
  const strtab = align8(end);
  const symtab = align8(strtab + names.bytes.length);
  const symtabSize = ((symbols?.length ?? 0) + 1) * 24; // entry 0 is the null symbol
  const sectionHeaders = symbols ? align8(symtab + symtabSize) : 0;
  const size = symbols ? sectionHeaders + 3 * 64 : align8(end);

  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // magic, ELFCLASS64, little-endian, version 1
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, 243, true); // EM_RISCV
  view.setUint32(20, 1, true);
  view.setBigUint64(24, spec.entry, true);
  view.setBigUint64(32, BigInt(programHeaders), true);
  view.setBigUint64(40, BigInt(sectionHeaders), true);
  view.setUint16(52, 64, true);
  view.setUint16(54, 56, true);
  view.setUint16(56, spec.segments.length, true);
  view.setUint16(58, 64, true);
  view.setUint16(60, symbols ? 3 : 0, true);

  spec.segments.forEach((segment, i) => {
    const at = programHeaders + i * 56;
    view.setUint32(at, segment.type ?? PT_LOAD, true);
    view.setUint32(at + 4, 7, true); // RWX
    view.setBigUint64(at + 8, BigInt(segmentData[i] as number), true);
    view.setBigUint64(at + 16, BigInt(segment.vaddr), true);
    view.setBigUint64(at + 24, BigInt(segment.paddr), true);
    view.setBigUint64(at + 32, BigInt(segment.data.length), true);
    view.setBigUint64(at + 40, BigInt(segment.memSize), true);
    view.setBigUint64(at + 48, 8n, true);
    bytes.set(segment.data, segmentData[i]);
  });

  if (symbols) {
    bytes.set(names.bytes, strtab);
    symbols.forEach((symbol, i) => {
      const at = symtab + (i + 1) * 24;
      view.setUint32(at, names.offsets[i] as number, true);
      view.setUint8(at + 4, symbol.info ?? (STB_GLOBAL << 4) | STT_OBJECT);
      view.setUint16(at + 6, symbol.section ?? 1, true);
      view.setBigUint64(at + 8, symbol.value, true);
    });
    writeSection(view, sectionHeaders + 64, SHT_SYMTAB, symtab, symtabSize, 2, 24);
    writeSection(view, sectionHeaders + 128, SHT_STRTAB, strtab, names.bytes.length, 0, 0);
  }
  return { bytes, programHeaders, segmentData, strtab, symtab, sectionHeaders };
}

function writeSection(
  view: DataView,
  at: number,
  type: number,
  offset: number,
  size: number,
  link: number,
  entrySize: number,
): void {
  view.setUint32(at + 4, type, true);
  view.setBigUint64(at + 24, BigInt(offset), true);
  view.setBigUint64(at + 32, BigInt(size), true);
  view.setUint32(at + 40, link, true);
  view.setBigUint64(at + 56, BigInt(entrySize), true);
}

/** A string table: a leading NUL (the empty name), then each name NUL-terminated. */
function stringTable(names: string[]): { bytes: Uint8Array; offsets: number[] } {
  const encoded = names.map((name) => new TextEncoder().encode(name));
  const bytes = new Uint8Array(1 + encoded.reduce((sum, name) => sum + name.length + 1, 0));
  const offsets: number[] = [];
  let at = 1;
  for (const name of encoded) {
    offsets.push(at);
    bytes.set(name, at);
    at += name.length + 1;
  }
  return { bytes, offsets };
}

/** Overwrites one little-endian field (1, 2, 4 or 8 bytes) of an ELF image in place and returns it. */
export function patch(
  bytes: Uint8Array,
  offset: number,
  size: 1 | 2 | 4 | 8,
  value: number | bigint,
): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 8) view.setBigUint64(offset, BigInt(value), true);
  else if (size === 4) view.setUint32(offset, Number(value), true);
  else if (size === 2) view.setUint16(offset, Number(value), true);
  else view.setUint8(offset, Number(value));
  return bytes;
}
