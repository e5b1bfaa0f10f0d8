/**
 * The reference tool on our blobs: dtc must decompile the generated virt trees without a warning, its
 * DTS must say what we meant, and the blob dtc writes back from ours must parse to the same tree (so
 * the parser also reads dtc's layout). Skipped, with the reason shown, where dtc is not installed
 * (CI installs device-tree-compiler).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FdtBuilder } from "../../../src/machine/fdt/builder.js";
import { parseFdt, readFdt } from "../../../src/machine/fdt/parser.js";
import { buildVirtDeviceTree, type VirtTreeConfig } from "../../../src/machine/riscv-virt/device-tree.js";
import { after, describe, it } from "../../support/test.js";
import { virtConfig } from "./virt-config.js";

const missing = spawnSync("dtc", ["--version"]).error
  ? "dtc is not on PATH (apt install device-tree-compiler)"
  : false;

const dir = missing ? "" : mkdtempSync(join(tmpdir(), "fdt-test-"));
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
/** Runs dtc on `input`; returns its stdout (as text, or the output file's bytes) and stderr. */
function dtc(input: Uint8Array | string, from: "dtb" | "dts", to: "dtb" | "dts") {
  const inPath = join(dir, `in${counter++}.${from}`);
  const outPath = join(dir, `out${counter++}.${to}`);
  writeFileSync(inPath, input);
  const result = spawnSync("dtc", ["-I", from, "-O", to, "-o", outPath, inPath], { encoding: "utf8" });
  assert.equal(result.status, 0, `dtc failed: ${result.stderr}`);
  return { out: readFileSync(outPath), stderr: result.stderr };
}

const configs: [string, Partial<VirtTreeConfig>][] = [
  ["1 CPU, nothing optional", { cpus: 1, bootargs: "" }],
  ["2 CPUs with an initrd", { cpus: 2, initrd: { start: 0x8400_0000, end: 0x8420_0000 } }],
  ["2 CPUs with two virtio slots", { cpus: 2, virtioSlots: [0, 3] }],
  [
    "8 CPUs with everything",
    {
      cpus: 8,
      memoryBytes: 2 ** 32,
      initrd: { start: 0x9000_0000, end: 0x9100_0000 },
      virtioSlots: [0, 1, 2, 3, 4, 5, 6, 7],
      rngSeed: new Uint8Array(32).fill(7),
      mmuType: "riscv,sv48",
    },
  ],
];

describe("dtc", { skip: missing }, () => {
  for (const [what, overrides] of configs) {
    it(`decompiles the virt tree (${what}) without warnings and compiles it back`, () => {
      const config = virtConfig(overrides);
      const blob = buildVirtDeviceTree(config);
      const { out, stderr } = dtc(blob, "dtb", "dts");
      assert.equal(stderr, "", "no dtc warnings");
      const dts = out.toString("utf8");

      const expect = (pattern: RegExp | string) =>
        typeof pattern === "string" ? assert.ok(dts.includes(pattern), pattern) : assert.match(dts, pattern);
      expect('compatible = "riscv-virtio";');
      expect('model = "riscv-virtio,qemu";');
      expect('stdout-path = "/soc/serial@10000000";');
      expect(/memory@80000000 \{\s+device_type = "memory";/);
      const [hi, lo] = [Math.floor(config.memoryBytes / 2 ** 32), config.memoryBytes % 2 ** 32];
      expect(
        `reg = <0x00 0x80000000 ${hi ? `0x${hi.toString(16).padStart(2, "0")}` : "0x00"} 0x${lo.toString(16).padStart(2, "0")}>;`,
      );
      expect("timebase-frequency = <0x989680>;");
      for (let hart = 0; hart < config.cpus; hart++) {
        expect(`cpu@${hart} {`);
        expect(`core${hart} {`);
      }
      assert.ok(!dts.includes(`cpu@${config.cpus} {`));
      expect('riscv,isa = "rv64imafdc_zicntr_zicsr_zifencei_zihpm_sstc";');
      expect(`mmu-type = "${config.mmuType}";`);
      expect('compatible = "riscv,cpu-intc";');
      expect("clint@2000000 {");
      expect("plic@c000000 {");
      expect("riscv,ndev = <0x5f>;");
      expect("serial@10000000 {");
      expect("rtc@101000 {");
      expect("test@100000 {");
      expect('compatible = "syscon-poweroff";');
      expect('compatible = "syscon-reboot";');
      expect("value = <0x7777>;");
      for (const slot of config.virtioSlots) expect(`virtio_mmio@1000${slot + 1}000 {`);
      assert.equal(dts.split("virtio_mmio@").length - 1, config.virtioSlots.length);
      if (config.initrd) expect(`linux,initrd-start = <0x00 0x${config.initrd.start.toString(16)}>;`);
      else assert.ok(!dts.includes("linux,initrd"));
      if (config.bootargs) expect(`bootargs = "${config.bootargs}";`);
      else assert.ok(!dts.includes("bootargs"));

      // dtc's own blob layout (its string table order, its padding) must read back the same. From the blob,
      // not the decompiled DTS: that has bare phandle numbers, which dtc's source checks warn about.
      const recompiled = dtc(blob, "dtb", "dtb");
      assert.equal(recompiled.stderr, "");
      assert.deepEqual(parseFdt(new Uint8Array(recompiled.out)), parseFdt(blob));
    });
  }

  it("reads what dtc compiles, memory reservations included", () => {
    const source = `/dts-v1/;
/memreserve/ 0x80000000 0x10000;
/ {
  #address-cells = <2>;
  label: node@1 { reg = <0 1 0 2>; list = "a", "bc"; bytes = [01 02 03]; phandle = <5>; };
  user { ref = <&label>; mixed = <1>, "s"; };
};`;
    const { out } = dtc(source, "dts", "dtb");
    const parsed = readFdt(new Uint8Array(out));
    assert.deepEqual(parsed.reservations, [{ address: 0x8000_0000, size: 0x1_0000 }]);
    const n = parsed.root.children[0];
    assert.equal(n?.name, "node@1");
    assert.deepEqual(n?.props.get("bytes"), Uint8Array.from([1, 2, 3]));
    assert.deepEqual([...(parsed.root.children[1]?.props.get("ref") ?? [])], [0, 0, 0, 5]);
  });

  it("decompiles every property kind the builder writes", () => {
    const fdt = new FdtBuilder();
    fdt.beginNode("");
    fdt.propEmpty("flag");
    fdt.propU64("big", 0x1_0000_0001);
    fdt.propStrings("names", ["x", "y"]);
    fdt.propBytes("odd", Uint8Array.from([0xab, 0xcd, 0xef]));
    fdt.endNode();
    const { out, stderr } = dtc(fdt.finish(), "dtb", "dts");
    assert.equal(stderr, "");
    const dts = out.toString("utf8");
    assert.match(dts, /flag;/);
    assert.match(dts, /big = <0x01 0x01>;/);
    assert.match(dts, /names = "x\\0y";/);
    assert.match(dts, /odd = \[ab cd ef\];/);
  });
});
