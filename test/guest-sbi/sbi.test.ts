import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "../support/test.js";

/** The built-in SBI, checked call by call by an S-mode payload of our own (sbi.S), on two harts. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const dir = join(root, "test/guest-sbi");
const hasToolchain = spawnSync("riscv64-unknown-elf-gcc", ["--version"]).status === 0;

test("built-in SBI: BASE, DBCN, TIME, IPI, RFENCE, HSM and SRST answer as the spec says", (t) => {
  if (!hasToolchain)
    return t.skip("riscv64-unknown-elf-gcc not installed: apt-get install gcc-riscv64-unknown-elf");
  const make = spawnSync("make", ["-s", "-C", dir], { encoding: "utf8" });
  assert.equal(make.status, 0, make.stderr);
  const r = spawnSync(
    process.execPath,
    [
      join(root, "dist/src/cli/main.js"),
      "run",
      "--kernel",
      join(dir, "build/sbi.elf"),
      "--cpus",
      "2",
      "--stats",
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /SBI-HI\nSBI-OK\n/);
  assert.match(r.stderr, /^stats: hypercalls .*hsm=5/m);
  assert.match(r.stderr, /^stats: interrupts .*ssi=1/m);
  assert.match(r.stderr, /^stats: interrupts .*sti=1/m);
});
