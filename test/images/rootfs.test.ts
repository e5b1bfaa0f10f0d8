import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CpioEntry } from "../../src/images/cpio.js";
import {
  buildExt4,
  busyboxApplets,
  FSTAB,
  findTool,
  rootfsEntries,
  sparseCopy,
} from "../../src/images/rootfs.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-rootfs-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("busybox applet table", () => {
  test("finds the sorted NUL-separated names starting with [ and [[", () => {
    const names = ["[", "[[", "ash", "cat", "ls", "mount", "sh", "switch_root", "umount", "xz", "zcat"];
    const binary = Buffer.concat([
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 7]),
      Buffer.from(`${names.join("\0")}\0\0`, "latin1"),
      Buffer.from([1, 2, 3]),
    ]);
    assert.deepEqual(busyboxApplets(binary), names);
  });

  test("undefined when absent, too short or unsorted", () => {
    assert.equal(busyboxApplets(Buffer.from("no table here")), undefined);
    assert.equal(busyboxApplets(Buffer.from("[\0[[\0ls\0\0", "latin1")), undefined);
    const unsorted = ["[", "[[", "b", "a", "c", "d", "e", "f", "g", "h", "i"];
    assert.equal(busyboxApplets(Buffer.from(`${unsorted.join("\0")}\0\0`, "latin1")), undefined);
  });
});

describe("root disk contents", () => {
  const busybox = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1]);
  const modules: CpioEntry[] = [
    { type: "dir", path: "lib" },
    { type: "dir", path: "lib/modules" },
    { type: "file", path: "lib/modules/load-order", data: "# none\n" },
  ];
  const entries = rootfsEntries(busybox, "#!/bin/busybox sh\n", modules, [
    "[",
    "busybox",
    "init",
    "ls",
    "sh",
  ]);
  const byPath = new Map(entries.map((e) => [e.path, e]));

  test("busybox with applet links (not init), /sbin/init, /etc, device nodes, modules", () => {
    assert.deepEqual(byPath.get("bin/ls"), { type: "symlink", path: "bin/ls", target: "busybox" });
    assert.deepEqual(byPath.get("bin/["), { type: "symlink", path: "bin/[", target: "busybox" });
    assert.ok(!byPath.has("bin/init"));
    assert.equal(byPath.get("bin/busybox")?.type, "file");
    assert.deepEqual(byPath.get("sbin/init"), {
      type: "file",
      path: "sbin/init",
      data: "#!/bin/busybox sh\n",
      mode: 0o755,
    });
    assert.deepEqual(byPath.get("sbin/modprobe"), {
      type: "symlink",
      path: "sbin/modprobe",
      target: "../bin/busybox",
    });
    assert.equal(byPath.get("etc/fstab")?.type, "file");
    assert.match(FSTAB, /^\/dev\/vda \/ ext4 rw 0 1$/m);
    assert.deepEqual(byPath.get("tmp"), { type: "dir", path: "tmp", mode: 0o1777 });
    assert.deepEqual(byPath.get("root"), { type: "dir", path: "root", mode: 0o700 });
    assert.equal(byPath.get("dev/console")?.type, "char");
    assert.equal(byPath.get("lib/modules/load-order")?.type, "file");
    const index = (p: string) => entries.findIndex((e) => e.path === p);
    assert.ok(
      index("bin") < index("bin/ls") && index("usr") < index("usr/bin") && index("var") < index("var/tmp"),
    );
  });
});

describe("sparse copy", () => {
  test("same bytes, zero blocks become holes", () => {
    const src = join(scratch, "src.img");
    const size = 4 * 1024 * 1024 + 1000;
    const fd = openSync(src, "w");
    writeSync(fd, Buffer.from("head"), 0, 4, 0);
    writeSync(fd, Buffer.alloc(70_000, 0xaa), 0, 70_000, 1_000_000);
    writeSync(fd, Buffer.from("tail"), 0, 4, size - 4);
    closeSync(fd);
    const dest = join(scratch, "dest.img");
    writeFileSync(dest, "old contents");
    sparseCopy(src, dest);
    assert.ok(readFileSync(dest).equals(readFileSync(src)));
    const st = statSync(dest);
    assert.equal(st.size, size);
    assert.ok(st.blocks * 512 < 1024 * 1024, `allocated ${st.blocks * 512} bytes`);
  });
});

const mke2fs = findTool("mke2fs");
const debugfs = findTool("debugfs");
const e2fsck = findTool("e2fsck");
const hasE2fs = mke2fs !== undefined && debugfs !== undefined;
if (!hasE2fs) process.stderr.write("rootfs.test: mke2fs/debugfs not found, skipping the ext4 build test\n");

describe("ext4 image", { skip: hasE2fs ? false : "mke2fs/debugfs (e2fsprogs) not found" }, () => {
  const image = join(scratch, "disk.ext4");
  const entries: CpioEntry[] = [
    { type: "dir", path: "bin" },
    { type: "dir", path: "dev" },
    { type: "dir", path: "root", mode: 0o700 },
    { type: "dir", path: "tmp", mode: 0o1777 },
    { type: "file", path: "bin/busybox", data: "#!fake busybox\n", mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "file", path: "root/note", data: "hello ext4\n" },
    { type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { type: "block", path: "dev/vda", major: 254, minor: 0, mode: 0o660 },
  ];
  const debug = (request: string) =>
    spawnSync(debugfs as string, ["-R", request, image], { encoding: "utf8" }).stdout;

  test("files, links, modes, device nodes, all owned by root; sparse; fsck-clean", () => {
    buildExt4(entries, image, { size: 8 * 1024 * 1024, label: "test-root" });
    const st = statSync(image);
    assert.equal(st.size, 8 * 1024 * 1024);
    assert.ok(st.blocks * 512 < st.size / 2, `allocated ${st.blocks * 512} of ${st.size}`);
    assert.equal(debug("cat /root/note"), "hello ext4\n");
    assert.match(debug("stat /bin/busybox"), /Mode: +0755/);
    assert.match(debug("stat /bin/busybox"), /User: +0 +Group: +0/);
    assert.match(debug("stat /tmp"), /Mode: +01777/);
    assert.match(debug("stat /root"), /Mode: +0700/);
    assert.match(debug("stat /bin/sh"), /Type: symlink/);
    assert.match(debug("stat /bin/sh"), /Fast link dest: "busybox"/);
    const console = debug("stat /dev/console");
    assert.match(console, /Type: character special/);
    assert.match(console, /Mode: +0600/);
    assert.match(console, /User: +0 +Group: +0/);
    assert.match(console, /Device major\/minor number: 05:01/);
    assert.match(debug("stat /dev/vda"), /Type: block special/);
    assert.match(debug("stats"), /Filesystem volume name: +test-root/);
    if (e2fsck !== undefined) {
      const fsck = spawnSync(e2fsck, ["-fn", image], { encoding: "utf8" });
      assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
    }
  });

  test("a path debugfs cannot take is refused before anything is written", () => {
    assert.throws(
      () =>
        buildExt4([{ type: "file", path: "a b", data: "" }], join(scratch, "bad.ext4"), { size: 4 << 20 }),
      /unsupported character/,
    );
  });
});
