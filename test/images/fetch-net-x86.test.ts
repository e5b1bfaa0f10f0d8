// End to end: a real `vireo images fetch --arch x86_64` through the system's own apt, into a temp
// XDG_CACHE_HOME. Needs network and an amd64 Debian host; runs only with VIREO_NET_TESTS=1. Boots the
// result in QEMU (TCG: no KVM needed) when qemu-system-x86_64 is on PATH: the bzImage on the microvm
// board with virtio-mmio devices (ACPI), and the extracted vmlinux through its PVH entry. One vCPU: QEMU
// 7.2's TCG hung with -smp 2 on the PVH entry every time.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { AGENT_BINARY, elfInterpreter, elfNeeded } from "../../src/images/agent.js";
import { hostDebianArch } from "../../src/images/apt.js";
import { readCpio } from "../../src/images/cpio.js";
import { bzImagePayload, hasPvhEntry } from "../../src/images/x86_64.js";
import { after, describe, test } from "../support/test.js";
import { vireoImages } from "./cli-runner.js";

const enabled = process.env.VIREO_NET_TESTS === "1";
const skip = !enabled
  ? "set VIREO_NET_TESTS=1"
  : hostDebianArch() !== "amd64"
    ? "not an amd64 Debian host"
    : false;
if (skip !== false) process.stderr.write(`fetch-net-x86.test: skipped (${skip})\n`);

function checks(out: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of out.matchAll(/^CHECK ([\w-]+)=(.*?)\r?$/gm)) found.set(m[1] as string, m[2] as string);
  return found;
}

describe("vireo images fetch --arch x86_64 (network)", { skip, concurrency: 1 }, () => {
  const xdg = mkdtempSync(join(tmpdir(), "vireo-net-x86-"));
  after(() => rmSync(xdg, { recursive: true, force: true }));
  const env = { ...process.env, XDG_CACHE_HOME: xdg };
  const dir = join(xdg, "vireo/images/x86_64");

  test("fetch builds bzImage, vmlinux (PVH), initramfs.cpio.gz and manifest.json", () => {
    const started = performance.now();
    const r = vireoImages(env, "fetch", "--arch", "amd64");
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.status, 0, r.stderr);
    for (const step of [
      /resolving linux-image-amd64 → linux-image-\S+-amd64 \S+ \(the system's apt, Debian \S+\)/,
      /downloading/,
      /extracting the kernel, its modules and busybox/,
      /decompressing vmlinux from bzImage/,
      /downloading qemu-guest-agent and its libraries: qemu-guest-agent, libc6, /,
      /building initramfs \(\d+ modules, qemu-guest-agent\)/,
    ]) {
      assert.match(r.stderr, step);
    }
    assert.match(
      r.stdout,
      /^x86_64: fetched in .*bzImage \d+\.\d MB, vmlinux \d+\.\d MB, initramfs\.cpio\.gz /,
    );
    assert.deepEqual(readdirSync(dir).sort(), [
      "agent.cpio",
      "busybox",
      "bzImage",
      "initramfs.cpio.gz",
      "manifest.json",
      "modules.cpio",
      "vmlinux",
    ]);
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    assert.equal(manifest.arch, "x86_64");
    assert.match(manifest.source, /^debian \S+$/);
    const roles = manifest.packages.map((p: { role: string }) => p.role);
    assert.deepEqual(roles.slice(0, 4), ["metapackage", "kernel", "busybox", "agent"]);
    assert.ok(roles.slice(4).every((r: string) => r === "agent-library"));
    const bzImage = readFileSync(join(dir, "bzImage"));
    const vmlinux = readFileSync(join(dir, "vmlinux"));
    const payload = bzImagePayload(bzImage);
    assert.equal(payload.format, "xz");
    assert.equal(vmlinux.length, payload.uncompressedSize);
    assert.equal(vmlinux.readUInt16LE(18), 62, "EM_X86_64");
    assert.ok(hasPvhEntry(vmlinux), "Debian's kernel has a PVH entry note");
    const cpio = gunzipSync(readFileSync(join(dir, "initramfs.cpio.gz")));
    assert.ok(cpio.includes(Buffer.from("VIREO-READY")));
    const release = manifest.kernelRelease;
    for (const m of ["virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "ext4"])
      assert.ok(manifest.modules.order.includes(m), m);
    assert.ok(cpio.includes(Buffer.from(`lib/modules/${release}/load-order\0`)));
    // qemu-ga, its loader and every library it names (DT_NEEDED) are in the initramfs.
    const entries = readCpio(cpio);
    const paths = new Set(entries.map((e) => e.path));
    const agent = entries.find((e) => e.path === AGENT_BINARY);
    assert.ok(agent?.type === "file", "usr/sbin/qemu-ga");
    const agentElf = Buffer.from(agent.data);
    assert.equal(agentElf.readUInt16LE(18), 62, "EM_X86_64");
    assert.ok(paths.has((elfInterpreter(agentElf) ?? "").replace(/^\//, "")), "its loader");
    for (const needed of elfNeeded(agentElf))
      assert.ok(
        [...paths].some((p) => p.endsWith(`/${needed}`)),
        `${needed} (needed by qemu-ga)`,
      );
    // This host is amd64: the agent runs from the initramfs's own files alone (chroot needs root).
    if (process.getuid?.() === 0) {
      const root = join(xdg, "initramfs-root");
      for (const e of entries) {
        const at = join(root, e.path);
        if (e.type === "dir") mkdirSync(at, { recursive: true });
        else if (e.type === "file") writeFileSync(at, e.data, { mode: e.mode ?? 0o644 });
        else if (e.type === "symlink") symlinkSync(e.target, at);
      }
      const version = spawnSync("chroot", [root, "/usr/sbin/qemu-ga", "--version"], { encoding: "utf8" });
      assert.equal(version.status, 0, version.stderr);
      assert.match(version.stdout, /QEMU Guest Agent \d+\.\d+/);
    }
    const busybox = readFileSync(join(dir, "busybox"));
    assert.equal(busybox.readUInt16LE(18), 62, "EM_X86_64");
    assert.ok(!existsSync(join(dir, "debs")), "no .deb kept without --keep-debs");
    process.stderr.write(
      `fetch-net-x86.test: fetched in ${seconds.toFixed(1)} s; bzImage ${bzImage.length} B, vmlinux ${vmlinux.length} B, initramfs ${manifest.artifacts["initramfs.cpio.gz"].size} B\n`,
    );
  });

  test("a second fetch is up to date; list and path describe it", () => {
    const r = vireoImages(env, "fetch", "--arch", "x86_64");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^x86_64: up to date/);
    assert.equal(r.stderr, "");
    const list = vireoImages(env, "list");
    assert.match(list.stdout, /package {2}linux-image-\S+-amd64 /);
    assert.match(list.stdout, /file {5}vmlinux \d+\.\d MB/);
    assert.equal(vireoImages(env, "path", "--arch", "amd64").stdout, `${dir}\n`);
  });

  const qemu = spawnSync("qemu-system-x86_64", ["--version"]).status === 0;
  const boot = (kernel: string, extra: string[], append = "") =>
    spawnSync(
      "qemu-system-x86_64",
      [
        ...["-M", "microvm", "-m", "512M", "-smp", "1", "-nographic", "-no-reboot"],
        ...["-kernel", join(dir, kernel), "-initrd", join(dir, "initramfs.cpio.gz")],
        // nokaslr: QEMU 7.2's microvm under TCG hung with no output in about 1 boot of 6 when the
        // bzImage's decompressor placed the kernel at a random physical address (0 of 8 with nokaslr).
        ...["-append", `console=ttyS0 quiet nokaslr vireo.check=1 ${append}`.trim()],
        ...extra,
      ],
      { encoding: "utf8", timeout: 300_000, input: "" },
    );

  test("the bzImage boots on QEMU's microvm (TCG): check mode, modules for its virtio-mmio devices", {
    skip: qemu ? false : "qemu-system-x86_64 is not on PATH",
  }, () => {
    const disk = join(xdg, "disk.img");
    writeFileSync(disk, "");
    truncateSync(disk, 16 * 2 ** 20);
    const r = boot("bzImage", [
      ...["-drive", `file=${disk},if=none,id=d0,format=raw`, "-device", "virtio-blk-device,drive=d0"],
      ...["-device", "virtio-rng-device"],
    ]);
    assert.equal(r.status, 0, r.stderr);
    const found = checks(r.stdout);
    assert.ok(r.stdout.includes("VIREO-READY"), r.stdout.slice(-2000));
    assert.equal(found.get("arch"), "x86_64");
    assert.equal(found.get("harts"), "1");
    assert.equal(found.get("date-advances"), "yes");
    assert.equal(found.get("pipeline"), "two");
    assert.match(found.get("modules") ?? "", /virtio_mmio.*virtio_blk/);
    assert.equal(found.get("virtio-blk"), `/dev/vda size=${16 * 2 ** 20}`);
    assert.match(found.get("hwrng") ?? "", /^64 source=virtio_rng/);
    assert.match(r.stdout, /^CHECK done\r?$/m);
  });

  test("the vmlinux boots through its PVH entry on QEMU (TCG)", {
    skip: qemu ? false : "qemu-system-x86_64 is not on PATH",
  }, () => {
    // The guest agent's binary loads with the libraries the image carries (no vsock here to reach it).
    const run = Buffer.from("/usr/sbin/qemu-ga --version").toString("base64");
    const r = boot("vmlinux", [], `vireo.run=${run}`);
    assert.equal(r.status, 0, r.stderr);
    const found = checks(r.stdout);
    assert.equal(found.get("arch"), "x86_64");
    assert.match(r.stdout, /QEMU Guest Agent \d+\.\d+/, r.stdout.slice(-2000));
    assert.equal(found.get("run-status"), "0");
    assert.match(r.stdout, /^CHECK done\r?$/m, r.stdout.slice(-2000));
  });
});
