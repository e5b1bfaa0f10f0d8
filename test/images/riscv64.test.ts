// The riscv64 recipe's offline paths on a fake cache: rebuilding the initramfs and the root disk from
// the cached busybox and modules.cpio after an init change, and the writable root disk copies.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { AGENT_FILE } from "../../src/images/agent.js";
import { artifactRecord, imageDir, type Manifest, writeManifest } from "../../src/images/cache.js";
import { buildCpio, readCpio } from "../../src/images/cpio.js";
import { fetchImage } from "../../src/images/fetch.js";
import { moduleEntries, parseModinfo } from "../../src/images/modules.js";
import {
  BUSYBOX_FILE,
  ensureRiscv64Image,
  GUEST_MODULES,
  INITRD_FILE,
  KERNEL_FILE,
  LAYOUT_VERSION,
  MODULES_FILE,
  prepareWritableRootDisk,
  ROOT_DISK_APPEND,
  ROOTFS_FILE,
  riscv64Recipe,
  withRootDisk,
  writableRootDiskPath,
} from "../../src/images/riscv64.js";
import { findTool } from "../../src/images/rootfs.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-riscv64-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** An ELF with just a .modinfo section (see modules.test.ts for the general builder). */
function tinyModule(name: string, depends: string[]): Uint8Array {
  const info = Buffer.from(`name=${name}\0depends=${depends.join(",")}\0`, "utf8");
  const shstrtab = Buffer.from("\0.modinfo\0.shstrtab\0", "latin1");
  const shoff = Math.ceil((64 + info.length + shstrtab.length) / 8) * 8;
  const out = Buffer.alloc(shoff + 3 * 64);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  out.writeBigUInt64LE(BigInt(shoff), 0x28);
  out.writeUInt16LE(64, 0x3a);
  out.writeUInt16LE(3, 0x3c);
  out.writeUInt16LE(2, 0x3e);
  info.copy(out, 64);
  shstrtab.copy(out, 64 + info.length);
  const section = (i: number, name: number, offset: number, size: number) => {
    out.writeUInt32LE(name, shoff + i * 64);
    out.writeBigUInt64LE(BigInt(offset), shoff + i * 64 + 0x18);
    out.writeBigUInt64LE(BigInt(size), shoff + i * 64 + 0x20);
  };
  section(1, 1, 64, info.length);
  section(2, 10, 64 + info.length, shstrtab.length);
  return new Uint8Array(out);
}

const hasE2fs = findTool("mke2fs") !== undefined && findTool("debugfs") !== undefined;
if (!hasE2fs) process.stderr.write("riscv64.test: e2fsprogs not found, skipping the offline rebuild tests\n");

describe("riscv64 image: offline rebuild and writable disks", {
  skip: hasE2fs ? false : "mke2fs/debugfs (e2fsprogs) not found",
}, () => {
  const env = { XDG_CACHE_HOME: join(scratch, "xdg") };
  const dir = imageDir("riscv64", env);
  const release = "6.12.0-1-riscv64";
  const busybox = Buffer.concat([
    Buffer.from("\x7fELF fake busybox ", "latin1"),
    Buffer.from(
      `${["[", "[[", "ash", "cat", "echo", "insmod", "ls", "mount", "sh", "sleep", "switch_root"].join("\0")}\0\0`,
    ),
  ]);
  const mods = [tinyModule("failover", []), tinyModule("virtio_net", ["failover"])].map((data, i) => ({
    name: i === 0 ? "failover" : "virtio_net",
    path: i === 0 ? "kernel/net/core/failover.ko" : "kernel/drivers/net/virtio_net.ko",
    data,
    info: parseModinfo(data),
  }));

  /** A complete-looking cache whose init fingerprint is old. */
  function fakeCache() {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files: Record<string, Uint8Array | string> = {
      [KERNEL_FILE]: "not really a kernel",
      [INITRD_FILE]: "old initramfs",
      [ROOTFS_FILE]: "old disk",
      [BUSYBOX_FILE]: busybox,
      [MODULES_FILE]: buildCpio(moduleEntries({ release, modules: mods })),
      [AGENT_FILE]: buildCpio([
        { type: "dir", path: "usr" },
        { type: "dir", path: "usr/sbin" },
        { type: "file", path: "usr/sbin/qemu-ga", data: "fake agent", mode: 0o755 },
        { type: "dir", path: "lib" },
        { type: "symlink", path: "lib/ld-linux-riscv64-lp64d.so.1", target: "../usr/lib/ld.so" },
      ]),
    };
    const artifacts: Manifest["artifacts"] = {};
    for (const [name, data] of Object.entries(files)) {
      writeFileSync(join(dir, name), data);
      artifacts[name] = artifactRecord(join(dir, name));
    }
    const manifest: Manifest = {
      format: 1,
      arch: "riscv64",
      source: "debian trixie",
      mirror: "",
      created: new Date().toISOString(),
      kernelRelease: release,
      packages: [],
      artifacts,
      inputs: { ...riscv64Recipe.inputs(), "guest/init": "an older init" },
    };
    writeManifest(dir, manifest);
  }

  test("an init change rebuilds initramfs and root disk from the cache, no download", async () => {
    fakeCache();
    const lines: string[] = [];
    const r = await fetchImage(riscv64Recipe, {
      env,
      stderr: { write: (t: string) => lines.push(t), isTTY: false },
    });
    assert.equal(r.action, "refreshed");
    assert.equal(r.reason, "guest/init changed");
    assert.equal(r.rootDisk, join(dir, ROOTFS_FILE));
    assert.deepEqual(lines, ["rebuilding initramfs and rootfs.ext4…\n"]);
    const entries = readCpio(gunzipSync(readFileSync(join(dir, INITRD_FILE))));
    const paths = entries.map((e) => e.path);
    assert.ok(paths.includes(`lib/modules/${release}/kernel/drivers/net/virtio_net.ko`));
    // The agent's files from the cached agent.cpio, each path once (lib/ and usr/ were there already).
    assert.ok(paths.includes("usr/sbin/qemu-ga"));
    assert.ok(paths.includes("sbin/shutdown"), "the shutdown command qemu-ga runs");
    assert.ok(paths.includes("lib/ld-linux-riscv64-lp64d.so.1"));
    assert.equal(new Set(paths).size, paths.length);
    const order = entries.find((e) => e.path === `lib/modules/${release}/load-order`);
    assert.ok(order?.type === "file");
    assert.match(
      Buffer.from(order.data).toString(),
      /^virtio_net kernel\/drivers\/net\/virtio_net\.ko failover$/m,
    );
    assert.equal(statSync(join(dir, ROOTFS_FILE)).size, 64 * 1024 * 1024);
    assert.equal(r.manifest.inputs.layout, LAYOUT_VERSION);
    assert.equal(r.manifest.inputs.modules, GUEST_MODULES.join(" "));
    const again = await fetchImage(riscv64Recipe, { env, quiet: true, verify: true });
    assert.equal(again.action, "up-to-date");
  });

  test("writable root disk: copied on first use, then reused; fresh or a given path copies anew", async () => {
    const image = await ensureRiscv64Image({ env, quiet: true });
    assert.equal(image.rootDisk, join(dir, ROOTFS_FILE));
    const first = await prepareWritableRootDisk({ env });
    assert.equal(first.disk, writableRootDiskPath(env));
    assert.equal(first.disk, join(env.XDG_CACHE_HOME, "vireo/disks/riscv64-rootfs.ext4"));
    assert.ok(first.created);
    assert.ok(readFileSync(first.disk).equals(readFileSync(image.rootDisk)));
    writeFileSync(first.disk, "the guest's changes");
    const second = await prepareWritableRootDisk({ env });
    assert.ok(!second.created);
    assert.equal(readFileSync(second.disk, "utf8"), "the guest's changes");
    const fresh = await prepareWritableRootDisk({ env, fresh: true });
    assert.ok(fresh.created);
    assert.ok(readFileSync(fresh.disk).equals(readFileSync(image.rootDisk)));
    const elsewhere = await prepareWritableRootDisk({ env, path: join(scratch, "vm1.ext4") });
    assert.equal(elsewhere.disk, join(scratch, "vm1.ext4"));
    assert.ok(elsewhere.created);
    assert.equal(withRootDisk("console=ttyS0 "), `console=ttyS0 ${ROOT_DISK_APPEND}`);
  });
});
