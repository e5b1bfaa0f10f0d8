import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  acquireLock,
  aptDir,
  artifactRecord,
  checkCache,
  imageDir,
  imagesRoot,
  installDir,
  type Manifest,
  readManifest,
  writeManifest,
} from "../../src/images/cache.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-cache-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function manifestFor(dir: string, files: Record<string, string>): Manifest {
  const artifacts: Manifest["artifacts"] = {};
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    artifacts[name] = artifactRecord(join(dir, name));
  }
  return {
    format: 1,
    arch: "riscv64",
    source: "debian trixie",
    mirror: "http://mirror.example/debian",
    created: new Date(0).toISOString(),
    kernelRelease: "6.12.0-test",
    packages: [{ name: "k", version: "1", role: "kernel" }],
    artifacts,
    inputs: { init: "aaaa" },
  };
}

describe("cache paths", () => {
  test("XDG_CACHE_HOME when absolute, else ~/.cache", () => {
    assert.equal(imagesRoot({ XDG_CACHE_HOME: "/x/cache" }, "/home/u"), "/x/cache/vireo/images");
    assert.equal(imagesRoot({}, "/home/u"), "/home/u/.cache/vireo/images");
    assert.equal(imagesRoot({ XDG_CACHE_HOME: "" }, "/home/u"), "/home/u/.cache/vireo/images");
    assert.equal(imagesRoot({ XDG_CACHE_HOME: "rel/cache" }, "/home/u"), "/home/u/.cache/vireo/images");
    assert.equal(imageDir("riscv64", { XDG_CACHE_HOME: "/c" }), "/c/vireo/images/riscv64");
    assert.equal(aptDir("trixie", "riscv64", { XDG_CACHE_HOME: "/c" }), "/c/vireo/images/apt/trixie-riscv64");
  });
});

describe("up-to-date check", () => {
  const dir = join(scratch, "img");
  mkdirSync(dir);
  const expect = { artifacts: ["Image", "initrd"], inputs: { init: "aaaa" } };

  test("missing, then complete", () => {
    assert.equal(checkCache(dir, expect).state, "missing");
    writeManifest(dir, manifestFor(dir, { Image: "kernel", initrd: "ramdisk" }));
    assert.equal(checkCache(dir, expect).state, "complete");
    assert.equal(checkCache(dir, { ...expect, verify: true }).state, "complete");
    assert.equal(readManifest(dir)?.kernelRelease, "6.12.0-test");
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith(".")),
      [],
      "no temp manifest left",
    );
  });

  test("a changed input is stale, not broken", () => {
    const s = checkCache(dir, { ...expect, inputs: { init: "bbbb" } });
    assert.equal(s.state, "stale-inputs");
    assert.match(s.state === "stale-inputs" ? s.reason : "", /init changed/);
  });

  test("wrong size, same-size corruption (with verify), missing file, missing debs, bad manifest", () => {
    writeFileSync(join(dir, "initrd"), "ramdisk!");
    assert.equal(checkCache(dir, expect).state, "broken");
    writeFileSync(join(dir, "initrd"), "RAMDISK");
    assert.equal(checkCache(dir, expect).state, "complete", "sizes only");
    assert.equal(checkCache(dir, { ...expect, verify: true }).state, "broken");
    writeFileSync(join(dir, "initrd"), "ramdisk");
    assert.equal(checkCache(dir, { ...expect, debs: true }).state, "broken");
    rmSync(join(dir, "Image"));
    assert.equal(checkCache(dir, expect).state, "broken");
    writeFileSync(join(dir, "manifest.json"), "{ not json");
    assert.equal(checkCache(dir, expect).state, "broken");
    assert.equal(readManifest(dir), undefined);
  });
});

describe("atomic install and lock", () => {
  test("installDir replaces the old dir as a whole", () => {
    const final = join(scratch, "final");
    mkdirSync(final);
    writeFileSync(join(final, "old"), "1");
    const built = join(scratch, ".final.build-1");
    mkdirSync(built);
    writeFileSync(join(built, "new"), "2");
    installDir(built, final);
    assert.deepEqual(readdirSync(final), ["new"]);
    assert.ok(!existsSync(built));
    assert.deepEqual(
      readdirSync(scratch).filter((n) => n.includes("old-")),
      [],
    );
  });

  test("a stale lock (dead pid) is taken over; release removes it", async () => {
    const root = mkdtempSync(join(scratch, "lock-"));
    writeFileSync(join(root, ".riscv64.lock"), "999999999\n");
    const release = await acquireLock(root, "riscv64");
    assert.equal(readFileSync(join(root, ".riscv64.lock"), "utf8"), `${process.pid}\n`);
    release();
    assert.ok(!existsSync(join(root, ".riscv64.lock")));
  });

  test("a live holder is waited for", async () => {
    const root = mkdtempSync(join(scratch, "lock-"));
    // pid 1 is always alive (EPERM counts as alive).
    writeFileSync(join(root, ".riscv64.lock"), "1\n");
    let waitedFor = 0;
    setTimeout(() => rmSync(join(root, ".riscv64.lock")), 300);
    const release = await acquireLock(root, "riscv64", (pid) => {
      waitedFor = pid;
    });
    assert.equal(waitedFor, 1);
    release();
  });
});
