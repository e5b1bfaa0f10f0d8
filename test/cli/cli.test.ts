import assert from "node:assert/strict";

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "../support/test.js";
import { assertUserError, vireo } from "./vireo.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const demo = join(root, "demo/hello.elf");
const scratch = mkdtempSync(join(tmpdir(), "vireo-cli-"));

/** A bare-metal run: the ELF starts in M-mode with no firmware. */
function bare(...args: string[]) {
  return vireo("run", "--bios", "none", ...args);
}

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

/** Rewrites an ELF's first PT_LOAD program header so it loads at `paddr`. */
function withSegmentAt(elf: Uint8Array, paddr: number): Uint8Array {
  const copy = new Uint8Array(elf);
  const view = new DataView(copy.buffer);
  const phoff = Number(view.getBigUint64(32, true));
  const count = view.getUint16(56, true);
  for (let i = 0; i < count; i++) {
    const ph = phoff + i * 56;
    if (view.getUint32(ph, true) === 1) {
      view.setBigUint64(ph + 24, BigInt(paddr), true);
      return copy;
    }
  }
  throw new Error("no PT_LOAD in the demo ELF");
}

describe("vireo run", () => {
  test("runs the demo guest to a clean exit and prints its output and stats", () => {
    const r = vireo("run", "--arch", "riscv64", "--bios", "none", "--kernel", demo, "--stats");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Hello from a RISC-V guest/);
    assert.match(r.stderr, /^stats: instructions \d+$/m);
    assert.match(r.stderr, /^stats: mips [\d.]+$/m);
  });

  test("--max-insns ends the run with status 124", () => {
    const r = bare("--kernel", demo, "--max-insns", "1000");
    assert.equal(r.status, 124);
    assert.match(r.stderr, /instruction limit/);
  });

  test("a missing kernel file", () => {
    assertUserError(bare("--kernel", join(scratch, "nope.elf")), /cannot read kernel .*ENOENT/);
  });

  test("an empty kernel file", () => {
    assertUserError(bare("--kernel", file("empty.bin", "")), /empty/);
  });

  test("a truncated ELF", () => {
    const elf = readFileSync(demo);
    assertUserError(bare("--kernel", file("cut.elf", elf.subarray(0, 40))), /truncated|too short|short/i);
  });

  test("an ELF for another machine", () => {
    const elf = new Uint8Array(readFileSync(demo));
    new DataView(elf.buffer).setUint16(18, 62, true); // EM_X86_64
    assertUserError(bare("--kernel", file("x86.elf", elf)), /RISC-V/);
  });

  test("an ELF whose segment lies outside RAM", () => {
    const elf = withSegmentAt(readFileSync(demo), 0x1000);
    assertUserError(bare("--kernel", file("low.elf", elf)), /outside RAM/);
  });

  test("an unparseable or too small memory size", () => {
    assertUserError(bare("--kernel", demo, "--memory", "lots"), /--memory/);
    assertUserError(bare("--kernel", demo, "--memory", "4K"), /--memory/);
  });

  test("unknown flags, bad counts, missing values", () => {
    assertUserError(bare("--kernel", demo, "--frobnicate"), /unknown option --frobnicate/);
    assertUserError(bare("--kernel", demo, "--cpus", "0"), /--cpus/);
    assertUserError(bare("--kernel", demo, "--cpus", "two"), /--cpus/);
    assertUserError(bare("--kernel"), /--kernel needs a value/);
    assertUserError(bare(), /--bios none needs --kernel/);
    assertUserError(bare("--kernel", demo, "--initrd", demo), /--initrd needs a Linux boot/);
    assertUserError(vireo("launch"), /unknown command/);
  });

  test("a raw binary that is not code traps forever and hits the instruction limit, no crash", () => {
    const r = bare("--kernel", file("zeros.bin", new Uint8Array(4096)), "--max-insns", "100000");
    assert.equal(r.status, 124, r.stderr);
  });
});

/** A minimal RISC-V Linux Image: the 64-byte header (text_offset 2 MiB, image_size) and a body. */
function fakeImage(imageSize: number): Uint8Array {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, imageSize, true);
  bytes.set([0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0], 48);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  return bytes;
}

describe("vireo run, Linux boot input", () => {
  test("a kernel that is not a RISC-V Linux Image", () => {
    const bz = new Uint8Array(4096);
    bz.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS": an x86 bzImage
    assertUserError(vireo("run", "--kernel", file("bzImage", bz)), /x86 bzImage/);
    assertUserError(
      vireo("run", "--kernel", file("junk", "not a kernel at all")),
      /not a RISC-V Linux Image/,
    );
    const x86 = new Uint8Array(readFileSync(demo));
    new DataView(x86.buffer).setUint16(18, 62, true); // EM_X86_64
    assertUserError(vireo("run", "--kernel", file("x86-vmlinux", x86)), /RISC-V/);
  });

  test("an S-mode ELF whose segments lie beyond RAM (no huge allocation)", () => {
    const elf = new Uint8Array(readFileSync(demo));
    const view = new DataView(elf.buffer);
    const phoff = Number(view.getBigUint64(32, true));
    for (let i = 0; i < view.getUint16(56, true); i++) {
      const ph = phoff + i * 56;
      if (view.getUint32(ph, true) === 1) view.setBigUint64(ph + 24, 0x1_4000_0000n, true);
    }
    assertUserError(vireo("run", "--kernel", file("far.elf", elf)), /beyond RAM|below RAM|outside/);
  });

  test("--memory too small for the kernel", () => {
    const image = file("Image-big", fakeImage(48 << 20));
    assertUserError(vireo("run", "--kernel", image, "--memory", "32M"), /too small/);
  });

  test("an initrd larger than RAM allows", () => {
    const image = file("Image-small", fakeImage(1 << 20));
    const initrd = file("initrd-big", new Uint8Array(40 << 20));
    assertUserError(
      vireo("run", "--kernel", image, "--initrd", initrd, "--memory", "32M"),
      /initrd.*does not fit/,
    );
  });

  test("--dump-dtb writes the generated device tree and exits", () => {
    const out = join(scratch, "virt.dtb");
    const image = file("Image-dtb", fakeImage(1 << 20));
    const r = vireo("run", "--kernel", image, "--cpus", "2", "--append", "console=ttyS0", "--dump-dtb", out);
    assert.equal(r.status, 0, r.stderr);
    const dtb = readFileSync(out);
    assert.equal(dtb.readUInt32BE(0), 0xd00dfeed);
    assert.ok(dtb.includes(Buffer.from("console=ttyS0")));
    assert.ok(dtb.includes(Buffer.from("cpu@1")));
  });
});
