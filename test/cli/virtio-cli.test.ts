import assert from "node:assert/strict";

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { parseDrive } from "../../src/cli/virtio.js";
import { cellsOf, type FdtNode, parseFdt } from "../../src/machine/fdt/parser.js";
import { VIRT_IRQ, VIRT_MAP } from "../../src/machine/riscv-virt/memory-map.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";
import { assertUserError, vireo } from "./vireo.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-virtio-cli-"));

/** A minimal RISC-V Linux Image header (enough for --dump-dtb). */
function fakeKernel(): string {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, 1 << 20, true);
  bytes.set([0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0], 48);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  const path = join(scratch, "Image");
  writeFileSync(path, bytes);
  return path;
}

function disk(name: string, size = 1 << 20): string {
  const path = join(scratch, name);
  writeFileSync(path, new Uint8Array(size));
  return path;
}

function find(node: FdtNode, prefix: string): FdtNode[] {
  return node.children.flatMap((c) => [...(c.name.startsWith(prefix) ? [c] : []), ...find(c, prefix)]);
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("--drive parsing", () => {
  test("file, readonly and id; defaults; ',,' escapes a comma", () => {
    assert.deepEqual(parseDrive("file=a.img", 0), { file: "a.img", readOnly: false, id: "drive0" });
    assert.deepEqual(parseDrive("file=b.img,readonly=on,id=root-disk", 3), {
      file: "b.img",
      readOnly: true,
      id: "root-disk",
    });
    assert.equal(parseDrive("id=x,file=my,,disk.img", 1).file, "my,disk.img");
  });

  test("bad values are user errors", () => {
    for (const bad of [
      "a.img",
      "file=",
      "readonly=on",
      "file=a,readonly=yes",
      "file=a,format=raw",
      "file=a,file=b",
      "file=a,id=",
      "file=a,id=has space",
      `file=a,id=${"x".repeat(21)}`,
    ]) {
      assert.throws(() => parseDrive(bad, 0), UserError, bad);
    }
  });
});

describe("vireo run with virtio devices", () => {
  const kernel = fakeKernel();

  test("drives, rng, console and the default keyboard get virtio-mmio nodes in slot order in the device tree", () => {
    const out = join(scratch, "virtio.dtb");
    const r = vireo(
      "run",
      "--kernel",
      kernel,
      "--drive",
      `file=${disk("a.img")}`,
      "--drive",
      `file=${disk("b.img")},readonly=on,id=second`,
      "--rng",
      "--virtio-console",
      "--dump-dtb",
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    const nodes = find(parseFdt(readFileSync(out)), "virtio_mmio@");
    assert.equal(nodes.length, 5, "the four asked for, then the keyboard");
    nodes.forEach((node, slot) => {
      const base = VIRT_MAP.virtio.base + slot * VIRT_MAP.virtio.size;
      assert.equal(node.name, `virtio_mmio@${base.toString(16)}`);
      assert.deepEqual(cellsOf(node.props.get("reg") as Uint8Array), [0, base, 0, VIRT_MAP.virtio.size]);
      assert.deepEqual(cellsOf(node.props.get("interrupts") as Uint8Array), [VIRT_IRQ.VIRTIO_FIRST + slot]);
    });
  });

  test("without virtio flags the tree has the keyboard's node only; with --no-keyboard none", () => {
    const out = join(scratch, "plain.dtb");
    assert.equal(vireo("run", "--kernel", kernel, "--dump-dtb", out).status, 0);
    const names = find(parseFdt(readFileSync(out)), "virtio_mmio@").map((n) => n.name);
    assert.deepEqual(names, [`virtio_mmio@${VIRT_MAP.virtio.base.toString(16)}`]);
    assert.equal(vireo("run", "--kernel", kernel, "--no-keyboard", "--dump-dtb", out).status, 0);
    assert.deepEqual(find(parseFdt(readFileSync(out)), "virtio_mmio@"), []);
  });

  test("drive errors are one line", () => {
    const args = ["run", "--kernel", kernel, "--dump-dtb", join(scratch, "x.dtb")];
    assertUserError(
      vireo(...args, "--drive", `file=${join(scratch, "missing.img")}`),
      /cannot open drive .*ENOENT/,
    );
    assertUserError(
      vireo(...args, "--drive", `file=${disk("tiny.img", 100)}`),
      /smaller than one 512-byte sector/,
    );
    assertUserError(vireo(...args, "--drive", "readonly=on"), /needs file=PATH/);
    assertUserError(vireo(...args, "--drive", "file=a.img,cache=none"), /unknown option 'cache'/);
    const same = disk("same.img");
    assertUserError(vireo(...args, "--drive", `file=${same}`, "--drive", `file=${same}`), /given twice/);
    const many = Array.from({ length: 9 }, (_, i) => ["--drive", `file=${disk(`d${i}.img`)}`]).flat();
    assertUserError(vireo(...args, ...many), /8 slots/);
    assertUserError(vireo(...args, "--rng", "--rng"), /--rng given twice/);
  });

  test("--virtio-ring takes packed or split; anything else is a user error", () => {
    const args = ["run", "--kernel", kernel, "--rng", "--dump-dtb", join(scratch, "ring.dtb")];
    assert.equal(vireo(...args, "--virtio-ring", "split").status, 0);
    assert.equal(vireo(...args, "--virtio-ring", "packed").status, 0);
    assertUserError(vireo(...args, "--virtio-ring", "ring"), /--virtio-ring ring: expected split or packed/);
  });
});
