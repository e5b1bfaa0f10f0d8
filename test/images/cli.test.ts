import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "../support/test.js";
import { type CliResult, vireoImages } from "./cli-runner.js";

const xdg = mkdtempSync(join(tmpdir(), "vireo-images-cli-"));
after(() => rmSync(xdg, { recursive: true, force: true }));
const env = { ...process.env, XDG_CACHE_HOME: xdg };

function assertUserError(r: CliResult, pattern: RegExp) {
  assert.equal(r.status, 2, `status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0] as string, /^vireo: /);
  assert.match(lines[0] as string, pattern);
}

describe("vireo images (no network)", () => {
  test("path prints the cache dir under XDG_CACHE_HOME", () => {
    const r = vireoImages(env, "path");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${xdg}/vireo/images/riscv64\n`);
    assert.equal(vireoImages(env, "path", "--arch", "riscv64").stdout, r.stdout);
    assert.equal(vireoImages(env, "path", "--arch", "x86_64").stdout, `${xdg}/vireo/images/x86_64\n`);
    assert.equal(vireoImages(env, "path", "--arch", "amd64").stdout, `${xdg}/vireo/images/x86_64\n`);
  });

  test("list with nothing cached", () => {
    const r = vireoImages(env, "list");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^no guest images in .*vireo\/images \(run 'vireo images fetch'\)\n$/);
  });

  test("usage and user errors are one line, status 2", () => {
    const usage = vireoImages(env);
    assert.equal(usage.status, 2);
    assert.match(usage.stdout, /vireo images fetch \[--arch riscv64\|x86_64\] \[--force\] \[--keep-debs\]/);
    assertUserError(vireoImages(env, "fetch", "--arch=sparc"), /unknown architecture/);
    assertUserError(vireoImages(env, "frobnicate"), /unknown images command 'frobnicate'/);
    assertUserError(vireoImages(env, "fetch", "--nope"), /unknown option --nope/);
    assertUserError(vireoImages(env, "fetch", "--force", "--force"), /given twice/);
    assertUserError(vireoImages(env, "path", "extra"), /unexpected argument 'extra'/);
  });

  test("without apt-get on PATH: the 'needs apt' message", () => {
    for (const arch of ["riscv64", "x86_64"]) {
      const r = vireoImages({ ...env, PATH: join(xdg, "no-bin") }, "fetch", "--arch", arch);
      assertUserError(r, /vireo needs apt \(Debian\/Ubuntu\) to fetch guest images; use --kernel\/--initrd/);
    }
  });
});
