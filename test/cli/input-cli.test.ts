/**
 * Hostile input to `vireo run`, found by scripts/probe-cli.js: every case must end with one line on
 * stderr, status 2, and no stack trace, quickly (a hang is killed and fails the test).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFdt } from "../../src/machine/fdt/parser.js";
import { after, describe, test } from "../support/test.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const demo = join(root, "demo/hello.elf");
const scratch = mkdtempSync(join(tmpdir(), "vireo-input-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const TIMEOUT = 60_000;
/** A probe that does not answer in this time hangs (a FIFO open, /dev/zero read whole). */
const HANG_MS = 20_000;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI, killed after HANG_MS so a hang fails the test instead of the suite. */
function vireo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [main, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), HANG_MS);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      done({ status, signal, stdout, stderr });
    });
  });
}

function assertUserError(r: Run, pattern: RegExp, what = ""): void {
  const context = `${what}: status ${r.status} signal ${r.signal}, stderr: ${r.stderr}`;
  assert.equal(r.status, 2, context);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, context);
  assert.match(lines[0] as string, /^vireo: /, context);
  assert.match(lines[0] as string, pattern, context);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, context);
}

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

/** A minimal RISC-V Linux Image header: enough for --dump-dtb. */
function fakeImage(): Uint8Array {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, 1 << 20, true);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  return bytes;
}

const image = file("Image", fakeImage());
const dtb = join(scratch, "out.dtb");
const dir = join(scratch, "a-directory");
mkdirSync(dir);
const fifo = join(scratch, "fifo");
const hasFifo = spawnSync("mkfifo", [fifo]).status === 0;
const missing = join(scratch, "no/such/dir/file");
/** A riscv64 Linux boot that ends after writing the device tree (to `dtb` unless --dump-dtb is given). */
const linux = (...args: string[]) =>
  vireo(["run", "--kernel", image, ...(args.includes("--dump-dtb") ? [] : ["--dump-dtb", dtb]), ...args]);
const bare = (...args: string[]) => vireo(["run", "--bios", "none", "--max-insns", "100000", ...args]);
/** x86_64 runs never reach KVM: everything here is refused before, or at a device that does not exist. */
const x86 = (...args: string[]) =>
  vireo(["run", "--arch", "x86_64", ...args], { VIREO_KVM_DEVICE: join(scratch, "no-kvm") });

describe("guest files are checked before they are read", () => {
  const bad: [string, RegExp][] = [
    ["/dev/zero", /a character device, not a regular file/],
    [dir, /a directory, not a regular file/],
    [missing, /no such file or directory \(ENOENT\)/],
    [file("empty", ""), /is empty/],
  ];
  if (hasFifo) bad.push([fifo, /a FIFO, not a regular file/]);

  test("--kernel, --initrd and --bios on riscv64", { timeout: TIMEOUT * 4 }, async () => {
    for (const [path, pattern] of bad) {
      assertUserError(await linux("--initrd", path), new RegExp(`initrd '[^']*': ${pattern.source}`), path);
      assertUserError(await linux("--bios", path), new RegExp(`firmware '[^']*': ${pattern.source}`), path);
      assertUserError(await bare("--kernel", path), new RegExp(`kernel '[^']*': ${pattern.source}`), path);
    }
  });

  test("--kernel and --initrd on x86_64", { timeout: TIMEOUT * 4 }, async () => {
    for (const [path, pattern] of bad) {
      assertUserError(await x86("--kernel", path), new RegExp(`kernel '[^']*': ${pattern.source}`), path);
    }
    const kernel = file("k.bzImage", "anything: the initrd is read first");
    assertUserError(
      await x86("--kernel", kernel, "--initrd", "/dev/zero"),
      /initrd '\/dev\/zero': a character/,
    );
  });

  test("a file larger than guest RAM is refused with both sizes", { timeout: TIMEOUT }, async () => {
    // Sparse: 40 MiB that take no disk space.
    const big = join(scratch, "big");
    writeFileSync(big, "");
    spawnSync("truncate", ["-s", "40M", big]);
    const sizes = /40 MiB \(41943040 bytes\) does not fit in 32 MiB of guest RAM/;
    assertUserError(await bare("--kernel", big, "--memory", "32M"), sizes);
    assertUserError(await linux("--initrd", big, "--memory", "32M"), sizes);
    assertUserError(await linux("--bios", big, "--memory", "32M"), sizes);
    assertUserError(await x86("--kernel", big, "--memory", "32M"), sizes);
  });
});

describe("--memory: every size the flag takes either works or is refused when parsed", () => {
  test("riscv64: above 3G is refused, as are the sizes near 2^32", { timeout: TIMEOUT }, async () => {
    for (const size of ["3073M", "4095M", "4G", "4097M", "1P", "9007199254740991"]) {
      assertUserError(await bare("--kernel", demo, "--memory", size), /--memory .*from 1M to 3G/, size);
    }
    assertUserError(await bare("--kernel", demo, "--memory", "2G1"), /invalid size/);
  });

  test("riscv64: the device tree of a 3 GiB guest says 3 GiB", { timeout: TIMEOUT }, async () => {
    const r = await linux("--memory", "3G");
    assert.equal(r.status, 0, r.stderr);
    const memory = parseFdt(readFileSync(dtb)).children.find((n) => n.name.startsWith("memory@"));
    const reg = memory?.props.get("reg");
    assert.ok(reg !== undefined);
    const view = new DataView(reg.buffer, reg.byteOffset, reg.byteLength);
    assert.equal(view.getBigUint64(0), 0x8000_0000n);
    assert.equal(view.getBigUint64(8), 3n * 2n ** 30n);
  });
});

describe("--max-insns: the accepted range and the message agree", () => {
  test("1 to 2^53 - 1 are accepted", { timeout: TIMEOUT }, async () => {
    for (const n of ["1", "9007199254740991"]) {
      const r = await vireo(["run", "--bios", "none", "--kernel", demo, "--max-insns", n]);
      assert.ok(r.status === 0 || r.status === 124, `${n}: ${r.status} ${r.stderr}`);
    }
  });

  test("everything else is refused, naming the range", { timeout: TIMEOUT }, async () => {
    for (const n of ["9007199254740992", "9007199254740993", "1e30", "-1", "0", "1.5", "0x10", " 5", "1e3"]) {
      assertUserError(
        await vireo(["run", "--bios", "none", "--kernel", demo, "--max-insns", n]),
        /--max-insns must be a whole number from 1 to 9007199254740991 \(2\^53 - 1\), got '/,
        n,
      );
    }
    assertUserError(
      await vireo(["run", "--bios", "none", "--kernel", demo, "--max-insns="]),
      /needs a value/,
    );
  });
});

describe("--dump-dtb to a place that cannot be written", () => {
  test("a missing directory, /dev/full, a directory, a FIFO nobody reads", { timeout: TIMEOUT }, async () => {
    assertUserError(await linux("--dump-dtb", missing), /--dump-dtb: cannot write .*\(ENOENT\)/);
    assertUserError(await linux("--dump-dtb", "/dev/full"), /--dump-dtb: cannot write .*\(ENOSPC\)/);
    assertUserError(await linux("--dump-dtb", dir), /--dump-dtb: cannot write .*\(EISDIR\)/);
    if (hasFifo)
      assertUserError(await linux("--dump-dtb", fifo), /--dump-dtb: cannot write .*FIFO nobody reads/);
  });

  test("a FIFO with a reader gets the device tree", { timeout: TIMEOUT }, async (t) => {
    if (!hasFifo) return t.skip("mkfifo is not available");
    const piped = join(scratch, "piped-fifo");
    spawnSync("mkfifo", [piped]);
    // This process is the reader: a non-blocking open returns at once, and the DTB fits in the pipe.
    const fd = openSync(piped, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const r = await linux("--dump-dtb", piped);
      assert.equal(r.status, 0, r.stderr);
      const got = Buffer.alloc(65536);
      const n = readSync(fd, got);
      assert.ok(n > 40, `read ${n} bytes`);
      assert.equal(got.readUInt32BE(0), 0xd00dfeed);
      assert.equal(got.readUInt32BE(4), n, "the whole blob (totalsize) came through");
    } finally {
      closeSync(fd);
    }
  });

  test("a read-only file system", { timeout: TIMEOUT }, async (t) => {
    // Root ignores file modes, so a file that is read-only for everyone is one in /proc.
    if (!existsSync("/proc/version")) return t.skip("no /proc/version");
    const r = await linux("--dump-dtb", "/proc/version");
    assertUserError(r, /--dump-dtb: cannot write '\/proc\/version': /);
  });

  test("a read-only file, when not root", { timeout: TIMEOUT }, async (t) => {
    if (process.getuid?.() === 0) return t.skip("root writes read-only files");
    const ro = file("read-only.dtb", "");
    chmodSync(ro, 0o444);
    assertUserError(await linux("--dump-dtb", ro), /--dump-dtb: cannot write .*\(EACCES\)/);
  });
});

describe("--vsock uds=PATH", () => {
  test("a path longer than sun_path holds is refused before binding", { timeout: TIMEOUT }, async () => {
    const long = join(scratch, "s".repeat(108 - scratch.length));
    assert.equal(Buffer.byteLength(long), 109);
    assertUserError(await linux("--vsock", `uds=${long}`), /at most 107 bytes, this one has 109/);
    assert.equal(existsSync(long.slice(0, 107)), false, "no truncated socket left behind");
    const fits = join(scratch, "f".repeat(106 - scratch.length));
    assert.equal(Buffer.byteLength(fits), 107);
    const r = await linux("--vsock", `uds=${fits}`);
    assert.equal(r.status, 0, r.stderr);
  });

  test("a missing directory is 'no such directory'", { timeout: TIMEOUT }, async () => {
    assertUserError(
      await linux("--vsock", `uds=${missing}`),
      new RegExp(`cannot listen on '.*': no such directory '${dirname(missing)}'`),
    );
    assertUserError(await linux("--vsock", `uds=${join(image, "s.sock")}`), /'.*Image' is not a directory/);
  });

  test("x86_64 takes --vsock too: the same CID check", { timeout: TIMEOUT }, async () => {
    assertUserError(await x86("--kernel", image, "--vsock", "cid=2"), /--vsock cid=2/);
  });
});

describe("firmware and kernels that are not RISC-V code", () => {
  const x86Elf = new Uint8Array(readFileSync(demo));
  new DataView(x86Elf.buffer).setUint16(18, 62, true); // EM_X86_64
  const elf32 = new Uint8Array(readFileSync(demo));
  elf32[4] = 1; // ELFCLASS32
  const gzip = new Uint8Array(4096);
  gzip.set([0x1f, 0x8b, 0x08]);
  const bz = new Uint8Array(4096);
  bz.set([0x48, 0x64, 0x72, 0x53], 0x202);
  const pe = new Uint8Array(4096);
  pe.set([0x4d, 0x5a]);
  const cpio = `070701${"0".repeat(200)}`;
  const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new Uint8Array(100)]);

  test("--bios: ELF of another machine or class, known non-firmware formats", {
    timeout: TIMEOUT * 2,
  }, async () => {
    for (const [name, bytes, pattern] of [
      ["x86.elf", x86Elf, /not a RISC-V ELF file \(e_machine is 62/],
      ["elf32", elf32, /not a 64-bit ELF file/],
      ["gz", gzip, /not RISC-V firmware: it looks like a gzip-compressed file/],
      ["bz", bz, /not RISC-V firmware: it looks like an x86 bzImage/],
      ["pe", pe, /not RISC-V firmware: it looks like a PE executable/],
      ["cpio", cpio, /not RISC-V firmware: it looks like a cpio archive/],
      ["zip", zip, /not RISC-V firmware: it looks like a zip archive/],
      ["Image-as-bios", fakeImage(), /a RISC-V Linux Image, not firmware \(give it as --kernel\)/],
    ] as const) {
      assertUserError(await linux("--bios", file(name, bytes)), pattern, name);
    }
  });

  test("--bios: a RISC-V ELF firmware must load and start at the start of RAM", {
    timeout: TIMEOUT,
  }, async () => {
    const elf = new Uint8Array(readFileSync(demo));
    new DataView(elf.buffer).setBigUint64(24, 0x8000_0010n, true); // entry point
    assertUserError(
      await linux("--bios", file("late-entry.elf", elf)),
      /firmware must start at the start of RAM/,
    );
  });

  test("--bios: a raw binary is still accepted", { timeout: TIMEOUT }, async () => {
    const r = await linux("--bios", file("raw-fw.bin", new Uint8Array(8192).fill(0x13)));
    assert.equal(r.status, 0, r.stderr);
  });

  test("--kernel, bare metal and Linux: known non-code formats", { timeout: TIMEOUT * 2 }, async () => {
    assertUserError(
      await bare("--kernel", file("k.gz", gzip)),
      /not a bare-metal program: it looks like a gzip/,
    );
    assertUserError(await bare("--kernel", file("k.cpio", cpio)), /it looks like a cpio archive/);
    assertUserError(
      await vireo(["run", "--kernel", file("Image.gz", gzip), "--dump-dtb", dtb]),
      /not a RISC-V kernel: it looks like a gzip-compressed file \(decompress it first\)/,
    );
    assertUserError(await vireo(["run", "--kernel", file("bz2", bz), "--dump-dtb", dtb]), /x86 bzImage/);
  });
});

const OPENSBI_ELF = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.elf";

test("--bios: a RISC-V ELF firmware (OpenSBI's fw_dynamic.elf) is loaded, not copied raw", {
  timeout: TIMEOUT,
}, async (t) => {
  if (!existsSync(OPENSBI_ELF)) return t.skip(`${OPENSBI_ELF} not installed (apt-get install opensbi)`);
  // OpenSBI prints its banner before it jumps to the (fake) kernel; the instruction limit ends the run.
  const r = await vireo(["run", "--bios", OPENSBI_ELF, "--kernel", image, "--max-insns", "20000000"]);
  assert.equal(r.status, 124, r.stderr);
  assert.match(r.stdout, /OpenSBI/);
});

test("x86_64 --kernel: a RISC-V Image or a compressed file is named", { timeout: TIMEOUT }, async () => {
  assertUserError(
    await x86("--kernel", image),
    /a RISC-V Linux Image, not an x86 kernel \(boot it with --arch riscv64\)/,
  );
  const gzip = new Uint8Array(4096);
  gzip.set([0x1f, 0x8b, 0x08]);
  assertUserError(
    await x86("--kernel", file("vmlinuz.gz", gzip)),
    /not an x86 Linux bzImage .*: it looks like a gzip/,
  );
});
