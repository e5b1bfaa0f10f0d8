/**
 * `vireo run --arch x86_64` input errors: one line on stderr, status 2, no stack trace. Most are found
 * before /dev/kvm is touched, so they are tested everywhere.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "../support/test.js";
import { describeRun, guest, guestImages, kvmUnavailable, type Run, vireo } from "./support.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-kvm-cli-"));
const file = (name: string, bytes: Uint8Array | string) => {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
};

/** A file with a valid-looking setup header; `edit` breaks one field. */
function fakeBzImage(edit: (b: Buffer) => void = () => {}): Buffer {
  const b = Buffer.alloc(4096);
  b[0x1f1] = 1;
  b.writeUInt16LE(0xaa55, 0x1fe);
  b[0x200] = 0xeb;
  b[0x201] = 0x66;
  b.write("HdrS", 0x202, "latin1");
  b.writeUInt16LE(0x020f, 0x206);
  b[0x211] = 0x01;
  b[0x234] = 1;
  b.writeUInt16LE(1, 0x236);
  b.writeUInt32LE(255, 0x238);
  b.writeUInt32LE(0x100000, 0x260);
  edit(b);
  return b;
}

function assertUserError(r: Run, pattern: RegExp): void {
  assert.equal(r.status, 2, describeRun(r));
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, describeRun(r));
  assert.match(lines[0] as string, /^vireo: /);
  assert.match(lines[0] as string, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const run = (...args: string[]) => vireo(["run", "--arch", "x86_64", ...args]);

describe("vireo run --arch x86_64: bad input", () => {
  test("a kernel that is not a bzImage", async () => {
    assertUserError(
      await run("--kernel", file("raw.bin", Buffer.alloc(8192, 0x90))),
      /not an x86 Linux bzImage/,
    );
  });

  test("an ELF kernel that is not a 64-bit x86 PVH kernel", async () => {
    const elf = Buffer.alloc(8192);
    elf.write("\x7fELF", 0, "latin1");
    assertUserError(await run("--kernel", file("vmlinux", elf)), /not a 64-bit little-endian ELF file/);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(62, 18);
    elf.writeUInt16LE(56, 54);
    assertUserError(await run("--kernel", file("vmlinux2", elf)), /no PVH entry point/);
  });

  test("a boot protocol older than 2.12", async () => {
    const old = fakeBzImage((b) => b.writeUInt16LE(0x020a, 0x206));
    assertUserError(await run("--kernel", file("old.bzImage", old)), /boot protocol 0x20a is too old/);
  });

  test("a bzImage without a 64-bit entry", async () => {
    const no64 = fakeBzImage((b) => b.writeUInt16LE(0, 0x236));
    assertUserError(await run("--kernel", file("no64.bzImage", no64)), /XLF_KERNEL_64/);
  });

  test("a missing kernel file", async () => {
    assertUserError(await run("--kernel", join(scratch, "nope")), /cannot read kernel .*ENOENT/);
  });

  test("no --kernel: the default guest, which needs apt to fetch (an empty cache, no apt on PATH)", async () => {
    const env = { XDG_CACHE_HOME: join(scratch, "xdg"), PATH: join(scratch, "no-bin") };
    assertUserError(await vireo(["run", "--arch", "x86_64"], { env }), /vireo needs apt/);
    assertUserError(await run("--initrd", file("i0", "x")), /--initrd needs --kernel/);
  });

  test("more memory than the host has", async () => {
    assertUserError(
      await run("--kernel", file("k1", fakeBzImage()), "--memory", "900T"),
      /more than this host can give/,
    );
  });

  test("an unknown --cpu-features name", async () => {
    assertUserError(
      await run("--kernel", file("k2", fakeBzImage()), "--cpu-features", "-nosuch"),
      /unknown feature 'nosuch'/,
    );
  });

  test("riscv64-only flags", async () => {
    assertUserError(
      await run("--kernel", file("k3", fakeBzImage()), "--bios", "none"),
      /--bios is not supported/,
    );
  });

  test("--engine interpreter", async () => {
    assertUserError(
      await run("--kernel", file("k4", fakeBzImage()), "--engine", "interpreter"),
      /x86_64 guests run on KVM/,
    );
  });

  test("riscv64 refuses --engine kvm", async () => {
    assertUserError(
      await vireo(["run", "--engine", "kvm", "--bios", "none", "--kernel", "x"]),
      /riscv64 guests run on the translator or the interpreter/,
    );
  });

  test("no KVM device: names the file and the errno", async () => {
    const missing = await vireo(["run", "--arch", "x86_64", "--kernel", file("k6", fakeBzImage())], {
      env: { VIREO_KVM_DEVICE: join(scratch, "no-kvm") },
    });
    assertUserError(missing, new RegExp(`cannot open ${scratch}/no-kvm: ENOENT`));
  });
});

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();

describe("vireo run --arch x86_64: input that needs KVM to check", { skip: why }, () => {
  test("a kernel that does not fit in --memory", async () => {
    const big = fakeBzImage((b) => b.writeUInt32LE(64 * 2 ** 20, 0x260));
    assertUserError(await run("--kernel", file("big.bzImage", big), "--memory", "16M"), /use at least \d+M/);
  });

  test("an initrd that does not fit next to the kernel", async () => {
    // Smaller than RAM (a file larger than RAM is refused before it is read), too big beside the kernel.
    const initrd = file("huge-initrd", Buffer.alloc(7.5 * 2 ** 20, 1));
    assertUserError(
      await run("--kernel", guest("hello"), "--memory", "8M", "--initrd", initrd),
      /initrd does not fit/,
    );
  });
});
