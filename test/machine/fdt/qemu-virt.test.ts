/**
 * Our virt tree against the one QEMU's `-M virt` generates (`-machine dumpdtb=`): every device we
 * describe must sit at QEMU's address, with QEMU's compatible strings and interrupt numbers, so guests
 * that run on QEMU's board find the same hardware on ours. Skipped where qemu-system-riscv64 is missing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type FdtNode,
  findNode,
  parseFdt,
  readCells,
  readU32,
  walkFdt,
} from "../../../src/machine/fdt/parser.js";
import { buildVirtDeviceTree } from "../../../src/machine/riscv-virt/device-tree.js";
import { VIRTIO_SLOTS } from "../../../src/machine/riscv-virt/memory-map.js";
import { it } from "../../support/test.js";
import { virtConfig } from "./virt-config.js";

const QEMU = "qemu-system-riscv64";
const missing = spawnSync(QEMU, ["--version"]).error ? `${QEMU} is not on PATH` : false;

/**
 * Properties whose values must agree (phandle values differ, so references are compared by target).
 * OPTIONAL ones are compared only where QEMU has them: additions of ours such as the CPU interrupt
 * controllers' #address-cells, or fields older QEMU versions leave out. mmu-type and riscv,isa depend on
 * QEMU's CPU model, not the board, and riscv,ndev is off by one in QEMU before 8.0 (a bug it fixed).
 */
const SAME = ["compatible", "reg", "interrupts", "#size-cells", "#interrupt-cells", "device_type"];
const OPTIONAL = ["#address-cells", "timebase-frequency", "clock-frequency", "offset", "value", "status"];

it("describes the devices QEMU's virt board has, where it has them", { skip: missing }, () => {
  const dir = mkdtempSync(join(tmpdir(), "qemu-dtb-"));
  try {
    const path = join(dir, "virt.dtb");
    const run = spawnSync(QEMU, ["-M", `virt,dumpdtb=${path}`, "-m", "512M", "-smp", "2", "-nographic"], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const qemu = parseFdt(new Uint8Array(readFileSync(path))); // a 1 MiB file holding a smaller blob
    const ours = parseFdt(
      buildVirtDeviceTree(
        virtConfig({ cpus: 2, virtioSlots: [...Array(VIRTIO_SLOTS).keys()], mmuType: "riscv,sv48" }),
      ),
    );

    const phandleTarget = (root: FdtNode, phandle: number) => {
      for (const entry of walkFdt(root)) {
        const value = entry.node.props.get("phandle");
        if (value && new DataView(value.buffer, value.byteOffset).getUint32(0) === phandle) return entry.path;
      }
      return undefined;
    };
    let compared = 0;
    for (const { path, node } of walkFdt(ours)) {
      if (path === "/chosen" || path === "/aliases") continue; // depend on the run, not the board
      const theirs = findNode(qemu, path);
      assert.ok(theirs, `QEMU has ${path}`);
      for (const name of [...SAME, ...OPTIONAL]) {
        const mine = node.props.get(name);
        if (mine === undefined) continue;
        const other = theirs.props.get(name);
        if (other === undefined && OPTIONAL.includes(name)) continue;
        assert.deepEqual(mine, other, `${path}:${name}`);
        compared++;
      }
      for (const name of ["interrupt-parent", "regmap", "cpu"]) {
        if (!node.props.has(name)) continue;
        assert.equal(
          phandleTarget(ours, readU32(node, name)),
          phandleTarget(qemu, readU32(theirs, name)),
          `${path}:${name} points at the same node`,
        );
      }
      if (node.props.has("interrupts-extended")) {
        const resolve = (root: FdtNode, cells: number[]) =>
          cells.map((cell, i) => (i % 2 === 0 ? phandleTarget(root, cell) : cell));
        assert.deepEqual(
          resolve(ours, readCells(node, "interrupts-extended")),
          resolve(qemu, readCells(theirs, "interrupts-extended")),
          `${path}:interrupts-extended`,
        );
        compared++;
      }
    }
    assert.ok(compared > 50, `${compared} properties compared`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
