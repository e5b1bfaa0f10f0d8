/**
 * A small ACPI Machine Language (AML) encoder: the subset a static DSDT needs (ACPI 6.5 §20.2):
 * name paths, package lengths, integers, strings, Name/Scope/Device, Package and Buffer objects, and
 * the resource descriptors of a _CRS ResourceTemplate (§6.4): Memory32Fixed, the extended Interrupt
 * descriptor and the end tag. Every function returns the encoded bytes of one term; a table body is the
 * concatenation of its terms. Values that AML cannot express are refused with a RangeError.
 */

const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const NAME_OP = 0x08;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82;
const ROOT_CHAR = 0x5c;
const PARENT_PREFIX = 0x5e;
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const NULL_NAME = 0x00;

/** Resource descriptor tags (large items carry a 16-bit length after the tag byte). */
const MEMORY32_FIXED = 0x86;
const EXTENDED_INTERRUPT = 0x89;
const END_TAG = 0x79;

const MAX_PKG_LENGTH = 2 ** 28 - 1;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * PkgLength for `contentLength` bytes that follow it; the encoded value counts its own bytes too. One
 * byte holds up to 63; otherwise bits 7:6 of the lead byte give 1–3 more bytes, its bits 3:0 the low
 * nibble and each further byte the next 8 bits.
 */
export function pkgLength(contentLength: number): Uint8Array {
  if (!Number.isInteger(contentLength) || contentLength < 0) {
    throw new RangeError(`AML package length ${contentLength}`);
  }
  if (contentLength + 1 <= 0x3f) return Uint8Array.of(contentLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0x0f);
      for (let i = 0; i < extra; i++) out[1 + i] = Math.floor(total / 2 ** (4 + 8 * i)) & 0xff;
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes: at most ${MAX_PKG_LENGTH}`);
}

const SEGMENT = /^[A-Z_][A-Z0-9_]{0,3}$/;

/** A NameSeg: 1–4 characters (A–Z, _, then also 0–9), padded to 4 with '_'. */
export function nameSeg(segment: string): Uint8Array {
  if (!SEGMENT.test(segment)) throw new RangeError(`AML name segment '${segment}'`);
  const padded = segment.padEnd(4, "_");
  return Uint8Array.from(padded, (c) => c.charCodeAt(0));
}

/**
 * A NameString from ASL-style text: an optional root '\' or parent '^' prefixes, then segments
 * separated by '.' ("\_SB.V000", "_HID", "^^FOO"). A lone prefix names no segment (NullName).
 */
export function nameString(path: string): Uint8Array {
  let at = 0;
  const prefix: number[] = [];
  if (path.startsWith("\\")) {
    prefix.push(ROOT_CHAR);
    at = 1;
  } else {
    while (path[at] === "^") {
      prefix.push(PARENT_PREFIX);
      at++;
    }
  }
  const rest = path.slice(at);
  const segments = rest === "" ? [] : rest.split(".").map(nameSeg);
  if (segments.length > 255) throw new RangeError(`AML name '${path}' has more than 255 segments`);
  let head: number[];
  if (segments.length === 0) head = [NULL_NAME];
  else if (segments.length === 1) head = [];
  else if (segments.length === 2) head = [DUAL_NAME_PREFIX];
  else head = [MULTI_NAME_PREFIX, segments.length];
  return concat([Uint8Array.from([...prefix, ...head]), ...segments]);
}

/** An Integer constant in its shortest encoding (Zero, One, Byte, Word, DWord or QWord). */
export function integer(value: number | bigint): Uint8Array {
  const n = BigInt(value);
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`AML integer ${value} is not a safe integer (use a bigint)`);
  }
  if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`AML integer ${value} is not a u64`);
  if (n === 0n) return Uint8Array.of(ZERO_OP);
  if (n === 1n) return Uint8Array.of(ONE_OP);
  const sized = (prefix: number, bytes: number) => {
    const out = new Uint8Array(1 + bytes);
    out[0] = prefix;
    for (let i = 0; i < bytes; i++) out[1 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  if (n <= 0xffn) return sized(BYTE_PREFIX, 1);
  if (n <= 0xffffn) return sized(WORD_PREFIX, 2);
  if (n <= 0xffff_ffffn) return sized(DWORD_PREFIX, 4);
  return sized(QWORD_PREFIX, 8);
}

/** A String constant: ASCII 0x01–0x7f, NUL-terminated. */
export function string(text: string): Uint8Array {
  const out = new Uint8Array(text.length + 2);
  out[0] = STRING_PREFIX;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 1 || c > 0x7f) throw new RangeError(`AML string '${text}': only ASCII 0x01-0x7f`);
    out[1 + i] = c;
  }
  return out;
}

/** Name(path, value): binds a data object (integer, string, package, buffer) to a name. */
export function name(path: string, value: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(NAME_OP), nameString(path), value]);
}

function withPkgLength(op: readonly number[], body: readonly Uint8Array[]): Uint8Array {
  const content = concat(body);
  return concat([Uint8Array.from(op), pkgLength(content.length), content]);
}

/** Scope(path) { terms }. */
export function scope(path: string, ...terms: Uint8Array[]): Uint8Array {
  return withPkgLength([SCOPE_OP], [nameString(path), ...terms]);
}

/** Device(path) { terms }. */
export function device(path: string, ...terms: Uint8Array[]): Uint8Array {
  return withPkgLength([EXT_OP_PREFIX, DEVICE_OP], [nameString(path), ...terms]);
}

/** Package() { elements }: at most 255 data objects. */
export function pkg(...elements: Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new RangeError("AML Package: at most 255 elements");
  return withPkgLength([PACKAGE_OP], [Uint8Array.of(elements.length), ...elements]);
}

/** Buffer() { bytes }, its size given as an integer constant. */
export function buffer(bytes: Uint8Array): Uint8Array {
  return withPkgLength([BUFFER_OP], [integer(bytes.length), bytes]);
}

// --- resource descriptors (_CRS) ---

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${what} 0x${value.toString(16)} does not fit in 32 bits`);
  }
  return value;
}

/** Memory32Fixed(ReadWrite|ReadOnly, base, length): a 32-bit MMIO range (large item 0x06, 9 bytes). */
export function memory32Fixed(base: number, length: number, writable = true): Uint8Array {
  const out = new Uint8Array(12);
  const v = new DataView(out.buffer);
  out[0] = MEMORY32_FIXED;
  v.setUint16(1, 9, true);
  out[3] = writable ? 1 : 0;
  v.setUint32(4, u32(base, "Memory32Fixed base"), true);
  v.setUint32(8, u32(length, "Memory32Fixed length"), true);
  if (base + length > 2 ** 32) throw new RangeError("Memory32Fixed range ends beyond 4 GiB");
  return out;
}

export interface InterruptOptions {
  /** Edge-triggered (else level). */
  edge: boolean;
  /** Active-low (else active-high). */
  activeLow: boolean;
  /** Shared with other devices (else exclusive). */
  shared: boolean;
  /** Can wake the system. */
  wakeCapable?: boolean;
  /** ResourceProducer (else ResourceConsumer, what a device's _CRS says). */
  producer?: boolean;
}

/**
 * Interrupt(ResourceConsumer, Level|Edge, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis }: the
 * extended interrupt descriptor (large item 0x09), no resource source.
 */
export function interrupt(options: InterruptOptions, ...gsis: number[]): Uint8Array {
  if (gsis.length < 1 || gsis.length > 255) throw new RangeError("Interrupt: 1 to 255 interrupt numbers");
  const length = 2 + 4 * gsis.length;
  const out = new Uint8Array(3 + length);
  const v = new DataView(out.buffer);
  out[0] = EXTENDED_INTERRUPT;
  v.setUint16(1, length, true);
  out[3] =
    (options.producer ? 0 : 1) |
    (options.edge ? 1 << 1 : 0) |
    (options.activeLow ? 1 << 2 : 0) |
    (options.shared ? 1 << 3 : 0) |
    (options.wakeCapable ? 1 << 4 : 0);
  out[4] = gsis.length;
  gsis.forEach((gsi, i) => {
    v.setUint32(5 + 4 * i, u32(gsi, "Interrupt number"), true);
  });
  return out;
}

/** ResourceTemplate() { descriptors }: a Buffer of the descriptors and an end tag (checksum 0: none). */
export function resourceTemplate(...descriptors: Uint8Array[]): Uint8Array {
  return buffer(concat([...descriptors, Uint8Array.of(END_TAG, 0)]));
}
