import assert from "node:assert/strict";

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { parseVsock } from "../../src/cli/vsock.js";
import { type FdtNode, parseFdt } from "../../src/machine/fdt/parser.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";
import { vireo } from "./vireo.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-vsock-cli-"));

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

describe("vireo run --vsock", () => {
  const kernel = fakeKernel();
  const dtb = join(scratch, "v.dtb");

  test("parses cid and uds, with defaults", () => {
    assert.deepEqual(parseVsock("cid=3"), { cid: 3, uds: null });
    assert.deepEqual(parseVsock("uds=/tmp/x.sock"), { cid: 3, uds: "/tmp/x.sock" });
    assert.deepEqual(parseVsock("cid=4294967294,uds=/tmp/a,,b"), { cid: 4294967294, uds: "/tmp/a,b" });
    for (const bad of [
      "cid=2",
      "cid=0",
      "cid=4294967295",
      "cid=x",
      "cid=",
      "uds=",
      "port=1",
      "cid=3,cid=4",
      "3",
    ]) {
      assert.throws(() => parseVsock(bad), UserError, bad);
    }
  });

  test("adds one virtio-mmio device after the others; the socket exists only while running", () => {
    const uds = join(scratch, "run.sock");
    const r = vireo("run", "--kernel", kernel, "--rng", "--vsock", `cid=7,uds=${uds}`, "--dump-dtb", dtb);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      virtioNodes(parseFdt(readFileSync(dtb))).map((n) => n.name),
      // The default keyboard comes last.
      ["virtio_mmio@10001000", "virtio_mmio@10002000", "virtio_mmio@10003000"],
    );
    assert.equal(existsSync(uds), false, "the socket file is removed when the VM ends");
  });

  test("bad values are one-line user errors", () => {
    for (const [value, pattern] of [
      ["cid=2", /--vsock cid=2: cid must be a number from 3 to 4294967294/],
      ["foo=1", /unknown option 'foo' \(cid, uds\)/],
      [`uds=${join(scratch, "no/such/dir/s.sock")}`, /--vsock: cannot listen on/],
    ] as const) {
      const r = vireo("run", "--kernel", kernel, "--vsock", value, "--dump-dtb", dtb);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr.trimEnd(), new RegExp(`^vireo: .*${pattern.source}`));
      assert.equal(r.stderr.trimEnd().split("\n").length, 1);
    }
  });

  test("counts towards the eight virtio slots", () => {
    const drives = Array.from({ length: 8 }, (_, i) => {
      const path = join(scratch, `d${i}.img`);
      writeFileSync(path, new Uint8Array(4096));
      return ["--drive", `file=${path}`];
    }).flat();
    const r = vireo("run", "--kernel", kernel, ...drives, "--vsock", "cid=3", "--dump-dtb", dtb);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /8 slots/);
  });
});
