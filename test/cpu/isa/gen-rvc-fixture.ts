/**
 * Regenerates rvc-fixture.json, the independent oracle for expandCompressed: [halfword, word] pairs where
 * the GNU assembler produced both the compressed encoding and the uncompressed one of the same case.
 *
 *   npx tsc -p tsconfig.json && node dist/test/cpu/isa/gen-rvc-fixture.js
 *
 * Needs riscv64-unknown-elf-as and -objcopy on PATH. Each case list is assembled twice with
 * -march=rv64gc, once under `.option rvc` and once under `.option norvc`; the script fails if any case did
 * not compress, so a pair can never silently be two 32-bit encodings.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type RvcCase, rvcCases } from "./rvc-cases.js";

const FIXTURE = fileURLToPath(new URL("../../../../test/cpu/isa/rvc-fixture.json", import.meta.url));

/** Assembles the lines and returns the raw .text bytes. `.option norelax` makes `.+N` targets resolve now. */
function assemble(dir: string, name: string, option: "rvc" | "norvc", lines: string[]): Uint8Array {
  const source = join(dir, `${name}.s`);
  const object = join(dir, `${name}.o`);
  const binary = join(dir, `${name}.bin`);
  writeFileSync(source, [`.option ${option}`, ".option norelax", ...lines, ""].join("\n"));
  execFileSync("riscv64-unknown-elf-as", ["-march=rv64gc", "-o", object, source]);
  execFileSync("riscv64-unknown-elf-objcopy", ["-O", "binary", "-j", ".text", object, binary]);
  return readFileSync(binary);
}

/** Splits machine code into instructions by their length bits (low two bits 11 = 32-bit). */
function splitInstructions(code: Uint8Array): { value: number; bytes: number }[] {
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const out: { value: number; bytes: number }[] = [];
  for (let at = 0; at < code.length; ) {
    const half = view.getUint16(at, true);
    const bytes = (half & 3) === 3 ? 4 : 2;
    out.push({ value: bytes === 4 ? view.getUint32(at, true) : half, bytes });
    at += bytes;
  }
  return out;
}

function buildPairs(cases: RvcCase[], dir: string): Map<number, number> {
  const compressedText = cases.map((c) => (typeof c === "string" ? c : c.compressed));
  const expandedText = cases.map((c) => (typeof c === "string" ? c : c.expanded));
  const compressed = splitInstructions(assemble(dir, "rvc", "rvc", compressedText));
  const expanded = splitInstructions(assemble(dir, "norvc", "norvc", expandedText));
  if (compressed.length !== cases.length || expanded.length !== cases.length) {
    throw new Error(`expected ${cases.length} instructions, got ${compressed.length} and ${expanded.length}`);
  }
  const pairs = new Map<number, number>();
  cases.forEach((_, i) => {
    const [half, word] = [compressed[i], expanded[i]];
    if (half?.bytes !== 2) throw new Error(`'${compressedText[i]}' was not compressed`);
    if (word?.bytes !== 4) throw new Error(`'${expandedText[i]}' assembled to a 16-bit instruction`);
    const seen = pairs.get(half.value);
    if (seen !== undefined && seen !== word.value)
      throw new Error(`'${compressedText[i]}' has two expansions`);
    pairs.set(half.value, word.value >>> 0);
  });
  return pairs;
}

const dir = mkdtempSync(join(tmpdir(), "rvc-fixture-"));
try {
  const pairs = [...buildPairs(rvcCases(), dir)].sort((a, b) => a[0] - b[0]);
  writeFileSync(FIXTURE, `[\n${pairs.map(([h, w]) => `  [${h}, ${w}]`).join(",\n")}\n]\n`);
  console.log(`wrote ${pairs.length} pairs to ${FIXTURE}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
