import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const demo = join(root, "demo/hello.elf");
const scratch = mkdtempSync(join(tmpdir(), "vireo-cli-"));

function vireo(...args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Bad input must end with exactly one line on stderr, status 2, and no stack trace. */
function assertUserError(r: ReturnType<typeof vireo>, pattern: RegExp) {
  assert.equal(r.status, 2, `status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0] as string, /^vireo: /);
  assert.match(lines[0] as string, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
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
    const r = vireo("run", "--kernel", demo, "--max-insns", "1000");
    assert.equal(r.status, 124);
    assert.match(r.stderr, /instruction limit/);
  });

  test("a missing kernel file", () => {
    assertUserError(vireo("run", "--kernel", join(scratch, "nope.elf")), /cannot read kernel .*ENOENT/);
  });

  test("an empty kernel file", () => {
    assertUserError(vireo("run", "--kernel", file("empty.bin", "")), /empty/);
  });

  test("a truncated ELF", () => {
    const elf = readFileSync(demo);
    assertUserError(
      vireo("run", "--kernel", file("cut.elf", elf.subarray(0, 40))),
      /truncated|too short|short/i,
    );
  });

  test("an ELF for another machine", () => {
    const elf = new Uint8Array(readFileSync(demo));
    new DataView(elf.buffer).setUint16(18, 62, true); // EM_X86_64
    assertUserError(vireo("run", "--kernel", file("x86.elf", elf)), /RISC-V/);
  });

  test("an ELF whose segment lies outside RAM", () => {
    const elf = withSegmentAt(readFileSync(demo), 0x1000);
    assertUserError(vireo("run", "--kernel", file("low.elf", elf)), /outside RAM/);
  });

  test("an unparseable or too small memory size", () => {
    assertUserError(vireo("run", "--kernel", demo, "--memory", "lots"), /--memory/);
    assertUserError(vireo("run", "--kernel", demo, "--memory", "4K"), /--memory/);
  });

  test("unknown flags, bad counts, missing values", () => {
    assertUserError(vireo("run", "--kernel", demo, "--frobnicate"), /unknown option --frobnicate/);
    assertUserError(vireo("run", "--kernel", demo, "--cpus", "0"), /--cpus/);
    assertUserError(vireo("run", "--kernel", demo, "--cpus", "two"), /--cpus/);
    assertUserError(vireo("run", "--kernel"), /--kernel needs a value/);
    assertUserError(vireo("run"), /--kernel FILE is required/);
    assertUserError(vireo("launch"), /unknown command/);
  });

  test("a raw binary that is not code traps forever and hits the instruction limit, no crash", () => {
    const r = vireo("run", "--kernel", file("zeros.bin", new Uint8Array(4096)), "--max-insns", "100000");
    assert.equal(r.status, 124, r.stderr);
  });
});
