import { UserError } from "../../util/errors.js";
import type { ElfImage } from "./elf.js";

/** A Linux RISC-V `Image` (Documentation/arch/riscv/boot-image-header.rst). */
export interface LinuxImage {
  /** Where the image must sit relative to the start of RAM (usually 2 MiB on RV64). */
  textOffset: number;
  /** Bytes the kernel occupies once running, BSS included (at least the file size). */
  imageSize: number;
  data: Uint8Array;
  /** Where execution starts, from the start of the image (0 for Linux Images). */
  entryOffset: number;
  /** For payloads linked at a fixed address (ELF): the image cannot move from ramBase + textOffset. */
  fixed: boolean;
}

const HEADER_BYTES = 64;
/** "RISCV\0\0\0" at offset 48 (deprecated but still written) and "RSC\x05" at offset 56. */
const MAGIC = [0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0];
const MAGIC2 = [0x52, 0x53, 0x43, 0x05];

const matches = (bytes: Uint8Array, at: number, magic: number[]) =>
  magic.every((b, i) => bytes[at + i] === b);

export function isLinuxImage(bytes: Uint8Array): boolean {
  return bytes.length >= HEADER_BYTES && (matches(bytes, 56, MAGIC2) || matches(bytes, 48, MAGIC));
}

export function parseLinuxImage(bytes: Uint8Array, fileName: string): LinuxImage {
  if (!isLinuxImage(bytes)) throw new UserError(`${fileName}: not a RISC-V Linux Image (no RSC\\x05 magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number) => {
    const hi = view.getUint32(at + 4, true);
    if (hi >= 0x20_0000) throw new UserError(`${fileName}: header field at ${at} is out of range`);
    return hi * 2 ** 32 + view.getUint32(at, true);
  };
  const textOffset = u64(8);
  const imageSize = Math.max(u64(16), bytes.length);
  if (textOffset % 4096 !== 0)
    throw new UserError(`${fileName}: text_offset 0x${textOffset.toString(16)} not page aligned`);
  return { textOffset, imageSize, data: bytes, entryOffset: 0, fixed: false };
}

/**
 * An ELF supervisor payload (a vmlinux, or a bare S-mode program) as one flat image at its lowest
 * physical address: segments copied in place, gaps and BSS zero. It must lie in RAM from `ramBase`.
 */
export function flattenElf(elf: ElfImage, ramBase: number, ramSize: number, fileName: string): LinuxImage {
  const loaded = elf.segments.filter((s) => s.memSize > 0);
  if (loaded.length === 0) throw new UserError(`${fileName}: no loadable segments`);
  const start = Math.min(...loaded.map((s) => s.paddr));
  const end = Math.max(...loaded.map((s) => s.paddr + s.memSize));
  if (start < ramBase) {
    throw new UserError(
      `${fileName}: loads at 0x${start.toString(16)}, below RAM at 0x${ramBase.toString(16)}`,
    );
  }
  // Checked before allocating: segments far apart would otherwise ask for a huge flat buffer.
  if (end > ramBase + ramSize) {
    throw new UserError(`${fileName}: segments end at 0x${end.toString(16)}, beyond RAM (see --memory)`);
  }
  if (elf.entry < start || elf.entry >= end) {
    throw new UserError(`${fileName}: entry point 0x${elf.entry.toString(16)} is outside its segments`);
  }
  const fileEnd = Math.max(...loaded.map((s) => s.paddr + s.data.length));
  const data = new Uint8Array(fileEnd - start);
  for (const s of loaded) data.set(s.data, s.paddr - start);
  return {
    textOffset: start - ramBase,
    imageSize: end - start,
    data,
    entryOffset: elf.entry - start,
    fixed: true,
  };
}
