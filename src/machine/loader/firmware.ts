/**
 * M-mode firmware (`--bios FILE`, e.g. OpenSBI): a raw binary that runs from the start of RAM, or a
 * RISC-V ELF64 that loads and starts there (fw_dynamic.elf). Anything recognisably else is refused with
 * what it looks like: copied raw into RAM it would only trap.
 */
import { UserError } from "../../util/errors.js";
import { isElf, parseElf } from "./elf.js";
import { flattenElf, isLinuxImage } from "./linux-image.js";
import { describeNonCode } from "./sniff.js";

/** The firmware's bytes as they must lie from `ramBase` (BSS included, so nothing is put over it). */
export function firmwareImage(
  bytes: Uint8Array,
  fileName: string,
  ramBase: number,
  ramSize: number,
): Uint8Array {
  const fail = (why: string): never => {
    throw new UserError(`${fileName}: ${why}`);
  };
  if (isElf(bytes)) {
    // parseElf refuses ELF32 and other machines with the reason.
    const image = flattenElf(parseElf(bytes, fileName), ramBase, ramSize, fileName);
    const start = `0x${ramBase.toString(16)}`;
    if (image.textOffset !== 0) fail(`firmware must load at the start of RAM (${start})`);
    if (image.entryOffset !== 0) fail(`firmware must start at the start of RAM (${start})`);
    const placed = new Uint8Array(image.imageSize);
    placed.set(image.data);
    return placed;
  }
  if (isLinuxImage(bytes)) fail("a RISC-V Linux Image, not firmware (give it as --kernel)");
  const looksLike = describeNonCode(bytes);
  if (looksLike !== null) fail(`not RISC-V firmware: it looks like ${looksLike}`);
  return bytes;
}
