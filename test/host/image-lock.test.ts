import assert from "node:assert/strict";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { isLocked, type LockMode, lockImage, majorMinor } from "../../src/host/image-lock.js";
import { available } from "../../src/hypervisor/libc.js";
import { after, describe, test } from "../support/test.js";
import { posixLockHolder } from "./posix-lock-holder.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-image-lock-"));
const canLock = process.platform === "linux" && available();
const SKIP = "fcntl OFD locks need Linux and koffi";

after(() => rmSync(scratch, { recursive: true, force: true }));

function image(name: string): string {
  const path = join(scratch, name);
  writeFileSync(path, new Uint8Array(4096));
  return path;
}

/** Opens `path` (read-only for a shared lock, read-write otherwise) and tries the lock. */
function openAndLock(path: string, mode: LockMode) {
  const fd = openSync(path, mode === "shared" ? "r" : "r+");
  return { fd, result: lockImage(fd, mode, fstatSync(fd)) };
}

describe("image locks (OFD fcntl)", () => {
  test("an exclusive lock keeps out every other open of the file, until it is closed", {
    timeout: 30_000,
  }, (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = image("x.img");
    const first = openAndLock(path, "exclusive");
    assert.deepEqual(first.result, { kind: "locked" });
    // OFD locks belong to the open file, so a second open in this very process conflicts too; the
    // holder is found through /proc/PID/fdinfo.
    const writer = openAndLock(path, "exclusive");
    assert.deepEqual(writer.result, { kind: "conflict", holder: process.pid });
    const reader = openAndLock(path, "shared");
    assert.deepEqual(reader.result, { kind: "conflict", holder: process.pid });
    assert.equal(isLocked(reader.fd, "shared"), true);
    closeSync(first.fd);
    assert.equal(isLocked(reader.fd, "shared"), false);
    assert.deepEqual(lockImage(writer.fd, "exclusive", fstatSync(writer.fd)), { kind: "locked" });
    closeSync(writer.fd);
    closeSync(reader.fd);
  });

  test("shared locks coexist and keep a writer out", { timeout: 30_000 }, (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = image("s.img");
    const a = openAndLock(path, "shared");
    const b = openAndLock(path, "shared");
    assert.deepEqual(a.result, { kind: "locked" });
    assert.deepEqual(b.result, { kind: "locked" });
    const writer = openAndLock(path, "exclusive");
    assert.deepEqual(writer.result, { kind: "conflict", holder: process.pid });
    for (const fd of [a.fd, b.fd, writer.fd]) closeSync(fd);
  });

  test("the holder of a classic POSIX lock in another process is named (l_pid)", {
    timeout: 30_000,
  }, async (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = image("posix.img");
    const lock = posixLockHolder(path, "write");
    const holder = lock.child;
    try {
      assert.equal(await lock.said, "LOCKED");
      const reader = openAndLock(path, "shared");
      assert.deepEqual(reader.result, { kind: "conflict", holder: holder.pid });
      closeSync(reader.fd);
    } finally {
      lock.release();
    }
  });

  test("dev_t decodes to the major:minor /proc prints", { timeout: 30_000 }, () => {
    // glibc's makedev, written out: the inverse of majorMinor.
    const makedev = (major: number, minor: number) =>
      Number(
        ((BigInt(major) & 0xfffn) << 8n) |
          ((BigInt(major) & 0xffff_f000n) << 32n) |
          (BigInt(minor) & 0xffn) |
          ((BigInt(minor) & 0xffff_ff00n) << 12n),
      );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xf_ffff }),
        fc.integer({ min: 0, max: 0xf_ffff }),
        (major, minor) => {
          assert.deepEqual(majorMinor(makedev(major, minor)), [major, minor]);
        },
      ),
    );
    assert.deepEqual(majorMinor(0xfe00), [254, 0]);
  });
});
