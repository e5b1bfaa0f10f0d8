/**
 * `vireo pool …` against a real daemon: create from a spec file, list, show, acquire, release, rm,
 * `--json` answers, and bad input as one `vireo:` line with status 2.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { counterSpec, type Daemon, startDaemon, tempDir, toolchainMissing } from "../api/support.js";
import { buildBareMetal } from "../support/bare-metal.js";
import { after, before, describe, test } from "../support/test.js";
import { assertUserError, type VireoResult, vireo } from "./vireo.js";

const missing = toolchainMissing();

describe("vireo pool", { skip: missing !== undefined }, () => {
  let dir = "";
  let daemon: Daemon;
  before(async () => {
    dir = tempDir();
    daemon = await startDaemon(dir);
  });
  after(async () => {
    daemon?.child.kill("SIGTERM");
    await daemon?.exited;
  });
  const pool = (...args: string[]): VireoResult => vireo("pool", ...args, "--socket", daemon.socket);
  const ok = (r: VireoResult): string => {
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  test("create, list, show, acquire, release, rm; errors in one line", { timeout: 60_000 }, async () => {
    const idle = buildBareMetal("test/guest-daemon/idle.S", join(dir, "idle.elf"));
    const specFile = join(dir, "idle.json");
    writeFileSync(specFile, JSON.stringify(counterSpec("tpl", idle)));
    assert.match(
      ok(pool("create", "--spec", specFile, "--size", "1", "--name", "cli", "--ready-marker", "idle")),
      /^created pool cli \([0-9a-f-]{36}\) of 1\n$/,
    );
    let shown = JSON.parse(ok(pool("show", "cli", "--json")));
    for (let i = 0; shown.ready !== 1 && i < 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shown = JSON.parse(ok(pool("show", "cli", "--json")));
    }
    assert.equal(shown.ready, 1);
    assert.match(ok(pool("show", "cli")), /^marker: {3}idle$/m);
    assert.match(ok(pool("list")), /^cli +1 +1 +0 +0 +[0-9a-f-]{36}$/m);
    const vm = ok(pool("acquire", "cli", "--timeout-ms", "5000")).trim();
    assert.equal(vm, shown.vms[0]);
    assert.equal(ok(pool("release", "cli", vm)), `released ${vm}\n`);
    assertUserError(pool("release", "cli", vm), new RegExp(`^vireo: no VM '${vm}'$`));
    assertUserError(pool("acquire", "nope"), /^vireo: no pool 'nope'$/);
    assertUserError(
      pool("create", "--spec", specFile, "--size", "65"),
      /--size must be a whole number from 0 to 64/,
    );
    assertUserError(pool("create", "--spec", specFile), /^vireo: 'pool create' needs --size N$/);
    assertUserError(
      pool("create", "--spec", specFile, "--size", "1", "--ready-marker", "x", "--ready-on-start"),
      /do not mix/,
    );
    assertUserError(
      pool("create", "--spec", specFile, "--size", "1", "--name", "cli"),
      /a pool named 'cli' exists/,
    );
    assert.deepEqual(JSON.parse(ok(pool("rm", "cli", "--json"))), { deleted: "cli" });
    assert.deepEqual(JSON.parse(ok(pool("list", "--json"))), []);
  });
});
