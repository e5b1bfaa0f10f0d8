// The guest agent's part of the default image: which packages (declared Depends), which members
// (the binary and the .so files it loads, found through DT_NEEDED), the loader's link, and, where the
// default image is already fetched, that the cached initramfs has them.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  AGENT_BINARY,
  agentEntries,
  elfInterpreter,
  elfNeeded,
  newEntries,
  parseHardDepends,
  resolveAgentPackages,
  wantedAgentMember,
} from "../../src/images/agent.js";
import type { AptClient } from "../../src/images/apt.js";
import { imageDir } from "../../src/images/cache.js";
import { readCpio } from "../../src/images/cpio.js";
import { TarReader } from "../../src/images/deb.js";
import { INITRD_FILE } from "../../src/images/riscv64.js";
import { describe, test } from "../support/test.js";

/** A 64-bit little-endian ELF with PT_INTERP (if given) and a PT_DYNAMIC naming `needed`. */
function tinyElf(needed: string[], interp?: string): Uint8Array {
  const strtab = Buffer.from(`\0${needed.join("\0")}\0`, "latin1");
  const interpBytes = interp === undefined ? Buffer.alloc(0) : Buffer.from(`${interp}\0`, "latin1");
  const phnum = 3;
  const strAt = 64 + phnum * 56;
  const interpAt = strAt + strtab.length;
  const dynAt = Math.ceil((interpAt + interpBytes.length) / 8) * 8;
  const dyn: [number, number][] = [];
  let off = 1;
  for (const n of needed) {
    dyn.push([1, off]);
    off += n.length + 1;
  }
  dyn.push([5, 0x1000 + strAt], [0, 0]);
  const out = Buffer.alloc(dynAt + dyn.length * 16);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  out.writeBigUInt64LE(64n, 32);
  out.writeUInt16LE(56, 54);
  out.writeUInt16LE(phnum, 56);
  const ph = (i: number, type: number, offset: number, vaddr: number, size: number) => {
    const at = 64 + i * 56;
    out.writeUInt32LE(type, at);
    out.writeBigUInt64LE(BigInt(offset), at + 8);
    out.writeBigUInt64LE(BigInt(vaddr), at + 16);
    out.writeBigUInt64LE(BigInt(size), at + 32);
  };
  ph(0, 1, 0, 0x1000, out.length); // PT_LOAD of the whole file at 0x1000
  ph(1, 2, dynAt, 0x1000 + dynAt, dyn.length * 16);
  ph(2, interp === undefined ? 0 : 3, interpAt, 0x1000 + interpAt, interpBytes.length);
  strtab.copy(out, strAt);
  interpBytes.copy(out, interpAt);
  dyn.forEach(([tag, value], i) => {
    out.writeBigUInt64LE(BigInt(tag), dynAt + i * 16);
    out.writeBigUInt64LE(BigInt(value), dynAt + i * 16 + 8);
  });
  return new Uint8Array(out);
}

const LOADER = "/lib/ld-linux-riscv64-lp64d.so.1";

describe("images/agent", () => {
  test("parseHardDepends: first alternative of each Depends, no Pre-Depends, no virtual names", () => {
    const text = [
      "qemu-guest-agent",
      "  PreDepends: init-system-helpers",
      "  Depends: libc6",
      " |Depends: libglib2.0-0t64",
      "  Depends: libglib2.0-0",
      "  Depends: <virtual-thing>",
      "  Depends: libnuma1",
      "  Recommends: something",
      "other",
      "  Depends: not-ours",
    ].join("\n");
    assert.deepEqual(parseHardDepends(text, "qemu-guest-agent"), ["libc6", "libglib2.0-0t64", "libnuma1"]);
  });

  test("resolveAgentPackages follows Depends breadth first, each package once", async () => {
    const graph: Record<string, string[]> = {
      "qemu-guest-agent": ["libc6", "libglib2.0-0t64"],
      libc6: ["libgcc-s1"],
      "libglib2.0-0t64": ["libc6", "libffi8"],
      "libgcc-s1": ["libc6"],
      libffi8: ["libc6"],
    };
    const apt = {
      depends: async (pkg: string) =>
        `${pkg}\n${(graph[pkg] ?? []).map((d) => `  Depends: ${d}`).join("\n")}\n`,
    } as unknown as AptClient;
    assert.deepEqual(await resolveAgentPackages(apt), [
      "qemu-guest-agent",
      "libc6",
      "libglib2.0-0t64",
      "libgcc-s1",
      "libffi8",
    ]);
  });

  test("wantedAgentMember: the binary and shared objects, not plug-in folders or docs", () => {
    for (const yes of [
      AGENT_BINARY,
      "usr/lib/riscv64-linux-gnu/libc.so.6",
      "usr/lib/riscv64-linux-gnu/libglib-2.0.so.0.8400.4",
      "lib/ld-linux-riscv64-lp64d.so.1",
      "usr/lib/ld-linux-riscv64-lp64d.so.1",
    ])
      assert.ok(wantedAgentMember(yes), yes);
    for (const no of [
      "usr/lib/riscv64-linux-gnu/gconv/UTF-16.so",
      "usr/share/doc/libc6/copyright",
      "usr/lib/riscv64-linux-gnu/libc.so.6.gdb",
      "usr/bin/qemu-ga-helper",
    ])
      assert.ok(!wantedAgentMember(no), no);
  });

  test("elfNeeded and elfInterpreter read DT_NEEDED and PT_INTERP; other bytes give nothing", () => {
    const elf = tinyElf(["libglib-2.0.so.0", "libc.so.6"], LOADER);
    assert.deepEqual(elfNeeded(elf), ["libglib-2.0.so.0", "libc.so.6"]);
    assert.equal(elfInterpreter(elf), LOADER);
    assert.deepEqual(elfNeeded(new TextEncoder().encode("not an elf at all, not at all")), []);
    assert.equal(elfInterpreter(elf.subarray(0, 40)), undefined);
  });

  test("agentEntries keeps what the binary loads (through SONAME links) and links the loader", () => {
    const lib = "usr/lib/riscv64-linux-gnu";
    const files = new Map<string, Uint8Array>([
      [AGENT_BINARY, tinyElf(["libglib-2.0.so.0", "libc.so.6"], LOADER)],
      [`${lib}/libglib-2.0.so.0.8400.4`, tinyElf(["libpcre2-8.so.0", "libc.so.6"])],
      [`${lib}/libpcre2-8.so.0.14.0`, tinyElf(["libc.so.6"])],
      [`${lib}/libc.so.6`, tinyElf([])],
      [`${lib}/ld-linux-riscv64-lp64d.so.1`, tinyElf([])],
      [`${lib}/libgio-2.0.so.0.8400.4`, tinyElf(["libc.so.6"])],
    ]);
    const links = new Map<string, string>([
      [`${lib}/libglib-2.0.so.0`, "libglib-2.0.so.0.8400.4"],
      [`${lib}/libpcre2-8.so.0`, "libpcre2-8.so.0.14.0"],
      [`${lib}/libgio-2.0.so.0`, "libgio-2.0.so.0.8400.4"],
    ]);
    const entries = agentEntries(files, links);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    for (const p of [
      AGENT_BINARY,
      `${lib}/libglib-2.0.so.0.8400.4`,
      `${lib}/libglib-2.0.so.0`,
      `${lib}/libpcre2-8.so.0`,
      `${lib}/libc.so.6`,
    ])
      assert.ok(byPath.has(p), p);
    assert.ok(!byPath.has(`${lib}/libgio-2.0.so.0.8400.4`), "a library nothing loads is left out");
    assert.deepEqual(byPath.get("lib/ld-linux-riscv64-lp64d.so.1"), {
      type: "symlink",
      path: "lib/ld-linux-riscv64-lp64d.so.1",
      target: `../${lib}/ld-linux-riscv64-lp64d.so.1`,
    });
    const loader = byPath.get(`${lib}/ld-linux-riscv64-lp64d.so.1`);
    assert.ok(loader?.type === "file" && loader.mode === 0o755, "the loader is executable");
    // Folders come before what they hold.
    const firstFile = entries.findIndex((e) => e.type !== "dir");
    assert.ok(entries.slice(firstFile).every((e) => e.type !== "dir"));
    assert.deepEqual(
      newEntries([{ type: "dir", path: "usr" }], entries).filter((e) => e.path === "usr"),
      [],
    );
    files.delete(`${lib}/libpcre2-8.so.0.14.0`);
    links.delete(`${lib}/libpcre2-8.so.0`);
    assert.throws(
      () => agentEntries(files, links),
      /needs libpcre2-8\.so\.0, which none of its dependencies ship/,
    );
  });

  test("TarReader hands symbolic links (ustar and pax linkpath) to onLink", () => {
    const header = (name: string, type: string, link = "", size = 0) => {
      const h = Buffer.alloc(512);
      h.write(name, 0, "utf8");
      h.write(size.toString(8).padStart(11, "0"), 124, "latin1");
      h.write(type, 156, "latin1");
      h.write(link, 157, "utf8");
      return h;
    };
    const long = `../${"d/".repeat(60)}libz.so.1.3.1`;
    const record = `linkpath=${long}\n`;
    let len = record.length + 3;
    len = record.length + String(len).length + 1;
    const paxData = Buffer.from(`${len} ${record}`);
    const padded = Buffer.alloc(Math.ceil(paxData.length / 512) * 512);
    paxData.copy(padded);
    const links: [string, string][] = [];
    const reader = new TarReader(
      () => true,
      () => {},
      (name, target) => links.push([name, target]),
    );
    reader.push(
      Buffer.concat([
        header("./usr/lib/libc.so.6", "2", "libc-2.41.so"),
        header("./PaxHeaders/x", "x", "", paxData.length),
        padded,
        header("./usr/lib/libz.so.1", "2", "short"),
        Buffer.alloc(1024),
      ]),
    );
    assert.deepEqual(links, [
      ["usr/lib/libc.so.6", "libc-2.41.so"],
      ["usr/lib/libz.so.1", long],
    ]);
  });

  const cached = join(imageDir("riscv64"), INITRD_FILE);
  test("the fetched default image has qemu-ga, its loader and libraries", {
    skip: existsSync(cached) ? false : `no fetched image at ${cached}`,
  }, () => {
    const entries = readCpio(gunzipSync(readFileSync(cached)));
    const paths = new Set(entries.map((e) => e.path));
    if (!paths.has(AGENT_BINARY)) {
      // An image fetched before the agent was added: the next fetch rebuilds it (inputs changed).
      process.stderr.write("agent.test: the cached image predates the agent; not checked\n");
      return;
    }
    for (const p of [
      "lib/ld-linux-riscv64-lp64d.so.1",
      "usr/lib/riscv64-linux-gnu/libc.so.6",
      "usr/lib/riscv64-linux-gnu/libglib-2.0.so.0",
    ])
      assert.ok(paths.has(p), p);
    const binary = entries.find((e) => e.path === AGENT_BINARY);
    assert.ok(binary?.type === "file");
    for (const needed of elfNeeded(binary.data as Uint8Array)) {
      assert.ok(
        [...paths].some((p) => p.endsWith(`/${needed}`)),
        `${needed} (needed by qemu-ga) is in the initramfs`,
      );
    }
  });
});
