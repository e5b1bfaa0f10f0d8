/**
 * ELF64 parsing for RISC-V guest programs (firmware, kernels, test binaries).
 *
 * Only what loading needs: the entry point, the PT_LOAD segments, and the symbols (test programs talk to
 * the host through `tohost`/`fromhost`, which are found by name). The file comes from the user, so every
 * offset is checked against its length and every problem is a UserError that names the file. 64-bit
 * fields are read as two 32-bit halves and must stay below 2^53 to fit in a number.
 */
import { UserError } from "../../util/errors.js";

export interface ElfSegment {
  paddr: number;
  vaddr: number;
  /** The segment's bytes in the file (a view, not a copy); memSize - data.length more bytes are zero. */
  data: Uint8Array;
  memSize: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  symbols: Map<string, number>;
}

const EM_RISCV = 243;
const ET_REL = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHN_UNDEF = 0;
const STT_SECTION = 3;
const STT_FILE = 4;
/** e_phnum value meaning "the real count is elsewhere", used only by files with 65535+ segments. */
const PN_XNUM = 0xffff;

const HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;
const SECTION_HEADER_SIZE = 64;
const SYMBOL_SIZE = 24;

const utf8 = new TextDecoder();

export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
  );
}

export function parseElf(bytes: Uint8Array, fileName: string): ElfImage {
  const file = new ElfFile(bytes, fileName);
  checkHeader(file);
  return { entry: file.u64(24, "entry point"), segments: readSegments(file), symbols: readSymbols(file) };
}

/** Bounds-checked little-endian reads from the file, failing with messages that name it. */
class ElfFile {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    private readonly fileName: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(problem: string): never {
    throw new UserError(`${this.fileName}: ${problem}`);
  }

  /** Fails unless bytes [offset, offset + length) are all in the file. */
  require(offset: number, length: number, what: string): void {
    if (offset + length > this.bytes.length) {
      this.fail(
        `truncated ${what} (bytes ${offset}..${offset + length} of a ${this.bytes.length}-byte file)`,
      );
    }
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }

  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }

  u64(offset: number, what: string): number {
    const value = this.u64OrUndefined(offset);
    if (value === undefined) this.fail(`${what} at byte ${offset} does not fit below 2^53`);
    return value;
  }

  /** The 64-bit field as a number, or undefined when it is 2^53 or more. */
  u64OrUndefined(offset: number): number | undefined {
    const high = this.u32(offset + 4);
    return high < 0x20_0000 ? high * 2 ** 32 + this.u32(offset) : undefined;
  }
}

function checkHeader(file: ElfFile): void {
  if (!isElf(file.bytes)) file.fail("not an ELF file");
  // Class and byte order first: a 32-bit file may be shorter than an ELF64 header, and saying so is clearer.
  file.require(0, 6, "ELF header");
  if (file.u8(4) !== 2) file.fail("not a 64-bit ELF file (only ELF64 guests are supported)");
  if (file.u8(5) !== 1) file.fail("not a little-endian ELF file");
  file.require(0, HEADER_SIZE, "ELF header");
  const machine = file.u16(18);
  if (machine !== EM_RISCV) file.fail(`not a RISC-V ELF file (e_machine is ${machine}, expected 243)`);
  const type = file.u16(16);
  if (type === ET_REL) file.fail("an object file, not an executable (link it first)");
  if (type !== ET_EXEC && type !== ET_DYN) file.fail(`not an executable (e_type is ${type})`);
}

function readSegments(file: ElfFile): ElfSegment[] {
  const tableOffset = file.u64(32, "program header offset");
  const entrySize = file.u16(54);
  const count = file.u16(56);
  if (count === 0) file.fail("no program headers, so nothing to load");
  if (count === PN_XNUM) file.fail("too many program headers (extended numbering is not supported)");
  if (entrySize !== PROGRAM_HEADER_SIZE) file.fail(`program header size is ${entrySize}, expected 56`);
  file.require(tableOffset, count * entrySize, "program headers");

  const segments: ElfSegment[] = [];
  for (let i = 0; i < count; i++) {
    const at = tableOffset + i * entrySize;
    if (file.u32(at) !== PT_LOAD) continue;
    const offset = file.u64(at + 8, `segment ${i} file offset`);
    const vaddr = file.u64(at + 16, `segment ${i} virtual address`);
    const paddr = file.u64(at + 24, `segment ${i} physical address`);
    const fileSize = file.u64(at + 32, `segment ${i} file size`);
    const memSize = file.u64(at + 40, `segment ${i} memory size`);
    if (fileSize > memSize)
      file.fail(`segment ${i} file size ${fileSize} exceeds its memory size ${memSize}`);
    if (!Number.isSafeInteger(paddr + memSize)) file.fail(`segment ${i} ends beyond 2^53`);
    file.require(offset, fileSize, `segment ${i} data`);
    segments.push({ paddr, vaddr, data: file.bytes.subarray(offset, offset + fileSize), memSize });
  }
  if (segments.length === 0) file.fail("no loadable (PT_LOAD) segments");
  return segments;
}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  entrySize: number;
}

/** The section headers; none when the file has no section header table (symbols are optional). */
function readSections(file: ElfFile): Section[] {
  const tableOffset = file.u64(40, "section header offset");
  const entrySize = file.u16(58);
  const count = file.u16(60);
  if (tableOffset === 0 || count === 0) return [];
  if (entrySize !== SECTION_HEADER_SIZE) file.fail(`section header size is ${entrySize}, expected 64`);
  file.require(tableOffset, count * entrySize, "section headers");
  return Array.from({ length: count }, (_, i) => {
    const at = tableOffset + i * entrySize;
    return {
      type: file.u32(at + 4),
      offset: file.u64(at + 24, `section ${i} offset`),
      size: file.u64(at + 32, `section ${i} size`),
      link: file.u32(at + 40),
      entrySize: file.u64(at + 56, `section ${i} entry size`),
    };
  });
}

/**
 * Named, defined symbols of .symtab. Locals precede globals in the table, so letting later entries win
 * gives a global definition precedence over a local one of the same name. Symbols whose value does not
 * fit below 2^53 are left out rather than rejected: they cannot be guest physical addresses anyway.
 */
function readSymbols(file: ElfFile): Map<string, number> {
  const symbols = new Map<string, number>();
  const sections = readSections(file);
  const symtab = sections.find((section) => section.type === SHT_SYMTAB);
  if (!symtab) return symbols;
  if (symtab.entrySize !== SYMBOL_SIZE) file.fail(`symbol size is ${symtab.entrySize}, expected 24`);
  if (symtab.size % SYMBOL_SIZE !== 0) file.fail(`symbol table size ${symtab.size} is not a multiple of 24`);
  const strtab = sections[symtab.link];
  if (!strtab) file.fail(`symbol table links to string table ${symtab.link}, which does not exist`);
  file.require(symtab.offset, symtab.size, "symbol table");
  file.require(strtab.offset, strtab.size, "symbol string table");
  const names = file.bytes.subarray(strtab.offset, strtab.offset + strtab.size);

  for (let at = symtab.offset + SYMBOL_SIZE; at < symtab.offset + symtab.size; at += SYMBOL_SIZE) {
    const nameOffset = file.u32(at);
    const kind = file.u8(at + 4) & 0xf;
    const defined = file.u16(at + 6) !== SHN_UNDEF;
    const value = file.u64OrUndefined(at + 8);
    const wanted = nameOffset !== 0 && defined && kind !== STT_SECTION && kind !== STT_FILE;
    if (!wanted || value === undefined) continue;
    const end = names.indexOf(0, nameOffset);
    if (end < 0) file.fail(`symbol name at ${nameOffset} runs past the string table`);
    symbols.set(utf8.decode(names.subarray(nameOffset, end)), value);
  }
  return symbols;
}
