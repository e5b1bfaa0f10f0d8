/**
 * The x86 Linux boot image (Documentation/arch/x86/boot.rst): a real-mode setup part whose header says how
 * to load the protected-mode kernel after it. We use the 64-bit entry point, so the header must be at
 * least version 2.12 and announce XLF_KERNEL_64.
 */
import { UserError } from "../../util/errors.js";
import { isLinuxImage } from "../loader/linux-image.js";
import { describeNonCode } from "../loader/sniff.js";

export interface BzImage {
  /** Protocol version, e.g. 0x20f. */
  version: number;
  /** Number of 512-byte setup sectors after the boot sector. */
  setupSects: number;
  /** The setup header bytes (file offsets 0x1f1 up to its end), copied into boot_params. */
  setupHeader: Uint8Array;
  /** The protected-mode kernel (loaded at `loadAddress`); the 64-bit entry is at +0x200. */
  kernel: Uint8Array;
  /** Where `kernel` goes: 1 MiB when relocatable, else the preferred address. */
  loadAddress: number;
  /** Bytes the kernel needs from its load address while decompressing and starting (≥ its size). */
  initSize: number;
  /** Highest address the initrd may occupy (inclusive). */
  initrdAddrMax: number;
  /** Longest command line the kernel accepts, without the NUL. */
  cmdlineSize: number;
  relocatable: boolean;
}

/** Setup header offsets (boot.rst). */
export const HDR = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;

const LOADED_HIGH = 0x01;
const XLF_KERNEL_64 = 0x01;
export const MIN_VERSION = 0x020c;

export function isBzImage(bytes: Uint8Array): boolean {
  return (
    bytes.length > 0x206 && String.fromCharCode(...bytes.subarray(HDR.header, HDR.header + 4)) === "HdrS"
  );
}

export function parseBzImage(bytes: Uint8Array, fileName: string): BzImage {
  const fail = (why: string): never => {
    throw new UserError(`${fileName}: ${why}`);
  };
  if (!isBzImage(bytes)) {
    const elf = bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c;
    if (elf) return fail("an ELF file, not a bzImage");
    if (isLinuxImage(bytes))
      return fail("a RISC-V Linux Image, not an x86 kernel (boot it with --arch riscv64)");
    const looksLike = describeNonCode(bytes);
    const what = looksLike === null ? "" : `: it looks like ${looksLike}`;
    return fail(`not an x86 Linux bzImage (no "HdrS" at offset 0x202)${what}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(HDR.version, true);
  const hex = (n: number) => `0x${n.toString(16)}`;
  if (version < MIN_VERSION) {
    fail(`boot protocol ${hex(version)} is too old (the 64-bit entry needs ${hex(MIN_VERSION)})`);
  }
  const headerEnd = HDR.jump + 2 + (bytes[HDR.jump + 1] as number);
  if (bytes.length < Math.max(headerEnd, HDR.initSize + 4)) fail("truncated setup header");
  if (((bytes[HDR.loadflags] as number) & LOADED_HIGH) === 0)
    fail("a zImage (not loaded high); need a bzImage");
  if ((v.getUint16(HDR.xloadflags, true) & XLF_KERNEL_64) === 0)
    fail("no 64-bit entry point (XLF_KERNEL_64)");
  const setupSects = (bytes[HDR.setupSects] as number) || 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (bytes.length <= kernelOffset) fail(`truncated: no kernel after ${setupSects} setup sectors`);
  const kernel = bytes.subarray(kernelOffset);
  const relocatable = (bytes[HDR.relocatableKernel] as number) !== 0;
  const prefAddress = Number(v.getBigUint64(HDR.prefAddress, true));
  const loadAddress = relocatable ? 0x100000 : prefAddress;
  if (loadAddress < 0x100000 || loadAddress % 4096 !== 0 || loadAddress > 2 ** 32) {
    fail(`cannot load a non-relocatable kernel at ${hex(loadAddress)}`);
  }
  return {
    version,
    setupSects,
    setupHeader: bytes.slice(HDR.setupSects, headerEnd),
    kernel,
    loadAddress,
    initSize: Math.max(v.getUint32(HDR.initSize, true), kernel.length),
    initrdAddrMax: v.getUint32(HDR.initrdAddrMax, true) || 0x37ffffff,
    cmdlineSize: v.getUint32(HDR.cmdlineSize, true) || 255,
    relocatable,
  };
}
