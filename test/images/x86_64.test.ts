// The x86_64 recipe offline: finding and unpacking a bzImage's payload (synthetic bzImages with xz and
// gzip payloads), the recipe's registration, and the initramfs rebuilt from the cache after an init
// change. The real fetch is in fetch-net-x86.test.ts (VIREO_NET_TESTS=1).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { AGENT_BINARY, AGENT_FILE } from "../../src/images/agent.js";
import { SystemApt } from "../../src/images/apt.js";
import { artifactRecord, imageDir, type Manifest, writeManifest } from "../../src/images/cache.js";
import { buildCpio, readCpio } from "../../src/images/cpio.js";
import { fetchImage } from "../../src/images/fetch.js";
import { INIT_INPUT, initScriptPath } from "../../src/images/initramfs.js";
import { moduleEntries, parseModinfo } from "../../src/images/modules.js";
import { recipeFor } from "../../src/images/recipes.js";
import {
  BUSYBOX_FILE,
  BZIMAGE_FILE,
  bzImagePayload,
  extractVmlinux,
  hasPvhEntry,
  INITRD_FILE,
  MODULES_FILE,
  VMLINUX_FILE,
  x86Recipe,
} from "../../src/images/x86_64.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-x86-image-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A minimal x86-64 ELF header (no program headers: not a PVH kernel) padded to `size` bytes. */
function fakeElf(size = 4096): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  b.fill(0, 0, 64);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  return b;
}

/**
 * A bzImage shell around `compressed` (the stream) with the kernel build's trailing le32 size:
 * 2 setup sectors plus the boot sector, then 0x100 bytes of "decompressor" before the payload.
 */
function fakeBzImage(compressed: Uint8Array, size: number, version = 0x020f): Buffer {
  const setupSects = 2;
  const payloadOffset = 0x100;
  const start = (setupSects + 1) * 512;
  const payload = Buffer.concat([Buffer.from(compressed), Buffer.alloc(4)]);
  payload.writeUInt32LE(size, payload.length - 4);
  const b = Buffer.alloc(start + payloadOffset + payload.length + 64);
  b[0x1f1] = setupSects;
  b.writeUInt16LE(0xaa55, 0x1fe);
  b.write("HdrS", 0x202, "latin1");
  b.writeUInt16LE(version, 0x206);
  b.writeUInt32LE(payloadOffset, 0x248);
  b.writeUInt32LE(payload.length, 0x24c);
  payload.copy(b, start + payloadOffset);
  return b;
}

const hasXz = spawnSync("xz", ["--version"]).status === 0;

function xz(data: Uint8Array): Uint8Array {
  const r = spawnSync("xz", ["-c", "--check=crc32"], { input: data });
  assert.equal(r.status, 0, String(r.stderr));
  return new Uint8Array(r.stdout);
}

describe("bzImage payload", () => {
  test("the setup header's payload_offset/payload_length and the trailing size", () => {
    const elf = fakeElf();
    const gz = gzipSync(elf);
    const p = bzImagePayload(fakeBzImage(gz, elf.length));
    assert.deepEqual(p, {
      offset: 3 * 512 + 0x100,
      length: gz.length + 4,
      format: "gzip",
      uncompressedSize: elf.length,
    });
  });

  test("an xz payload is unpacked with xz", { skip: hasXz ? false : "xz is not installed" }, () => {
    const elf = fakeElf(100_000);
    const out = extractVmlinux(fakeBzImage(xz(elf), elf.length));
    assert.ok(Buffer.from(out).equals(elf));
    assert.equal(bzImagePayload(fakeBzImage(xz(elf), elf.length)).format, "xz");
    assert.equal(hasPvhEntry(out), false, "no PVH note in a bare ELF header");
  });

  test("a gzip payload is unpacked in-process", () => {
    const elf = fakeElf();
    assert.ok(Buffer.from(extractVmlinux(fakeBzImage(gzipSync(elf), elf.length))).equals(elf));
  });

  test("bad input: not a bzImage, old protocol, payload outside the file, wrong size, not ELF", () => {
    const elf = fakeElf();
    const gz = gzipSync(elf);
    assert.throws(() => bzImagePayload(Buffer.alloc(4096), "k"), /k: not an x86 bzImage/);
    assert.throws(() => bzImagePayload(fakeBzImage(gz, elf.length, 0x0206)), /no payload fields/);
    const outside = fakeBzImage(gz, elf.length);
    outside.writeUInt32LE(1 << 30, 0x24c);
    assert.throws(() => bzImagePayload(outside), /is not in the file/);
    assert.throws(() => extractVmlinux(fakeBzImage(gz, elf.length + 1)), /decompressed to 4096 bytes/);
    const text = Buffer.from("not an elf file at all");
    assert.throws(() => extractVmlinux(fakeBzImage(gzipSync(text), text.length)), /not an x86-64 ELF/);
    assert.throws(() => extractVmlinux(fakeBzImage(Buffer.from("BZh9...."), 8)), /a bzip2-compressed kernel/);
    try {
      extractVmlinux(fakeBzImage(Buffer.from("????"), 8));
      assert.fail("no error");
    } catch (e) {
      assert.ok(e instanceof UserError);
    }
  });
});

describe("the system's apt", () => {
  test("look-ups go to the system's apt-cache; a failure names the package and suggests apt-get update", async () => {
    const bin = join(scratch, "fake-bin");
    mkdirSync(bin, { recursive: true });
    const script = join(bin, "apt-cache");
    writeFileSync(
      script,
      '#!/bin/sh\nif [ "$1" = depends ]; then printf "linux-image-amd64\\n  Depends: linux-image-6.1.0-9-amd64\\n"; exit 0; fi\necho "E: No packages found" >&2\nexit 100\n',
      { mode: 0o755 },
    );
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved ?? ""}`;
    try {
      const apt = new SystemApt({ arch: "amd64", suite: "bookworm" });
      assert.equal(apt.env().APT_CONFIG, process.env.APT_CONFIG);
      assert.equal(apt.env().LC_ALL, "C");
      assert.match(await apt.depends("linux-image-amd64"), /Depends: linux-image-6\.1\.0-9-amd64/);
      await assert.rejects(
        apt.show("busybox-static"),
        (e: unknown) =>
          e instanceof UserError &&
          /^package busybox-static not found for amd64 in Debian bookworm \(No packages found\) \(.*'apt-get update'/.test(
            e.message,
          ),
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe("x86_64 recipe", () => {
  test("x86_64 and amd64 name it; the cache dir is x86_64", () => {
    assert.equal(recipeFor("x86_64"), x86Recipe);
    assert.equal(recipeFor("amd64"), x86Recipe);
    assert.equal(x86Recipe.arch, "x86_64");
    assert.deepEqual(x86Recipe.summary, [BZIMAGE_FILE, VMLINUX_FILE, INITRD_FILE]);
    assert.equal(imageDir("x86_64", { XDG_CACHE_HOME: "/c" }), "/c/vireo/images/x86_64");
    assert.match(initScriptPath(), /guest\/init$/);
  });

  test("an init change rebuilds the initramfs from the cached busybox and modules, no download", async () => {
    const env = { XDG_CACHE_HOME: join(scratch, "xdg") };
    const dir = imageDir("x86_64", env);
    mkdirSync(dir, { recursive: true });
    const release = "6.1.0-99-amd64";
    const info = Buffer.from("name=virtio_mmio\0depends=\0alias=acpi*:LNRO0005:*\0", "utf8");
    const shstrtab = Buffer.from("\0.modinfo\0.shstrtab\0", "latin1");
    const shoff = Math.ceil((64 + info.length + shstrtab.length) / 8) * 8;
    const ko = Buffer.alloc(shoff + 3 * 64);
    ko.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    ko.writeBigUInt64LE(BigInt(shoff), 0x28);
    ko.writeUInt16LE(64, 0x3a);
    ko.writeUInt16LE(3, 0x3c);
    ko.writeUInt16LE(2, 0x3e);
    info.copy(ko, 64);
    shstrtab.copy(ko, 64 + info.length);
    for (const [i, name, offset, size] of [
      [1, 1, 64, info.length],
      [2, 10, 64 + info.length, shstrtab.length],
    ] as const) {
      ko.writeUInt32LE(name, shoff + i * 64);
      ko.writeBigUInt64LE(BigInt(offset), shoff + i * 64 + 0x18);
      ko.writeBigUInt64LE(BigInt(size), shoff + i * 64 + 0x20);
    }
    const modules = [
      { name: "virtio_mmio", path: "kernel/drivers/virtio/virtio_mmio.ko", data: ko, info: parseModinfo(ko) },
    ];
    const files: Record<string, Uint8Array | string> = {
      [BZIMAGE_FILE]: "not really a kernel",
      [VMLINUX_FILE]: "nor this",
      [INITRD_FILE]: "old initramfs",
      [BUSYBOX_FILE]: "fake busybox",
      [MODULES_FILE]: buildCpio(moduleEntries({ release, modules })),
      [AGENT_FILE]: buildCpio([
        { type: "dir", path: "usr" },
        { type: "dir", path: "usr/sbin" },
        { type: "file", path: "usr/sbin/qemu-ga", data: "fake agent", mode: 0o755 },
        { type: "dir", path: "lib64" },
        { type: "symlink", path: "lib64/ld-linux-x86-64.so.2", target: "../lib/x86_64-linux-gnu/ld.so" },
      ]),
    };
    const artifacts: Manifest["artifacts"] = {};
    for (const [name, data] of Object.entries(files)) {
      writeFileSync(join(dir, name), data);
      artifacts[name] = artifactRecord(join(dir, name));
    }
    writeManifest(dir, {
      format: 1,
      arch: "x86_64",
      source: "debian bookworm",
      mirror: "",
      created: new Date().toISOString(),
      kernelRelease: release,
      packages: [],
      artifacts,
      inputs: { ...x86Recipe.inputs(), [INIT_INPUT]: "an older init" },
    });
    const lines: string[] = [];
    const r = await fetchImage(x86Recipe, { env, stderr: { write: (t: string) => lines.push(t) } });
    assert.equal(r.action, "refreshed");
    assert.equal(r.reason, "guest/init changed");
    assert.deepEqual(lines, ["rebuilding initramfs…\n"]);
    assert.equal(r.kernel, join(dir, BZIMAGE_FILE));
    const entries = readCpio(gunzipSync(readFileSync(join(dir, INITRD_FILE))));
    const init = entries.find((e) => e.path === "init");
    assert.ok(init?.type === "file");
    assert.ok(Buffer.from(init.data).equals(readFileSync(initScriptPath())));
    // The guest agent, as in the riscv64 image: its files from the cached agent.cpio (each path once),
    // the shutdown command it runs, and the /init that starts it on vsock.
    const paths = entries.map((e) => e.path);
    assert.equal(new Set(paths).size, paths.length);
    for (const p of [AGENT_BINARY, "lib64/ld-linux-x86-64.so.2", "sbin/shutdown"])
      assert.ok(paths.includes(p), p);
    assert.match(
      Buffer.from(init.data).toString(),
      /^\s*\/usr\/sbin\/qemu-ga --method=vsock-listen --path=4294967295:1234 /m,
    );
    const order = entries.find((e) => e.path === `lib/modules/${release}/load-order`);
    assert.ok(order?.type === "file");
    assert.match(
      Buffer.from(order.data).toString(),
      /^virtio_mmio kernel\/drivers\/virtio\/virtio_mmio\.ko - acpi\*:LNRO0005:\*$/m,
    );
    const again = await fetchImage(x86Recipe, { env, quiet: true, verify: true });
    assert.equal(again.action, "up-to-date");
    assert.equal(again.manifest.inputs.agent, x86Recipe.inputs().agent);

    // A cache from before the agent: the packages are needed, so no refresh (a full build instead).
    const before = { ...again.manifest, inputs: { ...again.manifest.inputs } };
    delete before.inputs.agent;
    const ctx = { step: () => {} } as unknown as Parameters<NonNullable<typeof x86Recipe.refresh>>[2];
    assert.equal(await x86Recipe.refresh?.(dir, before, ctx), undefined);
    assert.ok(x86Recipe.artifacts.includes(AGENT_FILE));
  });
});
