import { UserError } from "../../util/errors.js";

/** A Linux RISC-V `Image` (Documentation/arch/riscv/boot-image-header.rst). */
export interface LinuxImage {
  /** Where the image must sit relative to the start of RAM (usually 2 MiB on RV64). */
  textOffset: number;
  /** Bytes the kernel occupies once running, BSS included (at least the file size). */
  imageSize: number;
  data: Uint8Array;
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
  return { textOffset, imageSize, data: bytes };
}
