/** `vireo run --restore` and `--snapshot-dir` refuse bad input with one line and status 2. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "../support/test.js";
import { assertUserError, vireo } from "./vireo.js";

describe("vireo run --restore", () => {
  const dir = mkdtempSync(join(tmpdir(), "vireo-snap-cli-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a missing, empty or foreign snapshot directory: one line, status 2", { timeout: 60_000 }, () => {
    assertUserError(
      vireo("run", "--restore", join(dir, "none")),
      /none: cannot read the snapshot: .*no such file/,
    );
    const junk = join(dir, "junk");
    mkdirSync(junk);
    writeFileSync(
      join(junk, "state.vsnap"),
      "not a snapshot at all, but long enough for a header of 48 bytes",
    );
    writeFileSync(join(junk, "memory.vsnap"), "VIREOMEM");
    assertUserError(vireo("run", "--restore", junk), /memory.vsnap: truncated \(no complete header\)/);
    writeFileSync(join(junk, "memory.vsnap"), new Uint8Array(64));
    assertUserError(vireo("run", "--restore", junk), /memory.vsnap: not a Vireo snapshot memory file/);
  });

  test("VM flags do not go with --restore (the snapshot holds the VM)", { timeout: 60_000 }, () => {
    assertUserError(vireo("run", "--restore", dir, "--memory", "1G"), /--memory cannot go with --restore/);
  });
});
