import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describeNonCode } from "../../src/machine/loader/sniff.js";
import { test } from "../support/test.js";

const at = (offset: number, bytes: number[] | string, length = 4096) => {
  const b = new Uint8Array(length);
  b.set(typeof bytes === "string" ? [...bytes].map((c) => c.charCodeAt(0)) : bytes, offset);
  return b;
};

test("known non-code formats are named", { timeout: 10_000 }, () => {
  const cases: [Uint8Array, RegExp][] = [
    [at(0, [0x1f, 0x8b, 0x08]), /gzip/],
    [at(0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), /xz/],
    [at(0, [0x28, 0xb5, 0x2f, 0xfd]), /zstd/],
    [at(0, "BZh91AY&SY"), /bzip2/],
    [at(0, [0x04, 0x22, 0x4d, 0x18]), /lz4/],
    [at(0, "070701"), /cpio/],
    [at(0, "PK\x03\x04"), /zip/],
    [at(0, [0xd0, 0x0d, 0xfe, 0xed]), /device tree/],
    [at(257, "ustar"), /tar/],
    [at(0x202, "HdrS"), /x86 bzImage/],
    [at(0, "MZ"), /PE executable/],
  ];
  for (const [bytes, pattern] of cases) assert.match(describeNonCode(bytes) ?? "null", pattern);
});

test("code is not taken for a known format", { timeout: 10_000 }, () => {
  assert.equal(describeNonCode(new Uint8Array(4096).fill(0x13)), null); // nops (addi x0, x0, 0)
  assert.equal(describeNonCode(at(0, "BZh9")), null, "bzip2 needs its block magic too");
  assert.equal(describeNonCode(new Uint8Array(0)), null);
  // A RISC-V Linux Image with an EFI stub starts with "MZ" too.
  const efiImage = at(0, "MZ");
  efiImage.set([0x52, 0x53, 0x43, 0x05], 56);
  assert.equal(describeNonCode(efiImage), null);
  const opensbi = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";
  if (existsSync(opensbi)) assert.equal(describeNonCode(readFileSync(opensbi)), null);
});
