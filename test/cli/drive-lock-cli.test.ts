import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, linkSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isLocked, type LockMode } from "../../src/host/image-lock.js";
import { available } from "../../src/hypervisor/libc.js";
import { posixLockHolder } from "../host/posix-lock-holder.js";
import { after, describe, test } from "../support/test.js";
import { assertUserError, vireo, vireoMain } from "./vireo.js";

/**
 * Disk images in use: a second Vireo (RISC-V or x86) that opens an image another process has locked is
 * refused with one line naming the holder; read-only users share; one file reached through a symlink
 * or hard link is not attached twice writable; devices, FIFOs and directories are not drives.
 */
const main = vireoMain;
const scratch = mkdtempSync(join(tmpdir(), "vireo-drive-lock-"));
const canLock = process.platform === "linux" && available();
const SKIP = "image locks need Linux and koffi";
const holders: ChildProcess[] = [];

after(() => {
  for (const h of holders) h.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

function file(name: string, bytes: Uint8Array): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

const disk = (name: string) => file(name, new Uint8Array(1 << 20));

/** A minimal RISC-V Linux Image header: enough for --dump-dtb, which opens the drives and stops. */
const kernel = (() => {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, 1 << 20, true);
  bytes.set([0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0], 48);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  return file("Image", bytes);
})();
/** Bare metal `1: wfi; j 1b`: a VM that holds its drives and idles until killed. */
const idle = file("idle.bin", new Uint8Array([0x73, 0x00, 0x50, 0x10, 0x6f, 0xf0, 0xdf, 0xff]));

const dumpDtb = () => ["run", "--kernel", kernel, "--dump-dtb", join(scratch, "out.dtb")];

/** Starts an idle Vireo with `drive`, and waits until its lock on `path` is there (mode: its lock). */
async function holdWithVireo(drive: string, path: string, mode: LockMode): Promise<ChildProcess> {
  const child = spawn(process.execPath, [main, "run", "--bios", "none", "--kernel", idle, "--drive", drive], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  holders.push(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const fd = openSync(path, "r");
  try {
    // The lock a second user would run into: a shared one for a writer's lock, exclusive for a reader's.
    const probe: LockMode = mode === "exclusive" ? "shared" : "exclusive";
    while (!isLocked(fd, probe)) {
      if (child.exitCode !== null) throw new Error(`the holder exited (${child.exitCode}): ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    closeSync(fd);
  }
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

describe("disk image locks between processes", () => {
  test("a second Vireo is refused a drive another one writes, naming its pid; the lock ends with the VM", {
    timeout: 120_000,
  }, async (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = disk("busy.img");
    const link = join(scratch, "busy-link.img");
    symlinkSync(path, link);
    const holder = await holdWithVireo(`file=${path}`, path, "exclusive");
    const refused = new RegExp(
      `^vireo: --drive .*busy(-link)?\\.img: locked by another process \\(pid ${holder.pid}\\); is another VM using it\\?$`,
    );
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${path}`), refused);
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${path},readonly=on`), refused);
    // The lock is on the file, whatever path reaches it.
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${link}`), refused);
    // The x86 board opens (and locks) its drives before it reads the kernel or opens /dev/kvm.
    assertUserError(vireo("run", "--arch", "x86_64", "--kernel", kernel, "--drive", `file=${path}`), refused);
    await stop(holder);
    const r = vireo(...dumpDtb(), "--drive", `file=${path}`);
    assert.equal(r.status, 0, r.stderr);
  });

  test("read-only drives share an image; a writer is refused while they hold it", {
    timeout: 120_000,
  }, async (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = disk("shared.img");
    const holder = await holdWithVireo(`file=${path},readonly=on`, path, "shared");
    const r = vireo(...dumpDtb(), "--drive", `file=${path},readonly=on`);
    assert.equal(r.status, 0, r.stderr);
    assertUserError(
      vireo(...dumpDtb(), "--drive", `file=${path}`),
      new RegExp(`locked by another process \\(pid ${holder.pid}\\)`),
    );
    await stop(holder);
  });

  test("a plain fcntl lock of another program is honoured and its owner named", {
    timeout: 60_000,
  }, async (t) => {
    if (!canLock) return t.skip(SKIP);
    const path = disk("posix.img");
    const lock = posixLockHolder(path, "read");
    const holder = lock.child;
    try {
      assert.equal(await lock.said, "LOCKED");
      // A classic read lock: readers may share it, a writer may not.
      assert.equal(vireo(...dumpDtb(), "--drive", `file=${path},readonly=on`).status, 0);
      assertUserError(
        vireo(...dumpDtb(), "--drive", `file=${path}`),
        new RegExp(`: locked by another process \\(pid ${holder.pid}\\); is another VM using it\\?$`),
      );
    } finally {
      lock.release();
    }
  });
});

describe("one file, several paths", () => {
  test("a symlink or hard link cannot attach a file twice writable; read-only twice is fine", {
    timeout: 60_000,
  }, () => {
    const path = disk("one.img");
    const soft = join(scratch, "one-soft.img");
    const hard = join(scratch, "one-hard.img");
    symlinkSync(path, soft);
    linkSync(path, hard);
    const same = /^vireo: --drive .*one-(soft|hard)\.img: the same file as --drive .*one\.img/;
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${path}`, "--drive", `file=${soft}`), same);
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${path}`, "--drive", `file=${hard}`), same);
    assertUserError(
      vireo(...dumpDtb(), "--drive", `file=${path},readonly=on`, "--drive", `file=${hard}`),
      same,
    );
    assertUserError(
      vireo(...dumpDtb(), "--drive", `file=${path}`, "--drive", `file=${soft},readonly=on`),
      same,
    );
    const r = vireo(
      ...dumpDtb(),
      "--drive",
      `file=${path},readonly=on`,
      "--drive",
      `file=${hard},readonly=on`,
    );
    assert.equal(r.status, 0, r.stderr);
    // The x86 board checks the same way (before it needs a kernel or KVM).
    assertUserError(
      vireo(
        "run",
        "--arch",
        "x86_64",
        "--kernel",
        kernel,
        "--drive",
        `file=${path}`,
        "--drive",
        `file=${soft}`,
      ),
      same,
    );
  });
});

describe("drives that are not regular files", () => {
  test("/dev/zero, a FIFO and a directory are refused without opening them for I/O", {
    timeout: 60_000,
  }, (t) => {
    const notFile = (kind: string) =>
      new RegExp(`^vireo: --drive .*: ${kind}, not a regular file; drives are disk image files`);
    assertUserError(vireo(...dumpDtb(), "--drive", "file=/dev/zero"), notFile("a character device"));
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${scratch}`), notFile("a directory"));
    assertUserError(
      vireo("run", "--arch", "x86_64", "--kernel", kernel, "--drive", "file=/dev/zero"),
      notFile("a character device"),
    );
    const fifo = join(scratch, "fifo");
    if (spawnSync("mkfifo", [fifo]).status !== 0) return t.skip("mkfifo is not available");
    // Opening a FIFO would wait for a writer: spawnSync's timeout turns a hang into a failure here.
    assertUserError(vireo(...dumpDtb(), "--drive", `file=${fifo}`), notFile("a FIFO"));
  });
});
