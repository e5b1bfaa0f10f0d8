import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEBIAN_KEYRING } from "../../src/images/apt.js";
import { artifactRecord, type Manifest } from "../../src/images/cache.js";
import { type BuildContext, fetchImage, type Recipe } from "../../src/images/fetch.js";
import { recipeFor } from "../../src/images/recipes.js";
import { riscv64Recipe } from "../../src/images/riscv64.js";
import { UserError } from "../../src/util/errors.js";
import { after, describe, test } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-fetch-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A recipe that "downloads" nothing: counts builds, can be told to fail, has one input. */
function fakeRecipe() {
  const state = { builds: 0, refreshes: 0, fail: false, input: "v1", pins: [] as (string | undefined)[] };
  const recipe: Recipe = {
    arch: "fake",
    kernel: "Image",
    initrd: "initrd",
    artifacts: ["Image", "initrd"],
    inputs: () => ({ init: state.input }),
    async build(ctx: BuildContext): Promise<Manifest> {
      state.builds++;
      state.pins.push(ctx.kernelVersion);
      ctx.step("building fake…");
      writeFileSync(join(ctx.work, "Image"), `kernel ${state.builds}`);
      if (state.fail) throw new UserError("fake failure");
      writeFileSync(join(ctx.work, "initrd"), `initrd ${state.input}`);
      return {
        format: 1,
        arch: "fake",
        source: "none",
        mirror: "",
        created: new Date().toISOString(),
        kernelRelease: "0",
        packages: [
          { name: "linux-image-fake-fake", version: `${ctx.kernelVersion ?? "7.0.0"}-1`, role: "kernel" },
        ],
        ...(ctx.kernelVersion === undefined ? {} : { kernelPin: ctx.kernelVersion }),
        artifacts: {
          Image: artifactRecord(join(ctx.work, "Image")),
          initrd: artifactRecord(join(ctx.work, "initrd")),
        },
        inputs: { init: state.input },
      };
    },
    async refresh(dir: string, manifest: Manifest): Promise<Manifest> {
      state.refreshes++;
      writeFileSync(join(dir, "initrd"), `initrd ${state.input}`);
      return {
        ...manifest,
        artifacts: { ...manifest.artifacts, initrd: artifactRecord(join(dir, "initrd")) },
        inputs: { init: state.input },
      };
    },
  };
  return { recipe, state };
}

describe("fetch driver (fake recipe, no network)", () => {
  const env = { XDG_CACHE_HOME: join(scratch, "xdg") };
  const { recipe, state } = fakeRecipe();
  const lines: string[] = [];
  const stderr = { write: (t: string) => lines.push(t), isTTY: false };
  const dir = join(env.XDG_CACHE_HOME, "vireo/images/fake");

  test("first fetch builds and installs; the second is up to date", async () => {
    const first = await fetchImage(recipe, { env, stderr });
    assert.equal(first.action, "built");
    assert.equal(first.kernel, join(dir, "Image"));
    assert.equal(first.initrd, join(dir, "initrd"));
    assert.equal(readFileSync(first.kernel, "utf8"), "kernel 1");
    assert.deepEqual(lines, ["building fake…\n"]);
    const second = await fetchImage(recipe, { env, stderr, verify: true });
    assert.equal(second.action, "up-to-date");
    assert.equal(state.builds, 1);
  });

  test("--force rebuilds", async () => {
    const r = await fetchImage(recipe, { env, stderr, force: true });
    assert.equal(r.action, "built");
    assert.equal(r.reason, "--force");
    assert.equal(readFileSync(r.kernel, "utf8"), "kernel 2");
  });

  test("a changed input only refreshes", async () => {
    state.input = "v2";
    const r = await fetchImage(recipe, { env, stderr });
    assert.equal(r.action, "refreshed");
    assert.equal(readFileSync(r.initrd, "utf8"), "initrd v2");
    assert.equal(state.builds, 2);
    assert.equal((await fetchImage(recipe, { env, stderr, verify: true })).action, "up-to-date");
  });

  test("a failed build leaves the previous image and no leftovers", async () => {
    state.fail = true;
    await assert.rejects(fetchImage(recipe, { env, stderr, force: true }), /fake failure/);
    state.fail = false;
    assert.equal(readFileSync(join(dir, "Image"), "utf8"), "kernel 2");
    const root = join(env.XDG_CACHE_HOME, "vireo/images");
    assert.deepEqual(readdirSync(root).sort(), ["fake"]);
  });

  test("a damaged artifact is rebuilt", async () => {
    writeFileSync(join(dir, "Image"), "kernel X");
    assert.equal((await fetchImage(recipe, { env, stderr })).action, "up-to-date", "same size: sizes only");
    const r = await fetchImage(recipe, { env, stderr, verify: true });
    assert.equal(r.action, "built");
    assert.match(r.reason ?? "", /sha256/);
  });

  test("--kernel-version: another cached kernel is rebuilt, the same one is up to date, no pin keeps it", async () => {
    const pinned = fakeRecipe();
    const built = await fetchImage(pinned.recipe, { env, stderr, kernelVersion: "6.1.0" });
    assert.equal(built.action, "built");
    assert.equal(built.manifest.kernelPin, "6.1.0");
    assert.equal(pinned.state.pins.at(-1), "6.1.0");
    assert.equal(
      (await fetchImage(pinned.recipe, { env, stderr, kernelVersion: "6.1.0-1" })).action,
      "up-to-date",
    );
    assert.equal((await fetchImage(pinned.recipe, { env, stderr })).action, "up-to-date", "no pin: kept");
    const other = await fetchImage(pinned.recipe, { env, stderr, kernelVersion: "6.2.0" });
    assert.equal(other.action, "built");
    assert.match(other.reason ?? "", /cached kernel is 6\.1\.0-1, 6\.2\.0 was asked for/);
    await assert.rejects(
      fetchImage(pinned.recipe, { env, stderr, kernelVersion: "6.2; rm -rf /" }),
      UserError,
    );
    await assert.rejects(fetchImage(pinned.recipe, { env, stderr, kernelVersion: "" }), UserError);
    assert.equal(pinned.state.builds, 2);
  });

  test("quiet prints nothing", async () => {
    lines.length = 0;
    await fetchImage(recipe, { env, stderr, quiet: true, force: true });
    assert.deepEqual(lines, []);
  });
});

describe("recipes", () => {
  test("riscv64 and x86_64 (alias amd64) exist, others unknown", () => {
    assert.equal(recipeFor("riscv64"), riscv64Recipe);
    assert.equal(recipeFor("x86_64").arch, "x86_64");
    assert.equal(recipeFor("amd64"), recipeFor("x86_64"));
    assert.throws(
      () => recipeFor("mips"),
      (e: unknown) => e instanceof UserError && /unknown architecture/.test(e.message),
    );
  });
});

const hasApt = spawnSync("apt-get", ["--version"]).status === 0 && existsSync(DEBIAN_KEYRING);

describe("riscv64 fetch failures (no network needed)", {
  skip: hasApt ? false : "needs apt-get and the Debian keyring",
}, () => {
  test("a mirror without the suite (e.g. an Ubuntu mirror): apt's error line, nothing installed", async () => {
    const env = { ...process.env, XDG_CACHE_HOME: join(scratch, "nosuite") };
    const empty = mkdtempSync(join(scratch, "empty-mirror-"));
    await assert.rejects(
      fetchImage(riscv64Recipe, { env, quiet: true, mirror: `file:${empty}` }),
      (e: unknown) =>
        e instanceof UserError &&
        e.message.startsWith("apt-get update (trixie riscv64) failed: ") &&
        /trixie Release' does not have a Release file/.test(e.message) &&
        !e.message.includes("\n"),
    );
    assert.ok(!existsSync(join(env.XDG_CACHE_HOME, "vireo/images/riscv64")));
  });

  // apt retries a refused connection for ~7 s: only with the network tests.
  const slow = process.env.VIREO_NET_TESTS === "1" ? false : "slow (apt retries): set VIREO_NET_TESTS=1";
  test("an unreachable mirror: apt's own error line, nothing installed", { skip: slow }, async () => {
    const env = { ...process.env, XDG_CACHE_HOME: join(scratch, "unreachable") };
    await assert.rejects(
      fetchImage(riscv64Recipe, { env, quiet: true, mirror: "http://127.0.0.1:9/debian" }),
      (e: unknown) =>
        e instanceof UserError &&
        /^apt-get update \(trixie riscv64\) failed: Failed to fetch http:\/\/127\.0\.0\.1:9\/debian\/dists\/trixie\/InRelease .*(refused|connect)/.test(
          e.message,
        ) &&
        !e.message.includes("\n"),
    );
    assert.ok(!existsSync(join(env.XDG_CACHE_HOME, "vireo/images/riscv64")));
    const conf = readFileSync(join(env.XDG_CACHE_HOME, "vireo/images/apt/trixie-riscv64/apt.conf"), "utf8");
    assert.match(conf, /APT::Architectures \{ "riscv64"; \};/);
    const sources = readFileSync(
      join(env.XDG_CACHE_HOME, "vireo/images/apt/trixie-riscv64/sources.list"),
      "utf8",
    );
    assert.equal(
      sources,
      `deb [arch=riscv64 signed-by=${DEBIAN_KEYRING}] http://127.0.0.1:9/debian trixie main\n`,
    );
  });
});
