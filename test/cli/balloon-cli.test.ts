import assert from "node:assert/strict";

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { type FdtNode, parseFdt } from "../../src/machine/fdt/parser.js";
import { after, describe, test } from "../support/test.js";
import { vireo } from "./vireo.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-balloon-cli-"));

/** A minimal RISC-V Linux Image header (enough for --dump-dtb). */
function fakeKernel(): string {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, 1 << 20, true);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  const path = join(scratch, "Image");
  writeFileSync(path, bytes);
  return path;
}

function virtioNodes(node: FdtNode): FdtNode[] {
  return node.children.flatMap((c) => [...(c.name.startsWith("virtio_mmio@") ? [c] : []), ...virtioNodes(c)]);
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("vireo run --balloon", () => {
  const kernel = fakeKernel();
  const dtb = join(scratch, "b.dtb");

  test("--balloon and --balloon-target each add one virtio-mmio device after the others", () => {
    for (const flags of [
      ["--balloon"],
      ["--balloon-target", "16M"],
      ["--balloon", "--balloon-target", "256M"],
    ]) {
      const r = vireo("run", "--kernel", kernel, "--rng", ...flags, "--dump-dtb", dtb);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(
        virtioNodes(parseFdt(readFileSync(dtb))).map((n) => n.name),
        // The default keyboard comes last.
        ["virtio_mmio@10001000", "virtio_mmio@10002000", "virtio_mmio@10003000"],
        flags.join(" "),
      );
    }
  });

  test("bad targets are one-line user errors", () => {
    const args = ["run", "--kernel", kernel, "--memory", "256M", "--dump-dtb", dtb];
    for (const [value, pattern] of [
      ["lots", /invalid size 'lots' for --balloon-target/],
      ["1000", /--balloon-target must be a multiple of 4K/],
      ["256M", /--balloon-target must be smaller than --memory/],
      ["1T", /--balloon-target must be smaller than --memory/],
    ] as const) {
      const r = vireo(...args, "--balloon-target", value);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr.trimEnd(), new RegExp(`^vireo: .*${pattern.source}`));
      assert.equal(r.stderr.trimEnd().split("\n").length, 1);
    }
  });

  test("the balloon counts towards the eight virtio slots", () => {
    const drives = Array.from({ length: 8 }, (_, i) => {
      const path = join(scratch, `d${i}.img`);
      writeFileSync(path, new Uint8Array(4096));
      return ["--drive", `file=${path}`];
    }).flat();
    const r = vireo("run", "--kernel", kernel, ...drives, "--balloon", "--dump-dtb", dtb);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /8 slots/);
  });
});
