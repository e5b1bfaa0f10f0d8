/**
 * Snapshot and restore of a booted Linux guest across processes: `vireo run` boots the default guest
 * with two harts on its ext4 root disk (virtio-blk); its shell runs a loop that counts on the console
 * and appends each count to a file, and a busy loop pinned to the second hart that keeps a counter in
 * /dev/shm (so the snapshot catches both harts running, IPIs and timer interrupts in flight). SIGUSR1 saves a snapshot (--snapshot-and-stop ends that run, so the disk stays as
 * the snapshot saw it); a fresh `vireo run --restore` goes on: the count continues from the next number
 * with no line lost or doubled, the shell answers a command, and after `sync` and power-off the file
 * system is clean (e2fsck -n) and the file holds every count once. Also prints the snapshot's size and
 * the time to save and restore it next to the cold boot's.
 */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { findTool } from "../../src/images/rootfs.js";
import { after, test } from "../support/test.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const scratch = mkdtempSync(join(tmpdir(), "vireo-linux-snap-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
const LOOP =
  "(i=0; while :; do i=$((i+1)); echo COUNT $i >> /root/count.log; echo COUNT $i; sleep 0.2; done) &\n";
/** Spins on hart 1, writing its count every 200 turns (to RAM: the disk sees none of it). */
const BUSY =
  "taskset -c 1 sh -c 'j=0; while :; do j=$((j+1)); [ $((j % 200)) = 0 ] && echo $j > /dev/shm/busy; done' &\n";
/** The busy loop's count as the shell prints it: `echo BUSY-<tag> N`. */
const busyEcho = (tag: string) => `echo BUSY-${tag} $(cat /dev/shm/busy 2>/dev/null || echo 0)\n`;
const busyCount = (text: string, tag: string) =>
  Number(new RegExp(`^BUSY-${tag} (\\d+)\\r?$`, "m").exec(text)?.[1]);

after(() => rmSync(scratch, { recursive: true, force: true }));

/** A child `vireo` whose stdout and stderr the test reads; `until` waits for a pattern in stdout. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  private waiters: { pattern: RegExp; resolve: () => void }[] = [];

  constructor(args: string[]) {
    this.process = spawn(process.execPath, [main, "run", ...args], { stdio: "pipe" });
    this.process.stdout.on("data", (d) => {
      this.stdout += d;
      this.check();
    });
    this.process.stderr.on("data", (d) => {
      this.stderr += d;
      this.check();
    });
    this.exited = new Promise((done) => this.process.on("close", (status) => done(status)));
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pattern.test(this.stdout + this.stderr)) return true;
      w.resolve();
      return false;
    });
  }

  until(pattern: RegExp, what: string, ms = 240_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${what} within ${ms} ms:\n${this.stdout.slice(-3000)}\n${this.stderr}`)),
        ms,
      );
      this.waiters.push({
        pattern,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.check();
    });
  }

  type(text: string): void {
    this.process.stdin.write(text);
  }
}

function counts(text: string): number[] {
  // The first line follows the shell prompt (and a terminal query) on the same line.
  return [...text.matchAll(/COUNT (\d+)\r?$/gm)].map((m) => Number(m[1]));
}

test("a Linux guest with two harts snapshotted mid-loop goes on in a fresh process", {
  timeout: 300_000,
}, async (t) => {
  if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
  const e2fsck = findTool("e2fsck");
  const debugfs = findTool("debugfs");
  if (e2fsck === undefined || debugfs === undefined) {
    return t.skip("e2fsck/debugfs not installed: apt-get install e2fsprogs");
  }
  const { ensureRiscv64Image, prepareWritableRootDisk, withRootDisk } = await import(
    "../../src/images/riscv64.js"
  );
  const image = await ensureRiscv64Image({ quiet: true });
  if (!gunzipSync(readFileSync(image.initrd)).includes("virtio_blk.ko")) {
    return t.skip("the default initramfs carries no virtio modules");
  }
  const root = await prepareWritableRootDisk({ path: join(scratch, "root.ext4"), quiet: true });
  const disk = root.disk;
  const snap = join(scratch, "snap");
  const bootStart = performance.now();
  const first = new Child([
    ...[
      "--kernel",
      root.kernel,
      "--initrd",
      root.initrd,
      "--append",
      withRootDisk("console=ttyS0 earlycon=sbi"),
    ],
    ...["--drive", `file=${disk}`, "--cpus", "2"],
    ...["--snapshot-dir", snap, "--snapshot-and-stop"],
  ]);
  t.after(() => first.process.kill("SIGKILL"));
  await first.until(/Type 'poweroff'/, "shell banner");
  const bootMs = performance.now() - bootStart;
  first.type("echo HARTS-$(cat /sys/devices/system/cpu/online)\n");
  await first.until(/^HARTS-0-1\r?$/m, "both harts online");
  first.type(BUSY);
  first.type(LOOP);
  await first.until(/^COUNT 5\r?$/m, "COUNT 5");
  first.process.kill("SIGUSR1");
  await first.until(/snapshot saved to/, "snapshot message");
  assert.equal(await first.exited, 0, first.stderr);
  const before = counts(first.stdout);
  assert.ok(before.length >= 5, first.stdout.slice(-2000));

  const restoreStart = performance.now();
  const second = new Child(["--restore", snap]);
  t.after(() => second.process.kill("SIGKILL"));
  const last = before[before.length - 1] as number;
  await second.until(new RegExp(`^COUNT ${last + 5}\\r?$`, "m"), `COUNT ${last + 5}`);
  const restoreToCountMs = performance.now() - restoreStart;
  second.type("echo ANSWER-$((6*7))\n");
  await second.until(/^ANSWER-42\r?$/m, "the shell's answer");
  // Hart 1 came back too: the loop pinned to it goes on, and Linux still has both harts.
  second.type(busyEcho("A"));
  await second.until(/^BUSY-A \d+\r?$/m, "the busy loop's count");
  second.type(`sleep 1; ${busyEcho("B")}`);
  await second.until(/^BUSY-B \d+\r?$/m, "the busy loop's count again");
  const [busyA, busyB] = [busyCount(second.stdout, "A"), busyCount(second.stdout, "B")];
  assert.ok(busyB > busyA, `the loop on hart 1 runs on after the restore (${busyA}, then ${busyB})`);
  second.type("echo HARTS-$(cat /sys/devices/system/cpu/online)\n");
  await second.until(/^HARTS-0-1\r?$/m, "both harts online after the restore");
  second.type("kill %1 %2\n");
  second.type("sync; echo SYNCED-ALL\n");
  await second.until(/^SYNCED-ALL\r?$/m, "sync");
  // The console as one stream: what the first run printed up to the snapshot, then the restored run.
  const all = counts(first.stdout + second.stdout);
  assert.deepEqual(
    all,
    all.map((_, i) => i + 1),
    `one count, no line lost or doubled:\n${second.stdout.slice(-2000)}`,
  );
  second.type("poweroff\n");
  assert.equal(await second.exited, 0, second.stderr);
  const fsck = spawnSync(e2fsck, ["-n", "-f", disk], { encoding: "utf8" });
  assert.equal(fsck.status, 0, `the file system is clean:\n${fsck.stdout}${fsck.stderr}`);
  const log = spawnSync(debugfs, ["-R", "cat /root/count.log", disk], { encoding: "utf8" }).stdout;
  const logged = counts(log);
  // The file has every count the console showed, each once, and in order (the loop was killed after).
  assert.deepEqual(logged.slice(0, all.length), all, `count.log:\n${log.slice(-500)}`);
  assert.ok(logged.length <= all.length + 1, `count.log:\n${log.slice(-500)}`);
  const sizes = readdirSync(snap).map(
    (f) => `${f} ${(statSync(join(snap, f)).size / 2 ** 20).toFixed(1)} MiB`,
  );
  const restored = /restored \S+ in (\d+) ms/.exec(second.stderr)?.[1];
  const saved = /snapshot saved to .*\)/.exec(first.stderr)?.[0];
  t.diagnostic(
    `cold boot to the shell ${Math.round(bootMs)} ms; ${saved}; files: ${sizes.join(", ")}; ` +
      `restore ${restored} ms (process start to COUNT ${last + 5}: ${Math.round(restoreToCountMs)} ms)`,
  );
});
