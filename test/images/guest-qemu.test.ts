// The default riscv64 guest on QEMU's virt machine with virtio-mmio devices: the initramfs loads the
// modules the devices need and reports them in check mode; with root=/dev/vda it boots the ext4 root
// disk, and what the guest writes there is read back on the host with debugfs. Uses the cached image
// (offline) when there is one; fetching it needs VIREO_NET_TESTS=1. Skips without qemu-system-riscv64.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkCache, imageDir, sha256File } from "../../src/images/cache.js";
import {
  prepareWritableRootDisk,
  type Riscv64Image,
  ROOT_DISK_APPEND,
  ROOTFS_FILE,
  riscv64Recipe,
} from "../../src/images/riscv64.js";
import { findTool, ROOTFS_SIZE } from "../../src/images/rootfs.js";
import { after, before, describe, test } from "../support/test.js";

const qemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
const net = process.env.VIREO_NET_TESTS === "1";
const cacheState = checkCache(imageDir("riscv64"), {
  artifacts: riscv64Recipe.artifacts,
  inputs: riscv64Recipe.inputs(),
}).state;
// A stale-inputs cache is rebuilt offline from its own busybox and modules.
const cached = cacheState === "complete" || cacheState === "stale-inputs";
const skip = !qemu
  ? "qemu-system-riscv64 is not on PATH"
  : !cached && !net
    ? "no riscv64 image in the cache (run 'vireo images fetch', or set VIREO_NET_TESTS=1)"
    : false;
if (skip !== false) process.stderr.write(`guest-qemu.test: skipped: ${skip}\n`);

const BOOT_TIMEOUT_MS = 300_000;

function base64(script: string): string {
  return Buffer.from(script, "utf8").toString("base64");
}

function checks(out: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of out.matchAll(/^CHECK ([\w-]+)=(.*?)\r?$/gm)) found.set(m[1] as string, m[2] as string);
  return found;
}

describe("the default guest with virtio devices on QEMU", { skip, concurrency: 1 }, () => {
  const scratch = mkdtempSync(join(tmpdir(), "vireo-guest-qemu-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let image: Riscv64Image & { disk: string };

  before(async () => {
    if (skip !== false) return;
    image = await prepareWritableRootDisk({ path: join(scratch, "rootfs.ext4"), quiet: true });
  });

  function boot(append: string, devices: string[]) {
    const r = spawnSync(
      "qemu-system-riscv64",
      [
        ...["-M", "virt", "-m", "512M", "-smp", "2", "-nographic", "-no-reboot"],
        ...["-kernel", image.kernel, "-initrd", image.initrd, "-append", `console=ttyS0 quiet ${append}`],
        ...devices,
      ],
      { encoding: "utf8", timeout: BOOT_TIMEOUT_MS, input: "" },
    );
    const context = `status ${r.status} ${r.error ?? ""}\n--- stdout (tail)\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr}`;
    return { r, c: checks(r.stdout), context };
  }

  const blk = (file: string) => [
    ...["-drive", `file=${file},if=none,id=d0,format=raw`],
    ...["-device", "virtio-blk-device,drive=d0"],
  ];

  test("initramfs: the modules for the devices present load, and check mode sees the devices", () => {
    const hvcOut = join(scratch, "hvc0.out");
    const { r, c, context } = boot(
      `vireo.check=1 vireo.run=${base64('echo "run hook: $(cat /proc/sys/kernel/hostname)"')}`,
      [
        ...["-device", "virtio-rng-device"],
        ...blk(image.disk),
        ...["-device", "virtio-serial-device", "-device", "virtconsole,chardev=c0"],
        ...["-chardev", `file,id=c0,path=${hvcOut}`],
        ...["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0"],
        ...["-device", "virtio-balloon-device"],
      ],
    );
    assert.equal(r.status, 0, context);
    assert.match(r.stdout, /^VIREO-READY\r?$/m, context);
    assert.doesNotMatch(r.stdout, /vireo-init: warning/, context);
    assert.equal(c.get("root"), "rootfs rootfs rw", context);
    const modules = (c.get("modules") ?? "").split(",");
    for (const m of [
      "virtio_mmio",
      "virtio_blk",
      "virtio_rng",
      "failover",
      "net_failover",
      "virtio_net",
      "virtio_balloon",
    ])
      assert.ok(modules.includes(m), `${m} not loaded: ${context}`);
    assert.ok(!modules.includes("ext4"), `ext4 loaded without a disk root: ${context}`);
    assert.ok(modules.indexOf("failover") < modules.indexOf("virtio_net"));
    const virtio = (c.get("virtio") ?? "").split(",").sort();
    assert.deepEqual(
      virtio,
      ["virtio_balloon", "virtio_blk", "virtio_console", "virtio_net", "virtio_rng"],
      context,
    );
    assert.equal(c.get("virtio-blk"), `/dev/vda size=${ROOTFS_SIZE}`, context);
    assert.match(c.get("virtio-net") ?? "", /^eth\d mac=52:54:00:12:34:56$/, context);
    assert.match(c.get("hwrng") ?? "", /^64 source=virtio_rng\.\d+$/, context);
    assert.equal(c.get("hvc0"), "yes", context);
    assert.match(readFileSync(hvcOut, "utf8"), /VIREO-HVC0/);
    assert.match(r.stdout, /^run hook: vireo\r?$/m, context);
    assert.equal(c.get("run-status"), "0", context);
    assert.match(r.stdout, /^CHECK done\r?$/m, context);
  });

  test("root=/dev/vda: boots the ext4 disk; a file the guest writes is on it afterwards", () => {
    const cachedRecord = JSON.parse(readFileSync(join(imageDir("riscv64"), "manifest.json"), "utf8"))
      .artifacts[ROOTFS_FILE];
    const { r, c, context } = boot(
      `vireo.check=1 ${ROOT_DISK_APPEND} vireo.run=${base64(
        "echo written by the guest > /root/vireo-test.txt && sync && test -x /sbin/init",
      )}`,
      blk(image.disk),
    );
    assert.equal(r.status, 0, context);
    assert.equal(r.stdout.match(/^VIREO-READY\r?$/gm)?.length, 1, context);
    assert.doesNotMatch(r.stdout, /vireo-init: (warning|cannot|root=)/, context);
    assert.equal(c.get("root"), "/dev/vda ext4 rw", context);
    const modules = (c.get("modules") ?? "").split(",");
    for (const m of ["virtio_mmio", "virtio_blk", "crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"])
      assert.ok(modules.includes(m), `${m} not loaded: ${context}`);
    assert.ok(!modules.includes("virtio_net"), context);
    assert.equal(c.get("run-status"), "0", context);

    const debugfs = findTool("debugfs");
    if (debugfs !== undefined) {
      const cat = spawnSync(debugfs, ["-R", "cat /root/vireo-test.txt", image.disk], { encoding: "utf8" });
      assert.equal(cat.stdout, "written by the guest\n", cat.stderr);
    }
    const e2fsck = findTool("e2fsck");
    if (e2fsck !== undefined) {
      const fsck = spawnSync(e2fsck, ["-fn", image.disk], { encoding: "utf8" });
      assert.equal(fsck.status, 0, `the guest left the disk unclean:\n${fsck.stdout}${fsck.stderr}`);
    }
    // The guest wrote to a copy: the cached disk is as fetched.
    const pristine = join(imageDir("riscv64"), ROOTFS_FILE);
    assert.ok(existsSync(pristine));
    assert.equal(sha256File(pristine), cachedRecord.sha256);
  });
});
