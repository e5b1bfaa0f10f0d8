import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  AptClient,
  aptConfigText,
  aptErrorLine,
  aptLayout,
  kernelVersionMatches,
  type PackageInfo,
  packageInfo,
  parseControl,
  parseDeb822Sources,
  parseDepends,
  parseKernelNames,
  parseOneLineSources,
  pickMirror,
  readSystemSources,
  resolveKernelPackage,
  sourcesListText,
  systemMirror,
  updateFailed,
} from "../../src/images/apt.js";
import { pickKernel } from "../../src/images/download.js";
import { UserError } from "../../src/util/errors.js";
import { describe, test } from "../support/test.js";

const fixtures = new URL("../../../test/images/fixtures/", import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, fixtures), "utf8");
const fixtureDir = (name: string) => new URL(name, fixtures).pathname;

describe("private apt configuration", () => {
  const layout = aptLayout("/cache/vireo/images/apt/trixie-riscv64");

  test("layout puts everything under the root", () => {
    assert.deepEqual(layout, {
      root: "/cache/vireo/images/apt/trixie-riscv64",
      stateDir: "/cache/vireo/images/apt/trixie-riscv64/state",
      listsDir: "/cache/vireo/images/apt/trixie-riscv64/state/lists",
      statusFile: "/cache/vireo/images/apt/trixie-riscv64/state/status",
      cacheDir: "/cache/vireo/images/apt/trixie-riscv64/cache",
      sourcesFile: "/cache/vireo/images/apt/trixie-riscv64/sources.list",
      configFile: "/cache/vireo/images/apt/trixie-riscv64/apt.conf",
    });
  });

  test("apt.conf: own state, lists, status, cache and sources; foreign architecture only", () => {
    const text = aptConfigText(layout, "riscv64");
    const r = "/cache/vireo/images/apt/trixie-riscv64";
    for (const line of [
      `Dir::State "${r}/state";`,
      `Dir::State::Lists "${r}/state/lists";`,
      `Dir::State::status "${r}/state/status";`,
      `Dir::Cache "${r}/cache";`,
      `Dir::Etc::SourceList "${r}/sources.list";`,
      `Dir::Etc::SourceParts "/dev/null";`,
      `APT::Architecture "riscv64";`,
      `APT::Architectures { "riscv64"; };`,
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
    }
    assert.doesNotMatch(text, /Sandbox/);
    assert.ok(text.endsWith(";\n"));
    // Every statement is terminated (apt rejects the whole file otherwise).
    for (const line of text.trim().split("\n")) assert.match(line, /^\/\/|;$/);
  });

  test("apt.conf: sandbox user only when asked (root)", () => {
    assert.match(aptConfigText(layout, "riscv64", { sandboxUser: "root" }), /^APT::Sandbox::User "root";$/m);
  });

  test("apt.conf refuses values that would break its syntax", () => {
    assert.throws(() => aptConfigText(aptLayout('/tmp/a"b'), "riscv64"));
  });

  test("sources line: arch and signed-by options, the mirror, suite and main", () => {
    assert.equal(
      sourcesListText({
        arch: "riscv64",
        suite: "trixie",
        mirror: "http://mirror.example/debian",
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
      }),
      "deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie main\n",
    );
  });
});

describe("mirror discovery from the system's sources", () => {
  test("deb822: the Debian stanza, not the security one nor a third-party repo read first", () => {
    const entries = readSystemSources(fixtureDir("etc-apt-deb822"));
    assert.equal(entries.length, 3);
    assert.equal(entries[0]?.uris[0], "https://thirdparty.example/node_20.x");
    assert.equal(pickMirror(entries), "http://mirror.example/debian");
    assert.equal(systemMirror(fixtureDir("etc-apt-deb822")), "http://mirror.example/debian");
  });

  test("deb822 parsing: comments, multi-line fields, Enabled: no, deb-src", () => {
    const entries = parseDeb822Sources(fixture("deb822-mixed.sources"), "mixed.sources");
    assert.equal(entries.length, 3);
    assert.deepEqual(entries[0]?.types, ["deb-src"]);
    assert.equal(entries[1]?.enabled, false);
    const last = entries[2];
    assert.deepEqual(last?.uris, ["https://first.example/debian/", "https://second.example/debian"]);
    assert.deepEqual(last?.suites, ["trixie", "trixie-updates"]);
    assert.deepEqual(last?.components, ["main", "contrib", "non-free-firmware"]);
    assert.match(last?.options["signed-by"] ?? "", /BEGIN PGP PUBLIC KEY BLOCK[\s\S]*END PGP/);
    assert.equal(last?.file, "mixed.sources");
    assert.equal(pickMirror(entries), "https://first.example/debian");
  });

  test("one-line: skips cdrom, third-party, a 'stable' look-alike, security and deb-src", () => {
    const entries = readSystemSources(fixtureDir("etc-apt-oneline"));
    const main = entries.find((e) => e.options.trusted === "yes");
    assert.deepEqual(main?.components, ["main", "contrib", "non-free-firmware"]);
    assert.equal(main?.options.arch, "amd64,arm64");
    assert.equal(pickMirror(entries), "http://mirror.example/debian");
  });

  test("one-line parsing: options with and without spaces, comments", () => {
    const entries = parseOneLineSources(
      "deb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main # note\n#deb http://b.example x main\n",
    );
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0]?.options, { arch: "amd64", "signed-by": "/k.gpg" });
    assert.deepEqual(entries[0]?.components, ["main"]);
  });

  test("no Debian mirror (e.g. an Ubuntu system): a one-line UserError", () => {
    assert.equal(pickMirror(readSystemSources(fixtureDir("etc-apt-none"))), undefined);
    assert.throws(
      () => systemMirror(fixtureDir("etc-apt-none")),
      (e: unknown) =>
        e instanceof UserError && /no Debian mirror found/.test(e.message) && !e.message.includes("\n"),
    );
  });

  test("a missing /etc/apt is no mirror, not a crash", () => {
    assert.deepEqual(readSystemSources(fixtureDir("does-not-exist")), []);
    assert.throws(() => systemMirror(fixtureDir("does-not-exist")), UserError);
  });
});

describe("apt-cache output", () => {
  test("kernel package from `apt-cache depends linux-image-riscv64`", () => {
    assert.equal(
      resolveKernelPackage(fixture("apt-cache-depends.txt"), "linux-image-riscv64"),
      "linux-image-6.12.107+deb13-riscv64",
    );
  });

  test("alternatives, virtual <packages> and other flavours are skipped; first match wins", () => {
    const text = fixture("apt-cache-depends-alternatives.txt");
    assert.deepEqual(parseDepends(text, "linux-image-riscv64"), [
      "linux-image-6.12.99+deb13-riscv64-unsigned",
      "linux-image-6.12.107+deb13-riscv64",
      "linux-base",
      "linux-image-6.12.100+deb13-riscv64",
    ]);
    assert.equal(resolveKernelPackage(text, "linux-image-riscv64"), "linux-image-6.12.107+deb13-riscv64");
  });

  test("no versioned dependency is a UserError", () => {
    assert.throws(
      () => resolveKernelPackage("linux-image-riscv64\n  Depends: linux-base\n", "linux-image-riscv64"),
      UserError,
    );
    assert.throws(() => resolveKernelPackage("", "linux-image-riscv64"), UserError);
  });

  test("`apt-cache show` record → name, version, size, sha256", () => {
    const stanzas = parseControl(fixture("apt-cache-show-busybox.txt"));
    assert.equal(stanzas.length, 1);
    assert.equal(
      stanzas[0]?.Tag,
      "admin::recovery, interface::shell, role::program, scope::utility,\n use::login, works-with::file",
    );
    assert.deepEqual(packageInfo(stanzas[0] as Record<string, string>), {
      name: "busybox-static",
      version: "1:1.37.0-6+b9",
      architecture: "riscv64",
      size: 941532,
      sha256: "4add476d2b185c5b487c285b38d790f0881a7e4a8e2ddde835f917e770eb8633",
      filename: "pool/main/b/busybox/busybox-static_1.37.0-6+b9_riscv64.deb",
    });
  });
});

describe("apt error lines", () => {
  const unreachable = `Ign:1 http://127.0.0.1:9/debian trixie InRelease
Err:1 http://127.0.0.1:9/debian trixie InRelease
  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
Reading package lists...
W: Failed to fetch http://127.0.0.1:9/debian/dists/trixie/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
W: Some index files failed to download. They have been ignored, or old ones used instead.
`;

  test("apt-get update exits 0 on a failed fetch: still detected, its W: line reported", () => {
    assert.ok(updateFailed(unreachable));
    assert.equal(
      aptErrorLine(unreachable),
      "Failed to fetch http://127.0.0.1:9/debian/dists/trixie/InRelease Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)",
    );
    assert.ok(!updateFailed("Hit:1 http://127.0.0.1/debian trixie InRelease\nReading package lists...\n"));
  });

  test("E: lines win", () => {
    assert.equal(
      aptErrorLine("Reading package lists...\nE: Unable to locate package nope\n"),
      "Unable to locate package nope",
    );
    assert.equal(
      aptErrorLine("W: GPG error: x\nE: The repository 'http://127.0.0.1/x trixie Release' is not signed.\n"),
      "The repository 'http://127.0.0.1/x trixie Release' is not signed.",
    );
  });

  test("Err: with its reason, else the last line", () => {
    assert.equal(
      aptErrorLine("Err:1 http://h/x y\n  Temporary failure resolving 'h'\n"),
      "Err:1 http://h/x y Temporary failure resolving 'h'",
    );
    assert.equal(aptErrorLine("something\nlast words\n"), "last words");
  });
});

describe("kernel pinning (--kernel-version)", () => {
  const search = [
    "linux-image-6.12.107+deb13-riscv64 - Linux 6.12 for 64-bit RISC-V platforms",
    "linux-image-6.12.117+deb13-riscv64 - Linux 6.12 for 64-bit RISC-V platforms",
    "linux-image-6.12.117+deb13-riscv64-dbg - Debug symbols for linux-image-6.12.117+deb13-riscv64",
    "linux-image-6.12.117+deb13-riscv64-unsigned - Linux 6.12 for 64-bit RISC-V platforms",
    "linux-image-riscv64 - Linux for 64-bit RISC-V platforms (meta-package)",
    "",
  ].join("\n");

  test("`apt-cache search` names → the versioned packages of the flavour only", () => {
    assert.deepEqual(parseKernelNames(search, "riscv64"), [
      "linux-image-6.12.107+deb13-riscv64",
      "linux-image-6.12.117+deb13-riscv64",
    ]);
    const amd64 = [
      "linux-image-6.1.0-50-amd64 - Linux 6.1 for 64-bit PCs (signed)",
      "linux-image-6.1.0-50-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)",
      "linux-image-6.1.0-50-rt-amd64 - Linux 6.1 for 64-bit PCs, PREEMPT_RT (signed)",
      "linux-image-6.1.0-49-amd64-unsigned - Linux 6.1 for 64-bit PCs",
    ].join("\n");
    assert.deepEqual(parseKernelNames(amd64, "amd64"), ["linux-image-6.1.0-50-amd64"]);
    assert.deepEqual(parseKernelNames("", "amd64"), []);
  });

  test("a version matches by Debian version, release (with or without flavour) or upstream version", () => {
    const name = "linux-image-6.12.107+deb13-riscv64";
    for (const wanted of ["6.12.107-1", "6.12.107", "6.12.107+deb13-riscv64", "6.12.107+deb13"])
      assert.ok(kernelVersionMatches(name, "6.12.107-1", wanted, "riscv64"), wanted);
    for (const wanted of ["6.12.10", "6.12", "6.12.107-2", "6.12.1077", "riscv64", ""])
      assert.ok(!kernelVersionMatches(name, "6.12.107-1", wanted, "riscv64"), wanted);
    assert.ok(kernelVersionMatches("linux-image-6.1.0-50-amd64", "6.1.176-1", "6.1.0-50", "amd64"));
    assert.ok(kernelVersionMatches("linux-image-6.1.0-50-amd64", "6.1.176-1", "6.1.176", "amd64"));
  });

  /** apt answering from fixed records, no apt-get. */
  class FixedApt extends AptClient {
    constructor(private readonly kernels: PackageInfo[]) {
      super({ arch: "riscv64", suite: "trixie" });
    }
    override async kernelPackages(): Promise<PackageInfo[]> {
      return this.kernels;
    }
    override async depends(): Promise<string> {
      return "linux-image-riscv64\n  Depends: linux-image-6.12.117+deb13-riscv64\n";
    }
    override async show(pkg: string): Promise<PackageInfo> {
      const found = this.kernels.find((k) => k.name === pkg);
      if (found === undefined) throw new UserError(`package ${pkg} not found`);
      return found;
    }
  }
  const info = (upstream: string): PackageInfo => ({
    name: `linux-image-${upstream}+deb13-riscv64`,
    version: `${upstream}-1`,
    architecture: "riscv64",
    size: 1,
    sha256: "",
    filename: "",
  });
  const apt = new FixedApt([info("6.12.107"), info("6.12.117")]);

  test("no pin: the metapackage's current kernel; a pin: that version among those the lists carry", async () => {
    assert.equal((await pickKernel(apt, "linux-image-riscv64", undefined)).version, "6.12.117-1");
    assert.equal((await pickKernel(apt, "linux-image-riscv64", "6.12.107")).version, "6.12.107-1");
    assert.equal((await pickKernel(apt, "linux-image-riscv64", "6.12.117-1")).name, info("6.12.117").name);
  });

  test("a version the lists do not carry is a UserError naming the ones they do", async () => {
    await assert.rejects(
      pickKernel(apt, "linux-image-riscv64", "6.11.1"),
      (e: unknown) =>
        e instanceof UserError &&
        /--kernel-version 6\.11\.1: no riscv64 kernel .* 6\.12\.107-1 .* 6\.12\.117-1/.test(e.message),
    );
    await assert.rejects(pickKernel(new FixedApt([]), "linux-image-riscv64", "6.12.107"), /have: none/);
  });
});
