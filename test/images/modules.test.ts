import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildCpio, readCpio } from "../../src/images/cpio.js";
import {
  aliasCandidates,
  type Builtins,
  decompressModule,
  extractModules,
  type KernelModule,
  LOAD_ORDER_FILE,
  loadOrderText,
  type ModInfo,
  moduleEntries,
  moduleNameOf,
  moduleNeeds,
  modulesAliasText,
  modulesDepText,
  modulesFromEntries,
  NEEDS_XZ,
  parseBuiltinModinfo,
  parseModinfo,
  parseModinfoStrings,
  parseModulesBuiltin,
  parseSoftdep,
  resolveModules,
} from "../../src/images/modules.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-modules-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A minimal ELF relocatable with a .text, a .modinfo holding `modinfo` (NUL-separated, with padding as
 * modpost leaves it) and a .shstrtab, 64- or 32-bit, either byte order.
 */
function elfWithModinfo(modinfo: string[], options: { is64?: boolean; little?: boolean } = {}): Uint8Array {
  const is64 = options.is64 ?? true;
  const little = options.little ?? true;
  const text = new Uint8Array([0x13, 0, 0, 0]);
  const info = Buffer.from(`${modinfo.join("\0")}\0\0\0`, "utf8");
  const shstrtab = Buffer.from("\0.text\0.modinfo\0.shstrtab\0", "latin1");
  const ehsize = is64 ? 64 : 52;
  const shentsize = is64 ? 64 : 40;
  const textAt = ehsize;
  const infoAt = textAt + text.length;
  const strAt = infoAt + info.length;
  const shoff = Math.ceil((strAt + shstrtab.length) / 8) * 8;
  const out = new Uint8Array(shoff + 4 * shentsize);
  const view = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, little ? 1 : 2, 1]);
  view.setUint16(16, 1, little); // ET_REL
  view.setUint16(18, 243, little); // EM_RISCV
  const word = (at: number, v: number) =>
    is64 ? view.setBigUint64(at, BigInt(v), little) : view.setUint32(at, v, little);
  word(is64 ? 0x28 : 0x20, shoff);
  view.setUint16(is64 ? 0x3a : 0x2e, shentsize, little);
  view.setUint16(is64 ? 0x3c : 0x30, 4, little);
  view.setUint16(is64 ? 0x3e : 0x32, 3, little);
  out.set(text, textAt);
  out.set(info, infoAt);
  out.set(shstrtab, strAt);
  const section = (index: number, name: number, type: number, offset: number, size: number) => {
    const at = shoff + index * shentsize;
    view.setUint32(at, name, little);
    view.setUint32(at + 4, type, little);
    word(at + (is64 ? 0x18 : 0x10), offset);
    word(at + (is64 ? 0x20 : 0x14), size);
  };
  section(1, 1, 1, textAt, text.length);
  section(2, 7, 1, infoAt, info.length);
  section(3, 16, 3, strAt, shstrtab.length);
  return out;
}

function mod(name: string, fields: Partial<ModInfo> = {}): ModInfo {
  return { name, depends: [], pre: [], post: [], aliases: [], ...fields };
}

const noBuiltins: Builtins = { names: new Set(), aliases: new Map() };

/** The dependency shapes of Debian's riscv64 kernel for the guest's modules. */
const debianLike = new Map<string, ModInfo>(
  [
    mod("virtio_mmio", { aliases: ["of:N*T*Cvirtio,mmio"] }),
    mod("virtio_blk", { aliases: ["virtio:d00000002v*"] }),
    mod("virtio_net", { depends: ["net_failover"], aliases: ["virtio:d00000001v*"] }),
    mod("net_failover", { depends: ["failover"] }),
    mod("failover"),
    mod("jbd2", { pre: ["crypto_crc32c"] }),
    mod("crc32c_generic", { aliases: ["crypto-crc32c", "crc32c"] }),
    mod("ext4", { depends: ["jbd2", "mbcache", "crc16"], aliases: ["fs-ext4"] }),
    mod("mbcache"),
    mod("crc16"),
  ].map((m) => [m.name, m]),
);

describe(".modinfo", () => {
  test("module names from paths; '-' and '_' alike", () => {
    assert.equal(moduleNameOf("kernel/drivers/char/hw_random/virtio-rng.ko.xz"), "virtio_rng");
    assert.equal(moduleNameOf("x/ext4.ko"), "ext4");
    assert.equal(moduleNameOf("x/a.ko.zst"), "a");
    assert.equal(moduleNameOf("x/a.ko.gz"), "a");
    assert.equal(moduleNameOf("modules.builtin"), undefined);
    assert.equal(moduleNameOf("x/a.ko.bz2"), undefined);
  });

  test("softdep: pre and post lists", () => {
    assert.deepEqual(parseSoftdep("pre: crypto-crc32c"), { pre: ["crypto_crc32c"], post: [] });
    assert.deepEqual(parseSoftdep("pre: a b-c post: d"), { pre: ["a", "b_c"], post: ["d"] });
    assert.deepEqual(parseSoftdep("post: x pre: y"), { pre: ["y"], post: ["x"] });
    assert.deepEqual(parseSoftdep(""), { pre: [], post: [] });
  });

  test("key=value strings, padding skipped", () => {
    const strings = parseModinfoStrings(Buffer.from("a=1\0\0\0b=x=y\0junk\0c=\0", "utf8"));
    assert.deepEqual(strings, [
      ["a", "1"],
      ["b", "x=y"],
      ["c", ""],
    ]);
  });

  const fields = [
    "license=GPL",
    "alias=virtio:d00000001v*",
    "softdep=pre: crypto-crc32c post: vsock-loopback",
    "depends=net_failover,failover",
    "retpoline=Y",
    "intree=Y",
    "name=virtio_net",
    "vermagic=6.12.107+deb13-riscv64 SMP mod_unload modversions riscv",
  ];
  for (const variant of [
    { is64: true, little: true },
    { is64: false, little: true },
    { is64: true, little: false },
    { is64: false, little: false },
  ]) {
    test(`parses a ${variant.is64 ? 64 : 32}-bit ${variant.little ? "little" : "big"}-endian module`, () => {
      const info = parseModinfo(elfWithModinfo(fields, variant));
      assert.deepEqual(info, {
        name: "virtio_net",
        depends: ["net_failover", "failover"],
        pre: ["crypto_crc32c"],
        post: ["vsock_loopback"],
        aliases: ["virtio:d00000001v*"],
        vermagic: "6.12.107+deb13-riscv64 SMP mod_unload modversions riscv",
      });
    });
  }

  test("an empty depends=, the file name when there is no name=", () => {
    const info = parseModinfo(elfWithModinfo(["depends=", "license=GPL"]), "virtio_rng");
    assert.deepEqual(info.depends, []);
    assert.equal(info.name, "virtio_rng");
    assert.throws(() => parseModinfo(elfWithModinfo(["depends="])), /no name=/);
  });

  test("not an ELF, or no .modinfo: errors", () => {
    assert.throws(() => parseModinfo(new Uint8Array(64)), /not an ELF/);
    const elf = elfWithModinfo(["name=x"]);
    const renamed = Buffer.from(elf);
    renamed.write(".nomodi", renamed.indexOf(".modinfo", 0, "latin1"), "latin1");
    assert.throws(() => parseModinfo(renamed), /no \.modinfo/);
    assert.throws(() => parseModinfo(elf.subarray(0, elf.length - 10)), /section headers/);
  });

  const gcc = spawnSync("riscv64-unknown-elf-gcc", ["--version"]).status === 0;
  test("parses a .modinfo section the RISC-V toolchain assembled", {
    skip: gcc ? false : "riscv64-unknown-elf-gcc is not on PATH",
  }, () => {
    const source = join(scratch, "fake_mod.c");
    writeFileSync(
      source,
      [
        'static const char a[] __attribute__((used, section(".modinfo"), aligned(1))) = "depends=jbd2,mbcache";',
        'static const char b[] __attribute__((used, section(".modinfo"), aligned(1))) = "softdep=pre: crc32c";',
        'static const char c[] __attribute__((used, section(".modinfo"), aligned(1))) = "name=fake_mod";',
        "int fake_init(void) { return 0; }",
      ].join("\n"),
    );
    const object = join(scratch, "fake_mod.o");
    const r = spawnSync("riscv64-unknown-elf-gcc", ["-c", "-O2", source, "-o", object], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const info = parseModinfo(readFileSync(object));
    assert.equal(info.name, "fake_mod");
    assert.deepEqual(info.depends, ["jbd2", "mbcache"]);
    assert.deepEqual(info.pre, ["crc32c"]);
  });

  test("modules.builtin and modules.builtin.modinfo", () => {
    const names = parseModulesBuiltin("kernel/drivers/char/virtio_console.ko\nkernel/lib/crc-ccitt.ko\n\n");
    assert.deepEqual([...names], ["virtio_console", "crc_ccitt"]);
    const aliases = parseBuiltinModinfo(
      Buffer.from("virtio_console.license=GPL\0crc32c.alias=crypto-crc32c\0crc32c.alias=crc32c\0", "utf8"),
    );
    assert.deepEqual(
      [...aliases],
      [
        ["crypto_crc32c", "crc32c"],
        ["crc32c", "crc32c"],
      ],
    );
  });
});

describe("dependency resolution and load order", () => {
  const all = new Set(debianLike.keys());

  test("dependencies first, in the order listed; soft pre through an alias", () => {
    const r = resolveModules({
      roots: ["virtio_mmio", "virtio_blk", "virtio-net", "virtio_console", "ext4"],
      modules: debianLike,
      builtins: { names: new Set(["virtio_console"]), aliases: new Map() },
      available: all,
    });
    assert.deepEqual(r.order, [
      "virtio_mmio",
      "virtio_blk",
      "failover",
      "net_failover",
      "virtio_net",
      "crc32c_generic",
      "jbd2",
      "mbcache",
      "crc16",
      "ext4",
    ]);
    assert.deepEqual(r.builtin, ["virtio_console"]);
    assert.deepEqual([r.fetch, r.missing, r.unresolvedSoft], [[], [], []]);
  });

  test("a module not read yet but in the package is to fetch; alias candidates too", () => {
    const partial = new Map([...debianLike].filter(([n]) => n !== "failover" && n !== "crc32c_generic"));
    const r = resolveModules({
      roots: ["virtio_net", "ext4"],
      modules: partial,
      builtins: noBuiltins,
      available: all,
    });
    assert.deepEqual(r.fetch, ["failover", "crc32c_generic"]);
    assert.deepEqual(aliasCandidates("crypto-crc32c"), ["crypto_crc32c", "crc32c", "crc32c_generic"]);
  });

  test("a missing root or hard dependency; a missing soft one is only reported", () => {
    const modules = new Map([
      ["a", mod("a", { depends: ["gone"], pre: ["optional"] })],
      ["b", mod("b")],
    ]);
    const r = resolveModules({
      roots: ["a", "nope"],
      modules,
      builtins: noBuiltins,
      available: new Set(["a", "b"]),
    });
    assert.deepEqual(r.missing, ["gone", "nope"]);
    assert.deepEqual(r.unresolvedSoft, ["optional"]);
    assert.deepEqual(r.order, ["a"]);
  });

  test("built-in aliases satisfy soft dependencies", () => {
    const r = resolveModules({
      roots: ["jbd2"],
      modules: new Map([["jbd2", debianLike.get("jbd2") as ModInfo]]),
      builtins: { names: new Set(["crc32c"]), aliases: new Map([["crypto_crc32c", "crc32c"]]) },
      available: new Set(["jbd2"]),
    });
    assert.deepEqual(r.order, ["jbd2"]);
    assert.deepEqual(r.builtin, ["crc32c"]);
  });

  test("softdep post loads after; soft cycles are cut; hard cycles are errors", () => {
    const modules = new Map([
      ["a", mod("a", { post: ["c"] })],
      ["b", mod("b", { pre: ["a"] })],
      ["c", mod("c", { pre: ["b"] })],
    ]);
    const r = resolveModules({
      roots: ["a"],
      modules,
      builtins: noBuiltins,
      available: new Set(modules.keys()),
    });
    assert.deepEqual(r.order, ["a", "b", "c"]);
    const hard = new Map([
      ["x", mod("x", { depends: ["y"] })],
      ["y", mod("y", { depends: ["x"] })],
    ]);
    assert.throws(
      () =>
        resolveModules({ roots: ["x"], modules: hard, builtins: noBuiltins, available: new Set(["x", "y"]) }),
      /dependency cycle/,
    );
  });
});

function kernelModules(names: string[]): KernelModule[] {
  return names.map((name) => {
    const info = debianLike.get(name) as ModInfo;
    const path = `kernel/${name === "ext4" || name === "jbd2" ? "fs" : "lib"}/${name}.ko`;
    const data = elfWithModinfo([
      `name=${name}`,
      `depends=${info.depends.join(",")}`,
      ...info.aliases.map((a) => `alias=${a}`),
      ...(info.pre.length > 0 ? [`softdep=pre: ${info.pre.join(" ")}`] : []),
    ]);
    return { name, path, data, info };
  });
}

describe("files in the guest", () => {
  const order = [
    "virtio_mmio",
    "failover",
    "net_failover",
    "virtio_net",
    "crc32c_generic",
    "jbd2",
    "mbcache",
    "crc16",
    "ext4",
  ];
  const modules = kernelModules(order);

  test("what each module needs first: hard and soft pre, transitively, in load order", () => {
    const needs = moduleNeeds(modules);
    assert.deepEqual(needs.get("virtio_net"), ["failover", "net_failover"]);
    assert.deepEqual(needs.get("ext4"), ["crc32c_generic", "jbd2", "mbcache", "crc16"]);
    assert.deepEqual(needs.get("virtio_mmio"), []);
  });

  test("load-order: name, path, needs, aliases", () => {
    const lines = loadOrderText(modules).trimEnd().split("\n");
    assert.match(lines[0] as string, /^# /);
    assert.deepEqual(lines.slice(2), [
      "virtio_mmio kernel/lib/virtio_mmio.ko - of:N*T*Cvirtio,mmio",
      "failover kernel/lib/failover.ko -",
      "net_failover kernel/lib/net_failover.ko failover",
      "virtio_net kernel/lib/virtio_net.ko failover,net_failover virtio:d00000001v*",
      "crc32c_generic kernel/lib/crc32c_generic.ko - crypto-crc32c crc32c",
      "jbd2 kernel/fs/jbd2.ko crc32c_generic",
      "mbcache kernel/lib/mbcache.ko -",
      "crc16 kernel/lib/crc16.ko -",
      "ext4 kernel/fs/ext4.ko crc32c_generic,jbd2,mbcache,crc16 fs-ext4",
    ]);
  });

  test("modules.dep (nearest first) and modules.alias for busybox modprobe", () => {
    const dep = modulesDepText(modules).split("\n");
    assert.ok(dep.includes("kernel/lib/virtio_net.ko: kernel/lib/net_failover.ko kernel/lib/failover.ko"));
    assert.ok(dep.includes("kernel/lib/virtio_mmio.ko:"));
    assert.ok(
      dep.includes(
        "kernel/fs/ext4.ko: kernel/lib/crc16.ko kernel/lib/mbcache.ko kernel/fs/jbd2.ko kernel/lib/crc32c_generic.ko",
      ),
    );
    const alias = modulesAliasText(modules).split("\n");
    assert.ok(alias.includes("alias fs-ext4 ext4"));
    assert.ok(alias.includes("alias crypto-crc32c crc32c_generic"));
  });

  test("entries: folders first; a cpio round trip gives the modules back in order", () => {
    const entries = moduleEntries({ release: "6.1-test", modules });
    assert.deepEqual(
      entries.slice(0, 3).map((e) => e.path),
      ["lib", "lib/modules", "lib/modules/6.1-test"],
    );
    const paths = entries.map((e) => e.path);
    assert.ok(
      paths.indexOf("lib/modules/6.1-test/kernel/fs") <
        paths.indexOf("lib/modules/6.1-test/kernel/fs/ext4.ko"),
    );
    for (const name of [LOAD_ORDER_FILE, "modules.dep", "modules.alias"])
      assert.ok(paths.includes(`lib/modules/6.1-test/${name}`), name);
    const back = modulesFromEntries(readCpio(buildCpio(entries)));
    assert.equal(back.release, "6.1-test");
    assert.deepEqual(
      back.modules.map((m) => m.name),
      order,
    );
    assert.deepEqual(back.modules[3]?.info.depends, ["net_failover"]);
    assert.deepEqual(moduleEntries(back), entries);
  });
});

describe("decompressing modules", () => {
  test(".ko as is, .ko.gz with zlib; no xz on PATH is a UserError naming the package", () => {
    const elf = elfWithModinfo(["name=a"]);
    assert.equal(decompressModule("a.ko", elf), elf);
    assert.deepEqual(decompressModule("a.ko.gz", gzipSync(elf)), elf);
    const path = process.env.PATH;
    process.env.PATH = join(scratch, "no-bin");
    try {
      assert.throws(
        () => decompressModule("a.ko.xz", elf),
        (e: unknown) => e instanceof UserError && e.message === NEEDS_XZ && /xz-utils/.test(e.message),
      );
    } finally {
      process.env.PATH = path;
    }
  });
});

const hasTools = ["dpkg-deb", "xz"].every((t) => spawnSync(t, ["--version"]).status === 0);
if (!hasTools)
  process.stderr.write("modules.test: dpkg-deb or xz not on PATH, skipping extraction from a .deb\n");

describe("extractModules from a .deb", { skip: hasTools ? false : "dpkg-deb or xz is not on PATH" }, () => {
  const release = "6.12.0-9-test";
  const root = join(scratch, "pkg");
  const base = join(root, "usr/lib/modules", release);
  const put = (path: string, data: Uint8Array | string) => {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    writeFileSync(join(base, path), data);
  };
  const xz = (data: Uint8Array) => {
    const r = spawnSync("xz", ["-c", "--check=crc32"], { input: data });
    assert.equal(r.status, 0);
    return new Uint8Array(r.stdout);
  };
  // crypto/ comes before fs/ in the archive: jbd2's soft dependency is read after its provider went by.
  put(
    "kernel/crypto/crc32c_generic.ko.xz",
    xz(elfWithModinfo(["alias=crypto-crc32c", "depends=", "name=crc32c_generic"])),
  );
  put("kernel/drivers/net/virtio_net.ko.xz", xz(elfWithModinfo(["depends=net_failover", "name=virtio_net"])));
  put("kernel/drivers/net/net_failover.ko.xz", xz(elfWithModinfo(["depends=failover", "name=net_failover"])));
  put("kernel/drivers/char/hw_random/virtio-rng.ko.xz", xz(elfWithModinfo(["depends=", "name=virtio_rng"])));
  put(
    "kernel/fs/jbd2/jbd2.ko.xz",
    xz(elfWithModinfo(["softdep=pre: crypto-crc32c", "depends=", "name=jbd2"])),
  );
  put("kernel/fs/ext4/ext4.ko.xz", xz(elfWithModinfo(["alias=fs-ext4", "depends=jbd2", "name=ext4"])));
  put("kernel/net/core/failover.ko", elfWithModinfo(["depends=", "name=failover"]));
  put("kernel/sound/unrelated.ko.xz", xz(elfWithModinfo(["depends=", "name=unrelated"])));
  put("modules.builtin", "kernel/drivers/char/virtio_console.ko\n");
  put("modules.builtin.modinfo", Buffer.from("virtio_console.license=GPL\0", "utf8"));
  mkdirSync(join(root, "DEBIAN"), { recursive: true });
  mkdirSync(join(root, "boot"), { recursive: true });
  writeFileSync(join(root, "boot", `vmlinux-${release}`), "kernel");
  writeFileSync(
    join(root, "DEBIAN/control"),
    "Package: linux-image-test\nVersion: 1\nArchitecture: riscv64\nMaintainer: t <t@t>\nDescription: test\n",
  );
  const deb = join(scratch, "linux-image-test.deb");
  const built = spawnSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, deb], {
    encoding: "utf8",
  });

  test("the closure in load order, decompressed; built-in roots reported", async () => {
    assert.equal(built.status, 0, built.stderr);
    const set = await extractModules(deb, release, ["virtio_net", "virtio_console", "virtio-rng", "ext4"]);
    assert.deepEqual(
      set.modules.map((m) => m.name),
      ["failover", "net_failover", "virtio_net", "virtio_rng", "crc32c_generic", "jbd2", "ext4"],
    );
    assert.deepEqual(set.builtin, ["virtio_console"]);
    assert.deepEqual(set.unresolvedSoft, []);
    const rng = set.modules.find((m) => m.name === "virtio_rng") as KernelModule;
    assert.equal(rng.path, "kernel/drivers/char/hw_random/virtio-rng.ko");
    assert.equal(Buffer.from(rng.data.subarray(0, 4)).toString("latin1"), "\x7fELF");
    assert.equal(set.modules[0]?.path, "kernel/net/core/failover.ko");
  });

  test("a root the package lacks is a UserError", async () => {
    await assert.rejects(
      extractModules(deb, release, ["virtio_blk"]),
      (e: unknown) => e instanceof UserError && /no module virtio_blk/.test(e.message),
    );
    await assert.rejects(
      extractModules(deb, "6.0-other", ["ext4"]),
      (e: unknown) => e instanceof UserError && /holds no modules for 6\.0-other/.test(e.message),
    );
  });
});
