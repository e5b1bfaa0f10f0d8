// End to end: a real `vireo images fetch` from the Debian mirror named in the system's apt sources, into a
// temp XDG_CACHE_HOME. Needs network; runs only with VIREO_NET_TESTS=1. Boots the result in QEMU when
// qemu-system-riscv64 is on PATH.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, describe, test } from "../support/test.js";
import { vireoImages } from "./cli-runner.js";

const enabled = process.env.VIREO_NET_TESTS === "1";
if (!enabled)
  process.stderr.write("fetch-net.test: skipped (set VIREO_NET_TESTS=1 to download the riscv64 image)\n");

describe("vireo images fetch (network)", { skip: enabled ? false : "set VIREO_NET_TESTS=1" }, () => {
  const xdg = mkdtempSync(join(tmpdir(), "vireo-net-"));
  after(() => rmSync(xdg, { recursive: true, force: true }));
  const env = { ...process.env, XDG_CACHE_HOME: xdg };
  const dir = join(xdg, "vireo/images/riscv64");

  test("fetch builds Image, initramfs.cpio.gz, rootfs.ext4 and manifest.json", () => {
    const started = performance.now();
    const r = vireoImages(env, "fetch");
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.status, 0, r.stderr);
    for (const step of [
      /resolving linux-image-riscv64 → linux-image-\S+-riscv64 /,
      /downloading/,
      /extracting the kernel, its modules and busybox/,
      /downloading qemu-guest-agent and its libraries: qemu-guest-agent, libc6, /,
      /building initramfs \(\d+ modules, qemu-guest-agent\) and rootfs\.ext4/,
    ]) {
      assert.match(r.stderr, step);
    }
    assert.match(r.stdout, /^riscv64: fetched in /);
    assert.deepEqual(readdirSync(dir).sort(), [
      "Image",
      "agent.cpio",
      "busybox",
      "initramfs.cpio.gz",
      "manifest.json",
      "modules.cpio",
      "rootfs.ext4",
    ]);
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    assert.equal(manifest.arch, "riscv64");
    const roles: string[] = manifest.packages.map((p: { role: string }) => p.role);
    assert.deepEqual(roles.slice(0, 4), ["metapackage", "kernel", "busybox", "agent"]);
    assert.ok(roles.slice(4).every((r) => r === "agent-library"));
    const image = readFileSync(join(dir, "Image"));
    assert.equal(image.subarray(0x30, 0x38).toString("latin1"), "RISCV\0\0\0");
    assert.equal(manifest.artifacts.Image.size, image.length);
    const cpio = gunzipSync(readFileSync(join(dir, "initramfs.cpio.gz")));
    assert.ok(cpio.includes(Buffer.from("VIREO-READY")));
    const release = manifest.kernelRelease;
    for (const m of [
      "virtio_mmio",
      "virtio_blk",
      "virtio_net",
      "virtio_rng",
      "ext4",
      "jbd2",
      "crc32c_generic",
    ])
      assert.ok(manifest.modules.order.includes(m), m);
    assert.ok(manifest.modules.builtin.includes("virtio_console"));
    assert.ok(cpio.includes(Buffer.from(`lib/modules/${release}/load-order\0`)));
    assert.ok(cpio.includes(Buffer.from(`lib/modules/${release}/kernel/fs/ext4/ext4.ko\0`)));
    for (const path of [
      "usr/sbin/qemu-ga",
      "lib/ld-linux-riscv64-lp64d.so.1",
      "usr/lib/riscv64-linux-gnu/libc.so.6",
      "usr/lib/riscv64-linux-gnu/libglib-2.0.so.0",
    ])
      assert.ok(cpio.includes(Buffer.from(`${path}\0`)), path);
    const rootfs = statSync(join(dir, "rootfs.ext4"));
    assert.equal(rootfs.size, 64 * 1024 * 1024);
    assert.ok(rootfs.blocks * 512 < rootfs.size / 2, "rootfs.ext4 is sparse");
    const busybox = readFileSync(join(dir, "busybox"));
    assert.equal(busybox.subarray(0, 4).toString("latin1"), "\x7fELF");
    assert.equal(busybox.readUInt16LE(18), 243, "EM_RISCV");
    assert.ok(!existsSync(join(dir, "debs")), "no .deb kept without --keep-debs");
    process.stderr.write(
      `fetch-net.test: fetched in ${seconds.toFixed(1)} s; Image ${image.length} B, initramfs ${manifest.artifacts["initramfs.cpio.gz"].size} B, rootfs.ext4 ${rootfs.blocks * 512} B allocated\n`,
    );
  });

  test("a second fetch is up to date; list and path describe it", () => {
    const started = performance.now();
    const r = vireoImages(env, "fetch");
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^riscv64: up to date/);
    assert.equal(r.stderr, "");
    process.stderr.write(
      `fetch-net.test: up-to-date check (all artifacts hashed) in ${seconds.toFixed(2)} s\n`,
    );
    const list = vireoImages(env, "list");
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /package {2}linux-image-\S+-riscv64 /);
    assert.match(list.stdout, /file {5}Image \d+\.\d MB/);
    assert.match(list.stdout, /file {5}rootfs\.ext4 \d+\.\d MB/);
    assert.match(list.stdout, /modules {2}virtio_mmio /);
    const path = vireoImages(env, "path");
    assert.equal(path.stdout, `${dir}\n`);
  });

  const qemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
  test("the image boots in QEMU and passes the check mode", {
    skip: qemu ? false : "qemu-system-riscv64 is not on PATH",
  }, () => {
    const r = spawnSync(
      "qemu-system-riscv64",
      [
        ...["-M", "virt", "-m", "512M", "-smp", "2", "-nographic", "-no-reboot"],
        ...["-kernel", join(dir, "Image"), "-initrd", join(dir, "initramfs.cpio.gz")],
        ...["-append", "console=ttyS0 quiet vireo.check=1"],
      ],
      { encoding: "utf8", timeout: 180_000, input: "" },
    );
    assert.equal(r.status, 0, r.stderr);
    for (const line of [
      "VIREO-READY",
      "CHECK arch=riscv64",
      "CHECK harts=2",
      "CHECK date-advances=yes",
      "CHECK pipeline=two",
      "CHECK done",
    ]) {
      assert.ok(r.stdout.split(/\r?\n/).includes(line), `missing '${line}' in:\n${r.stdout.slice(-2000)}`);
    }
  });
});
