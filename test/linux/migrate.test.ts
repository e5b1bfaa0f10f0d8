/**
 * Live migration of a booted Linux guest on its ext4 root disk (virtio-blk) between two VMs of this
 * process over a Unix socket, one boot: its shell runs a loop that rewrites a 1 MiB file in RAM
 * (/dev/shm), appends the count to a file on the disk and prints it. After the move the count goes on
 * from the next number with no line lost or doubled, the shell answers on the target, and after `sync`
 * and power-off the file system is clean (e2fsck -n) and the file holds every count once: the disk was
 * handed over whole. Prints passes, bytes and downtime.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import type { ByteSink } from "../../src/devices/byte-sink.js";
import { findTool } from "../../src/images/rootfs.js";
import { connectMigration, readStart, socketChannel } from "../../src/manager/migration-socket.js";
import { encodeFrame, FrameType } from "../../src/snapshot/migration-wire.js";
import { createVm } from "../../src/vm/create.js";
import { validateVmSpec } from "../../src/vm/spec.js";
import type { Vm } from "../../src/vm/vm.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, test } from "../support/test.js";

const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), "vireo-linux-mig-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const LOOP =
  "(i=0; while :; do i=$((i+1)); dd if=/dev/urandom of=/dev/shm/blob bs=64k count=16 2>/dev/null; echo COUNT $i >> /root/count.log; echo COUNT $i; sleep 0.1; done) &\n";

class Screen implements ByteSink {
  text = "";
  private waiters: { pattern: RegExp; resolve: () => void }[] = [];
  write(byte: number): void {
    this.text += String.fromCharCode(byte);
    if (byte === 10) this.check();
  }
  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pattern.test(this.text)) return true;
      w.resolve();
      return false;
    });
  }
  until(pattern: RegExp): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ pattern, resolve });
      this.check();
    });
  }
}

function counts(text: string): number[] {
  return [...text.matchAll(/COUNT (\d+)\r?$/gm)].map((m) => Number(m[1]));
}

test("a Linux guest busy writing memory and its disk migrates: the loop counts on, the disk stays whole", {
  timeout: 300_000,
}, async (t) => {
  if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
  const e2fsck = findTool("e2fsck");
  const debugfs = findTool("debugfs");
  if (e2fsck === undefined || debugfs === undefined) {
    return t.skip("e2fsck/debugfs not installed: apt-get install e2fsprogs");
  }
  const { prepareWritableRootDisk, withRootDisk } = await import("../../src/images/riscv64.js");
  const image = await riscv64Image();
  if (!gunzipSync(readFileSync(image.initrd)).includes("virtio_blk.ko")) {
    return t.skip("the default initramfs carries no virtio modules");
  }
  const root = await prepareWritableRootDisk({ path: join(scratch, "root.ext4"), quiet: true });
  const first = new Screen();
  const spec = validateVmSpec({
    name: "linux-src",
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory: 256 * 2 ** 20,
    boot: { kernel: root.kernel, initrd: root.initrd, cmdline: withRootDisk("console=ttyS0 earlycon=sbi") },
    drives: [{ id: "root", path: root.disk, readOnly: false }],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "split",
  });
  const source = await createVm(spec, nodeVmHost({ console: first }));
  t.after(() => source.kill());
  source.start();
  await first.until(/Type 'poweroff'/);
  source.input(new TextEncoder().encode(LOOP));
  await first.until(/^COUNT 5\r?$/m);

  const second = new Screen();
  let target: Vm | null = null;
  const path = join(scratch, "migrate.sock");
  const arrived = new Promise<void>((resolve, reject) => {
    const server = createServer((socket) => {
      server.close();
      const channel = socketChannel(socket);
      (async () => {
        const start = await readStart(channel);
        await channel.send(encodeFrame(FrameType.ACCEPT));
        target = await createVm(
          validateVmSpec({ ...(start.spec as object), name: "linux-dst" }),
          nodeVmHost({ console: second }),
          { incoming: { start, next: () => channel.next() } },
        );
        target.start();
        await channel.send(encodeFrame(FrameType.RUNNING));
        resolve();
      })().catch(reject);
    });
    server.listen(path);
  });
  await new Promise((r) => setTimeout(r, 20));
  const result = await (source.migrate as NonNullable<Vm["migrate"]>)(await connectMigration(path));
  await arrived;
  await source.wait();
  const moved = target as unknown as Vm;
  t.after(() => moved.kill());
  const before = counts(first.text);
  const last = before[before.length - 1] as number;
  await second.until(new RegExp(`^COUNT ${last + 5}\\r?$`, "m"));
  moved.input(new TextEncoder().encode("echo ANSWER-$((6*7))\n"));
  await second.until(/^ANSWER-42\r?$/m);
  const all = counts(first.text + second.text);
  assert.deepEqual(
    all,
    all.map((_, i) => i + 1),
    `one count, no line lost or doubled:\n${second.text.slice(-1500)}`,
  );
  assert.ok(result.passes >= 2, `${result.passes} passes`);
  assert.ok(result.downtimeMs <= result.totalMs);
  t.diagnostic(
    `Linux, 256 MiB: ${result.passes} passes, ${result.pages} pages, ${(result.bytes / 2 ** 20).toFixed(1)} MiB, ` +
      `total ${Math.round(result.totalMs)} ms, downtime ${Math.round(result.downtimeMs)} ms, throttle ${result.throttle}`,
  );
  moved.input(new TextEncoder().encode("kill %1; sync; echo SYNCED-ALL\n"));
  await second.until(/^SYNCED-ALL\r?$/m);
  moved.input(new TextEncoder().encode("poweroff\n"));
  await moved.wait();
  const fsck = spawnSync(e2fsck, ["-n", "-f", root.disk], { encoding: "utf8" });
  assert.equal(fsck.status, 0, `the file system is clean:\n${fsck.stdout}${fsck.stderr}`);
  const log = spawnSync(debugfs, ["-R", "cat /root/count.log", root.disk], { encoding: "utf8" }).stdout;
  const logged = counts(log);
  assert.deepEqual(logged.slice(0, all.length), all, `count.log:\n${log.slice(-500)}`);
  assert.ok(logged.length <= all.length + 1, `count.log:\n${log.slice(-500)}`);
});
