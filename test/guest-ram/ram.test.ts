import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "../support/test.js";

/**
 * riscv64 guests with RAM sizes around 2^31 bytes and the largest --memory takes (3G): a bare-metal
 * program (ram.S) finds the end of RAM by itself and uses its last page. Linux leaves RAM pages it
 * does not touch unallocated, so a 3 GiB guest costs the host a few pages.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const dir = join(root, "test/guest-ram");
const hasToolchain = spawnSync("riscv64-unknown-elf-gcc", ["--version"]).status === 0;

const SIZES: [string, number][] = [
  ["2047M", 2047 * 2 ** 20],
  ["2097148K", 2 ** 31 - 4096],
  ["2G", 2 ** 31],
  ["2097156K", 2 ** 31 + 4096],
  ["3G", 3 * 2 ** 30],
];

test("the guest finds and uses the last RAM page at sizes near 2 GiB and at 3 GiB", {
  timeout: 300_000,
}, (t) => {
  if (!hasToolchain)
    return t.skip("riscv64-unknown-elf-gcc not installed: apt-get install gcc-riscv64-unknown-elf");
  const make = spawnSync("make", ["-s", "-C", dir], { encoding: "utf8" });
  assert.equal(make.status, 0, make.stderr);
  for (const [text, bytes] of SIZES) {
    const r = spawnSync(
      process.execPath,
      [
        join(root, "dist/src/cli/main.js"),
        "run",
        "--bios",
        "none",
        "--kernel",
        join(dir, "build/ram.elf"),
        "--memory",
        text,
        "--max-insns",
        "10000000",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(r.status, 0, `--memory ${text}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.stdout, `RAM 0x${bytes.toString(16)}\n`, `--memory ${text}`);
  }
});
