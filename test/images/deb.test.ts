import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractFromDeb, TarReader } from "../../src/images/deb.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-deb-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const longDir = `usr/lib/modules/6.12.107+deb13-riscv64/kernel/drivers/${"very-long-directory-name/".repeat(5)}`;
const payload = new Uint8Array(100_003).map((_, i) => (i * 31 + 1) & 0xff);

/** A tree with short and >100-character names, packed by the system tar in the given format. */
function makeTar(format: "gnu" | "pax" | "ustar"): Uint8Array {
  const root = mkdtempSync(join(scratch, `${format}-`));
  mkdirSync(join(root, "boot"), { recursive: true });
  mkdirSync(join(root, longDir), { recursive: true });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  writeFileSync(join(root, "boot/config"), "CONFIG_X=y\n");
  writeFileSync(join(root, "boot/vmlinux-test"), payload);
  writeFileSync(join(root, longDir, "virtio_mmio.ko.xz"), "module");
  writeFileSync(join(root, "usr/bin/busybox"), "bb");
  writeFileSync(join(root, "empty"), "");
  const members = ["./boot", "./usr/bin", "./empty"];
  if (format !== "ustar") members.splice(1, 0, `./${longDir}`);
  const r = spawnSync("tar", ["-c", `--format=${format}`, "-C", root, ...members], { maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr?.toString());
  return new Uint8Array(r.stdout);
}

function readAll(tar: Uint8Array, want: (name: string) => boolean, chunk: number) {
  const files = new Map<string, Uint8Array>();
  const reader = new TarReader(want, (name, data) => files.set(name, data));
  for (let i = 0; i < tar.length; i += chunk) reader.push(tar.subarray(i, i + chunk));
  return { files, reader };
}

const hasTar = spawnSync("tar", ["--version"]).status === 0;

describe("tar stream reader", { skip: hasTar ? false : "tar(1) is not on PATH" }, () => {
  for (const format of ["gnu", "pax", "ustar"] as const) {
    test(`${format} format, any chunking: wanted files only, names without ./`, () => {
      const tar = makeTar(format);
      for (const chunk of [1, 511, 512, 4096, 65_536, tar.length]) {
        const { files, reader } = readAll(tar, (n) => n !== "boot/config", chunk);
        assert.ok(reader.ended, `end of archive seen (chunk ${chunk})`);
        assert.deepEqual(files.get("boot/vmlinux-test"), payload);
        assert.equal(Buffer.from(files.get("usr/bin/busybox") as Uint8Array).toString(), "bb");
        assert.equal(files.get("empty")?.length, 0);
        assert.ok(!files.has("boot/config"));
        assert.ok(![...files.keys()].some((n) => n.startsWith("./") || n.endsWith("/")), "no dirs, no ./");
        if (format !== "ustar") {
          assert.equal(
            Buffer.from(files.get(`${longDir}virtio_mmio.ko.xz`) as Uint8Array).toString(),
            "module",
          );
        }
      }
    });
  }
});

const hasDpkgDeb = spawnSync("dpkg-deb", ["--version"]).status === 0;
if (!hasDpkgDeb) process.stderr.write("deb.test: dpkg-deb not on PATH, skipping the .deb extraction tests\n");

describe("extractFromDeb", { skip: hasDpkgDeb ? false : "dpkg-deb is not on PATH" }, () => {
  const pkg = join(scratch, "pkg");
  mkdirSync(join(pkg, "DEBIAN"), { recursive: true });
  mkdirSync(join(pkg, "boot"), { recursive: true });
  mkdirSync(join(pkg, "usr/bin"), { recursive: true });
  writeFileSync(
    join(pkg, "DEBIAN/control"),
    "Package: vireo-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n",
  );
  writeFileSync(join(pkg, "boot/vmlinux-1.0-test"), payload);
  writeFileSync(join(pkg, "usr/bin/busybox"), "#!bb\n");
  const deb = join(scratch, "vireo-test.deb");
  const built = spawnSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", pkg, deb], {
    encoding: "utf8",
  });

  test("writes the wanted members (first matching alternative) with the given mode", async () => {
    assert.equal(built.status, 0, built.stderr);
    const out = mkdtempSync(join(scratch, "out-"));
    await extractFromDeb(deb, [
      { names: ["boot/vmlinux-1.0-test"], dest: join(out, "Image") },
      { names: ["bin/busybox", "usr/bin/busybox"], dest: join(out, "busybox"), mode: 0o755 },
    ]);
    assert.deepEqual(new Uint8Array(readFileSync(join(out, "Image"))), payload);
    assert.equal(readFileSync(join(out, "busybox"), "utf8"), "#!bb\n");
    assert.equal(statSync(join(out, "busybox")).mode & 0o777, 0o755);
  });

  test("a member the package lacks is a UserError naming it", async () => {
    await assert.rejects(
      extractFromDeb(deb, [{ names: ["boot/vmlinux-2.0-test"], dest: join(scratch, "nope") }]),
      (e: unknown) => e instanceof UserError && /has no boot\/vmlinux-2\.0-test/.test(e.message),
    );
  });

  test("not a .deb: dpkg-deb's error as a UserError", async () => {
    const bad = join(scratch, "bad.deb");
    writeFileSync(bad, "not an ar archive\n");
    await assert.rejects(extractFromDeb(bad, [{ names: ["x"], dest: join(scratch, "x") }]), UserError);
  });
});
