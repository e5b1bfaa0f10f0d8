import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findTool } from "../../src/images/rootfs.js";
import { after, test } from "../support/test.js";

/**
 * Linux on Vireo with its root filesystem on virtio-blk: the initramfs loads the virtio and ext4
 * modules, switches to the ext4 disk, the guest writes a file and syncs, powers off — and the host reads
 * the file back out of the image with debugfs.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const scratch = mkdtempSync(join(tmpdir(), "vireo-rootdisk-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const SCRIPT = "echo written-by-the-guest-$(uname -m) > /root/from-guest.txt; sync";

after(() => rmSync(scratch, { recursive: true, force: true }));

test("boots from an ext4 root disk, and what the guest writes is on the disk", {
  timeout: 300_000,
}, async (t) => {
  if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
  const debugfs = findTool("debugfs");
  if (debugfs === undefined) return t.skip("debugfs not installed: apt-get install e2fsprogs");
  const { prepareWritableRootDisk, withRootDisk } = await import("../../src/images/riscv64.js");
  const image = await prepareWritableRootDisk({ path: join(scratch, "root.ext4"), quiet: true });
  const append = withRootDisk(
    `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(SCRIPT).toString("base64")}`,
  );
  const args = [main, "run", "--kernel", image.kernel, "--initrd", image.initrd, "--append", append];
  const r = await new Promise<{ status: number | null; out: string }>((done) => {
    const child = spawn(process.execPath, [...args, "--drive", `file=${image.disk}`], { stdio: "pipe" });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, out });
    });
  });
  const context = `status ${r.status}\n${r.out.slice(-4000)}`;
  assert.equal(r.status, 0, context);
  assert.match(r.out, /^CHECK root=\/dev\/vda ext4 rw\r?$/m, context);
  assert.match(r.out, /^CHECK run-status=0\r?$/m, context);
  const cat = spawnSync(debugfs, ["-R", "cat /root/from-guest.txt", image.disk], { encoding: "utf8" });
  assert.equal(cat.stdout.trim(), "written-by-the-guest-riscv64", cat.stderr);
  const fsck = spawnSync(findTool("e2fsck") ?? "e2fsck", ["-n", "-f", image.disk], { encoding: "utf8" });
  assert.equal(fsck.status, 0, `the guest left the filesystem clean:\n${fsck.stdout}${fsck.stderr}`);
});
