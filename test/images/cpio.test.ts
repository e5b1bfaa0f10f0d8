import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildCpio,
  type CpioEntry,
  cpioPath,
  readCpio,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "../../src/images/cpio.js";
import { after, describe, test } from "../support/test.js";

interface ParsedEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevmajor: number;
  rdevminor: number;
  check: number;
  data: Uint8Array;
  /** Offsets where the header and the data start (both must be 4-aligned). */
  headerAt: number;
  dataAt: number;
}

/** A minimal newc reader, independent of the writer: returns the entries including the trailer. */
function readNewc(archive: Uint8Array): { entries: ParsedEntry[]; end: number } {
  const text = (start: number, length: number) =>
    Buffer.from(archive.subarray(start, start + length)).toString("latin1");
  const entries: ParsedEntry[] = [];
  let pos = 0;
  for (;;) {
    assert.equal(pos % 4, 0, `header at ${pos} is not 4-aligned`);
    assert.equal(text(pos, 6), "070701", `bad magic at ${pos}`);
    const f = (i: number) => {
      const hex = text(pos + 6 + i * 8, 8);
      assert.match(hex, /^[0-9a-f]{8}$/, `field ${i} at ${pos} is not 8 lower-case hex digits`);
      return Number.parseInt(hex, 16);
    };
    const namesize = f(11);
    const filesize = f(6);
    const name = text(pos + 110, namesize);
    assert.equal(name.at(-1), "\0", "name must be NUL-terminated");
    let dataAt = pos + 110 + namesize;
    const namePad = archive.subarray(dataAt, (dataAt + 3) & ~3);
    assert.ok(
      namePad.every((b) => b === 0),
      "name padding must be zeros",
    );
    dataAt = (dataAt + 3) & ~3;
    const data = archive.subarray(dataAt, dataAt + filesize);
    assert.equal(data.length, filesize, `truncated data for ${name}`);
    const dataEnd = dataAt + filesize;
    const next = (dataEnd + 3) & ~3;
    assert.ok(
      archive.subarray(dataEnd, next).every((b) => b === 0),
      "data padding must be zeros",
    );
    assert.equal(f(7), 0, "devmajor");
    assert.equal(f(8), 0, "devminor");
    entries.push({
      name: name.slice(0, -1),
      ino: f(0),
      mode: f(1),
      uid: f(2),
      gid: f(3),
      nlink: f(4),
      mtime: f(5),
      rdevmajor: f(9),
      rdevminor: f(10),
      check: f(12),
      data,
      headerAt: pos,
      dataAt,
    });
    pos = next;
    if (name === "TRAILER!!!\0") return { entries, end: pos };
  }
}

const scratch = mkdtempSync(join(tmpdir(), "vireo-cpio-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

// Data sizes 0..5 and odd name lengths exercise every padding case.
const bigData = new Uint8Array(70_001).map((_, i) => (i * 7 + 3) & 0xff);
const sample: CpioEntry[] = [
  { type: "dir", path: "bin" },
  { type: "dir", path: "/dev/" },
  { type: "dir", path: "tmp", mode: 0o1777 },
  { type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
  { type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
  { type: "block", path: "dev/vda", major: 254, minor: 0 },
  { type: "file", path: "bin/busybox", data: bigData, mode: 0o755 },
  { type: "symlink", path: "bin/sh", target: "busybox" },
  { type: "symlink", path: "./bin/abs", target: "/bin/busybox" },
  { type: "file", path: "empty", data: new Uint8Array(0) },
  { type: "file", path: "a1", data: "x" },
  { type: "file", path: "ab2", data: "xy" },
  { type: "file", path: "abc3", data: "xyz" },
  { type: "file", path: "abcd4", data: "wxyz" },
  { type: "file", path: "abcde5", data: "vwxyz" },
  { type: "file", path: "init", data: "#!/bin/sh\necho hi\n", mode: 0o755 },
];

describe("cpio newc writer", () => {
  const archive = buildCpio(sample, { mtime: 1_700_000_000 });
  const { entries, end } = readNewc(archive);
  const byName = new Map(entries.map((e) => [e.name, e]));

  test("entries in order, relative names, then the trailer at the end", () => {
    assert.deepEqual(
      entries.map((e) => e.name),
      [...sample.map((e) => cpioPath(e.path)), "TRAILER!!!"],
    );
    assert.equal(end, archive.length, "nothing after the trailer");
    assert.equal(archive.length % 4, 0);
    const trailer = entries.at(-1) as ParsedEntry;
    assert.equal(trailer.data.length, 0);
    assert.equal(trailer.mode, 0);
  });

  test("modes and types", () => {
    const mode = (n: string) => byName.get(n)?.mode as number;
    assert.equal(mode("bin"), S_IFDIR | 0o755);
    assert.equal(mode("tmp"), S_IFDIR | 0o1777);
    assert.equal(mode("bin/busybox"), S_IFREG | 0o755);
    assert.equal(mode("empty"), S_IFREG | 0o644);
    assert.equal(mode("bin/sh"), S_IFLNK | 0o777);
    assert.equal(mode("dev/console"), S_IFCHR | 0o600);
    assert.equal(mode("dev/null") & S_IFMT, S_IFCHR);
    assert.equal(mode("dev/vda") & S_IFMT, 0o060000);
    assert.equal(byName.get("bin")?.nlink, 2);
    assert.equal(byName.get("init")?.nlink, 1);
  });

  test("device nodes carry rdev major/minor and no data", () => {
    const console = byName.get("dev/console") as ParsedEntry;
    assert.deepEqual([console.rdevmajor, console.rdevminor, console.data.length], [5, 1, 0]);
    const nul = byName.get("dev/null") as ParsedEntry;
    assert.deepEqual([nul.rdevmajor, nul.rdevminor], [1, 3]);
    assert.equal(byName.get("bin/busybox")?.rdevmajor, 0);
  });

  test("symlink targets are the data", () => {
    assert.equal(Buffer.from(byName.get("bin/sh")?.data as Uint8Array).toString(), "busybox");
    assert.equal(Buffer.from(byName.get("bin/abs")?.data as Uint8Array).toString(), "/bin/busybox");
  });

  test("file data is intact and 4-byte aligned", () => {
    assert.deepEqual(byName.get("bin/busybox")?.data, bigData);
    for (const [name, text] of [
      ["a1", "x"],
      ["ab2", "xy"],
      ["abc3", "xyz"],
      ["abcd4", "wxyz"],
      ["abcde5", "vwxyz"],
    ]) {
      assert.equal(Buffer.from(byName.get(name as string)?.data as Uint8Array).toString(), text);
    }
    for (const e of entries) assert.equal(e.dataAt % 4, 0, `${e.name} data offset`);
  });

  test("owner root, fixed mtime, unique inodes, zero check", () => {
    const files = entries.slice(0, -1);
    for (const e of files) {
      assert.deepEqual([e.uid, e.gid, e.mtime, e.check], [0, 0, 1_700_000_000, 0], e.name);
    }
    assert.equal(new Set(files.map((e) => e.ino)).size, files.length);
  });

  test("same input, same bytes (mtime 0 by default)", () => {
    assert.deepEqual(buildCpio(sample), buildCpio(sample));
    assert.equal(readNewc(buildCpio(sample)).entries[0]?.mtime, 0);
  });

  test("rejects duplicate paths, '..' and the reserved trailer name", () => {
    assert.throws(
      () =>
        buildCpio([
          { type: "dir", path: "a" },
          { type: "dir", path: "/a" },
        ]),
      /twice/,
    );
    assert.throws(() => buildCpio([{ type: "dir", path: "a/../b" }]), /'\.\.'/);
    assert.throws(() => buildCpio([{ type: "file", path: "TRAILER!!!", data: "" }]), /reserved/);
  });

  test("an empty archive is just the trailer", () => {
    const { entries: only } = readNewc(buildCpio([]));
    assert.deepEqual(
      only.map((e) => e.name),
      ["TRAILER!!!"],
    );
  });
});

const cpioTool = spawnSync("cpio", ["--version"], { encoding: "utf8" });
const hasCpio = cpioTool.status === 0;
if (!hasCpio) process.stderr.write("cpio.test: system cpio not on PATH, skipping the cpio -t / -i checks\n");

describe("cpio newc reader", () => {
  test("reads the writer's output back: normalised paths, default modes, text as bytes", () => {
    const back = readCpio(buildCpio(sample));
    const expected = sample.map((e): CpioEntry => {
      const path = cpioPath(e.path);
      switch (e.type) {
        case "dir":
          return { type: "dir", path, mode: e.mode ?? 0o755 };
        case "file":
          return {
            type: "file",
            path,
            data: typeof e.data === "string" ? new TextEncoder().encode(e.data) : e.data,
            mode: e.mode ?? 0o644,
          };
        case "symlink":
          return { type: "symlink", path, target: e.target };
        default:
          return { type: e.type, path, major: e.major, minor: e.minor, mode: e.mode ?? 0o600 };
      }
    });
    assert.deepEqual(back, expected);
  });

  test("truncated or foreign input is an error", () => {
    const archive = buildCpio(sample);
    assert.throws(() => readCpio(archive.subarray(0, archive.length - 200)), /TRAILER|runs past/);
    assert.throws(() => readCpio(new TextEncoder().encode("070707".padEnd(200, "0"))), /bad magic/);
  });
});

describe("cpio newc writer against the system cpio", {
  skip: hasCpio ? false : "cpio(1) is not on PATH",
}, () => {
  test("cpio -tv lists every entry with its type, mode and device numbers", () => {
    const path = join(scratch, "sample.cpio");
    writeFileSync(path, buildCpio(sample));
    const r = spawnSync("cpio", ["-t", "-v", "-F", path], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, sample.length);
    const line = (name: string) =>
      lines.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `)) ?? "";
    assert.match(line("dev/console"), /^crw-------\s.*\b5,\s*1\b/);
    assert.match(line("dev/null"), /^crw-rw-rw-\s.*\b1,\s*3\b/);
    assert.match(line("dev/vda"), /^brw-------\s.*\b254,\s*0\b/);
    assert.match(line("bin/busybox"), /^-rwxr-xr-x\s.*\b70001\b/);
    assert.match(line("bin/sh"), /^lrwxrwxrwx\s.*bin\/sh -> busybox$/);
    assert.match(line("tmp"), /^drwxrwxrwt\s/);
    assert.match(r.stderr, /blocks/);
  });

  test("cpio -i extracts files, modes and symlinks intact", () => {
    const noDevices = sample.filter((e) => e.type !== "char" && e.type !== "block");
    const path = join(scratch, "nodev.cpio");
    writeFileSync(path, buildCpio(noDevices));
    const dest = mkdtempSync(join(scratch, "x-"));
    const r = spawnSync("cpio", ["-i", "-d", "--no-absolute-filenames", "-F", path], {
      cwd: dest,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(new Uint8Array(readFileSync(join(dest, "bin/busybox"))), bigData);
    assert.equal(lstatSync(join(dest, "bin/busybox")).mode & 0o7777, 0o755);
    assert.equal(readlinkSync(join(dest, "bin/sh")), "busybox");
    assert.ok(lstatSync(join(dest, "bin/sh")).isSymbolicLink());
    assert.equal(readFileSync(join(dest, "init"), "utf8"), "#!/bin/sh\necho hi\n");
    assert.equal(readFileSync(join(dest, "abcde5"), "utf8"), "vwxyz");
    assert.equal(readFileSync(join(dest, "empty")).length, 0);
    assert.ok(lstatSync(join(dest, "tmp")).isDirectory());
  });
});
