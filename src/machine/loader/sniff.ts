/**
 * Recognising files that are surely not RISC-V code. A raw binary (firmware, a bare-metal program) has
 * no header, so it cannot be told from junk; but archives, compressed files, device trees and other
 * machines' executables have magic numbers, and loading one of them by mistake should be an error that
 * says what the file is, not a guest that traps forever.
 */

/** Magic bytes at an offset; every part must match. */
interface Magic {
  parts: readonly { at: number; bytes: readonly number[] }[];
  what: string;
}

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const at0 = (bytes: readonly number[], what: string): Magic => ({ parts: [{ at: 0, bytes }], what });
const DECOMPRESS = "(decompress it first)";

// Only magics of 3 bytes or more (or 2 bytes that cannot start RISC-V code), so a raw binary that
// happens to start with them is all but impossible.
const MAGICS: readonly Magic[] = [
  at0([0x1f, 0x8b, 0x08], `a gzip-compressed file ${DECOMPRESS}`),
  at0([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], `an xz-compressed file ${DECOMPRESS}`),
  at0([0x28, 0xb5, 0x2f, 0xfd], `a zstd-compressed file ${DECOMPRESS}`),
  {
    parts: [
      { at: 0, bytes: ascii("BZh") },
      { at: 4, bytes: [0x31, 0x41, 0x59, 0x26, 0x53, 0x59] },
    ],
    what: `a bzip2-compressed file ${DECOMPRESS}`,
  },
  at0([0x04, 0x22, 0x4d, 0x18], `an lz4-compressed file ${DECOMPRESS}`),
  at0([0x02, 0x21, 0x4c, 0x18], `an lz4-compressed file ${DECOMPRESS}`),
  at0(ascii("07070"), "a cpio archive (an initramfs? give it as --initrd)"),
  at0(ascii("PK\x03\x04"), "a zip archive"),
  at0([0xd0, 0x0d, 0xfe, 0xed], "a device tree blob"),
  { parts: [{ at: 257, bytes: ascii("ustar") }], what: "a tar archive" },
  { parts: [{ at: 0x202, bytes: ascii("HdrS") }], what: "an x86 bzImage" },
];

/** A RISC-V Linux Image also starts with "MZ" when it has an EFI stub; its own magic is at 56. */
const RISCV_IMAGE_MAGIC = ascii("RSC\x05");

const matchesAt = (bytes: Uint8Array, at: number, magic: readonly number[]) =>
  bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);

/**
 * What the file is when it is recognisably not RISC-V code ("a gzip-compressed file", "an x86
 * bzImage"...), else null. ELF files are not judged here: the ELF loader checks their machine and class.
 */
export function describeNonCode(bytes: Uint8Array): string | null {
  for (const m of MAGICS) if (m.parts.every((p) => matchesAt(bytes, p.at, p.bytes))) return m.what;
  if (matchesAt(bytes, 0, ascii("MZ")) && !matchesAt(bytes, 56, RISCV_IMAGE_MAGIC)) {
    return "a PE executable (Windows or UEFI), not RISC-V code";
  }
  return null;
}
