/**
 * parseElf on a real executable: the cross toolchain links a tiny program and its own readelf and nm
 * say what the parser should find. Skipped, with the reason shown, where the toolchain is not installed.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseElf } from "../../src/machine/loader/elf.js";
import { it } from "../support/test.js";

const GCC = "riscv64-unknown-elf-gcc";

const PROGRAM = `
  .text
  .globl _start
_start:
  la t0, tohost
  li t1, 1
  sd t1, 0(t0)
1: j 1b
  .data
  .balign 8
  .globl tohost
tohost: .dword 0
  .globl fromhost
fromhost: .dword 0
  .bss
buffer: .space 256
`;

const missing = spawnSync(GCC, ["--version"]).error ? `${GCC} is not on PATH` : false;

const run = (tool: string, args: string[]) =>
  execFileSync(`riscv64-unknown-elf-${tool}`, args, { encoding: "utf8" });

it("agrees with readelf and nm on a linked program", { skip: missing }, () => {
  const dir = mkdtempSync(join(tmpdir(), "elf-test-"));
  try {
    const source = join(dir, "program.S");
    const elf = join(dir, "program.elf");
    writeFileSync(source, PROGRAM);
    run("gcc", [
      "-march=rv64gc",
      "-mabi=lp64d",
      "-nostdlib",
      "-static",
      "-Wl,-Ttext=0x80000000",
      source,
      "-o",
      elf,
    ]);
    const bytes = new Uint8Array(readFileSync(elf));
    const image = parseElf(bytes, elf);

    const headers = run("readelf", ["-hlW", elf]);
    assert.equal(image.entry, Number(/Entry point address:\s+(0x[0-9a-f]+)/.exec(headers)?.[1]));
    const loads = [...headers.matchAll(/^\s*LOAD\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/gm)].map((m) =>
      m.map(Number),
    );
    assert.ok(loads.length >= 2, headers);
    assert.deepEqual(
      image.segments.map((s) => [s.data.byteOffset, s.vaddr, s.paddr, s.data.length, s.memSize]),
      loads.map(([, offset, vaddr, paddr, fileSize, memSize]) => [offset, vaddr, paddr, fileSize, memSize]),
    );

    const defined = run("nm", [elf])
      .trim()
      .split("\n")
      .map((line) => line.split(" "))
      .filter(([, type]) => type !== "U");
    for (const [value, , name] of defined) {
      assert.equal(image.symbols.get(name as string), Number.parseInt(value as string, 16), name);
    }
    assert.ok(image.symbols.has("tohost") && image.symbols.has("fromhost"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
