import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import {
  BUSYBOX_LINKS,
  buildInitramfs,
  initramfsEntries,
  initScriptPath,
  isRiscvImage,
} from "../../src/images/riscv64.js";
import { describe, test } from "../support/test.js";

const initPath = initScriptPath();
const init = readFileSync(initPath, "utf8");

describe("guest/init", () => {
  test("is where the recipe looks, executable, a busybox sh script", () => {
    assert.match(initPath, /guest\/init$/);
    assert.ok((statSync(initPath).mode & 0o111) !== 0, "executable bit");
    assert.ok(init.startsWith("#!/bin/busybox sh\n"));
  });

  for (const shell of ["dash", "busybox"]) {
    const probe =
      shell === "busybox" ? spawnSync("busybox", ["sh", "-c", "true"]) : spawnSync(shell, ["-c", "true"]);
    const available = probe.status === 0;
    if (!available) process.stderr.write(`init.test: ${shell} not on PATH, skipping its syntax check\n`);
    test(`${shell} -n accepts it`, { skip: available ? false : `${shell} is not on PATH` }, () => {
      const args = shell === "busybox" ? ["sh", "-n", initPath] : ["-n", initPath];
      const r = spawnSync(shell, args, { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    });
  }

  test("mounts, the ready line, check mode and the interactive shell are all there", () => {
    for (const needle of [
      "mount -t proc proc /proc",
      "mount -t sysfs sysfs /sys",
      "mount -t devtmpfs devtmpfs /dev",
      'echo "VIREO-READY"',
      "has_word vireo.check=1",
      'echo "CHECK arch=',
      'echo "CHECK harts=$harts"',
      'echo "CHECK date-advances=$advances"',
      'echo "CHECK pipeline=$pipeline"',
      "poweroff",
      "setsid $bb cttyhack $bb sh",
      "export PATH=",
      "export HOME=/root",
      "export TERM=vt100",
      "hostname vireo",
      "trap 'finish poweroff' USR2",
      // Ctrl-Alt-Del (stop()'s request through the virtio keyboard) is a clean power-off.
      "echo 0 >/proc/sys/kernel/ctrl-alt-del",
      "trap 'finish poweroff' INT",
    ]) {
      assert.ok(init.includes(needle), `init lacks: ${needle}`);
    }
  });

  test("modules load before VIREO-READY; the disk root; the device checks and the run hook", () => {
    const at = (needle: string) => {
      const i = init.indexOf(needle);
      assert.ok(i >= 0, `init lacks: ${needle}`);
      return i;
    };
    const ready = at('echo "VIREO-READY"');
    assert.ok(at('<"$moddir/load-order"') < ready);
    assert.ok(at("\nload_modules\n") < ready);
    assert.ok(at("insmod") < ready);
    assert.ok(at("exec $bb switch_root /newroot /sbin/init") < ready);
    assert.ok(at('load_for "fs-$fstype"') < at('mount -t "$fstype"'));
    for (const needle of [
      "CHECK root=",
      "CHECK modules=",
      "CHECK virtio=",
      "CHECK virtio-blk=/dev/",
      "CHECK virtio-net=",
      "CHECK hwrng=",
      "CHECK hvc0=yes",
      "CHECK run-status=",
      "param vireo.run",
      "base64 -d",
      "param vireo.modules",
      "mount -o remount,ro /",
    ]) {
      at(needle);
    }
  });

  test("every applet the init calls by name is linked in the initramfs", () => {
    // Commands run without $bb at the start of a pipeline stage are found through PATH at boot.
    for (const cmd of ["tr", "sort", "head", "date", "sleep", "uname", "grep", "cat"]) {
      assert.ok(BUSYBOX_LINKS.includes(cmd), cmd);
    }
  });
});

describe("initramfs contents", () => {
  const busybox = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);

  test("layout: dirs, device nodes, busybox with links, /init", () => {
    const entries = initramfsEntries(busybox, init);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    for (const dir of ["bin", "dev", "etc", "proc", "sys", "tmp", "root"])
      assert.equal(byPath.get(dir)?.type, "dir", dir);
    assert.deepEqual(byPath.get("dev/console"), {
      type: "char",
      path: "dev/console",
      major: 5,
      minor: 1,
      mode: 0o600,
    });
    assert.deepEqual(byPath.get("dev/null"), {
      type: "char",
      path: "dev/null",
      major: 1,
      minor: 3,
      mode: 0o666,
    });
    assert.deepEqual(byPath.get("init"), { type: "file", path: "init", data: init, mode: 0o755 });
    assert.deepEqual(byPath.get("sbin/modprobe"), {
      type: "symlink",
      path: "sbin/modprobe",
      target: "../bin/busybox",
    });
    assert.equal(byPath.get("bin/busybox")?.type, "file");
    assert.deepEqual(byPath.get("bin/sh"), { type: "symlink", path: "bin/sh", target: "busybox" });
    // Parents come before children.
    const index = (p: string) => entries.findIndex((e) => e.path === p);
    assert.ok(index("dev") < index("dev/console") && index("bin") < index("bin/sh"));
  });

  test("kernel module entries go in after the base layout", () => {
    const modules = [
      { type: "dir" as const, path: "lib" },
      { type: "file" as const, path: "lib/modules/load-order", data: "# x\n" },
    ];
    const entries = initramfsEntries(busybox, init, modules);
    assert.deepEqual(entries.slice(-2), modules);
    const cpio = gunzipSync(buildInitramfs(busybox, init, modules));
    assert.ok(cpio.includes(Buffer.from("lib/modules/load-order\0")));
  });

  test("gzip'd newc archive holding /init verbatim", () => {
    const cpio = gunzipSync(buildInitramfs(busybox, init));
    assert.equal(cpio.subarray(0, 6).toString(), "070701");
    assert.ok(cpio.includes(Buffer.from(`init\0`)));
    assert.ok(cpio.includes(Buffer.from(init)));
    assert.ok(cpio.includes(Buffer.from("TRAILER!!!\0")));
  });

  test("RISC-V Image header check", () => {
    const header = new Uint8Array(0x40);
    header.set([0x4d, 0x5a]);
    header.set(Buffer.from("RISCV\0\0\0RSC\x05", "latin1"), 0x30);
    assert.ok(isRiscvImage(header));
    header[0x38] = 0;
    assert.ok(!isRiscvImage(header));
  });
});
