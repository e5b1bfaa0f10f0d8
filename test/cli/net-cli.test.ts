import assert from "node:assert/strict";

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { checkNets, parseNet } from "../../src/cli/net.js";
import { type FdtNode, parseFdt } from "../../src/machine/fdt/parser.js";
import { formatMac } from "../../src/net/mac.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";
import { assertUserError, vireo } from "./vireo.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-net-cli-"));

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

function find(node: FdtNode, prefix: string): FdtNode[] {
  return node.children.flatMap((c) => [...(c.name.startsWith(prefix) ? [c] : []), ...find(c, prefix)]);
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("--net parsing", () => {
  test("switch, switch:NAME, tap:IFNAME, mac=", () => {
    assert.deepEqual(parseNet("switch"), { kind: "switch", name: "default", mac: null });
    assert.deepEqual(parseNet("switch:lan-1"), { kind: "switch", name: "lan-1", mac: null });
    const tap = parseNet("tap:vtap0,mac=52:54:00:AA:bb:01");
    assert.equal(tap.kind, "tap");
    assert.equal(tap.name, "vtap0");
    assert.equal(formatMac(tap.mac as Uint8Array), "52:54:00:aa:bb:01");
  });

  test("bad values are user errors", () => {
    for (const [text, pattern] of [
      ["", /expected switch/],
      ["bridge:br0", /expected switch/],
      ["tap", /interface name/],
      ["tap:", /interface name/],
      ["tap:this-name-is-too-long", /interface name/],
      ["tap:a/b", /interface name/],
      ["switch:", /switch name/],
      ["switch,mac=01:00:00:00:00:01", /unicast/],
      ["switch,mac=00:00:00:00:00:00", /unicast/],
      ["switch,mac=52:54:00", /six hex pairs/],
      ["switch,mac", /six hex pairs/],
      ["switch,mtu=9000", /unknown option 'mtu'/],
      ["switch,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02", /twice/],
    ] as const) {
      assert.throws(
        () => parseNet(text),
        (e) => e instanceof UserError && pattern.test(e.message),
        text,
      );
    }
  });

  test("one VM may not use a TAP or a MAC twice (default MACs count)", () => {
    assert.throws(() => checkNets([parseNet("tap:t0"), parseNet("tap:t0")], 0), /tap 't0' is given twice/);
    assert.throws(
      () => checkNets([parseNet("switch"), parseNet("switch:b,mac=52:54:00:76:00:00")], 0),
      /MAC 52:54:00:76:00:00 is used twice/,
    );
    checkNets([parseNet("switch"), parseNet("switch"), parseNet("tap:t0")], 0);
  });
});

describe("vireo run --net", () => {
  const kernel = fakeKernel();

  test("each NIC gets a virtio-mmio slot after the other devices", () => {
    const out = join(scratch, "net.dtb");
    const r = vireo(
      ...["run", "--kernel", kernel, "--rng", "--net", "switch", "--net", "switch:lan,mac=52:54:00:12:34:56"],
      ...["--dump-dtb", out],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(find(parseFdt(readFileSync(out)), "virtio_mmio@").length, 4, "and the default keyboard");
  });

  test("errors are one line", () => {
    const args = ["run", "--kernel", kernel, "--dump-dtb", join(scratch, "x.dtb")];
    assertUserError(vireo(...args, "--net", "wire"), /expected switch\[:NAME\] or tap:IFNAME/);
    assertUserError(vireo(...args, "--net", "switch,mac=zz"), /six hex pairs/);
    const many = Array.from({ length: 8 }, () => ["--net", "switch"]).flat();
    assertUserError(vireo(...args, "--rng", ...many), /8 slots/);
  });
});
