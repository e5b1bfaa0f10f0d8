import assert from "node:assert/strict";
import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { findTool } from "../../src/images/rootfs.js";
import { after, before, describe, test } from "../support/test.js";

/**
 * What a guest was told is on the disk is on the disk, even when the host kills `vireo run` with
 * SIGKILL at a random moment: a Linux guest writes markers to a virtio-blk disk, each followed by a
 * flush (dd conv=fsync: the virtio-blk FLUSH, fdatasync on the host file) and then "SYNCED n" on the
 * console; the host kills Vireo some random time after the first one and finds every reported marker
 * in the image. Then an ext4 root disk killed while the guest creates and syncs files: after journal
 * replay, e2fsck finds it clean and every file reported synced is there.
 *
 * The kill delays come from a seed printed at the start; VIREO_DATA_SAFETY_SEED=<n> replays them.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const BOOT_TIMEOUT_MS = 300_000;
/** The kill comes this long at most after the first SYNCED line. */
const MAX_KILL_DELAY_MS = 4000;
const RAW_TRIALS = 3;
const scratch = mkdtempSync(join(tmpdir(), "vireo-data-safety-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

const seedText = process.env.VIREO_DATA_SAFETY_SEED;
const seed = seedText === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
console.log(`data-safety: kill delays from seed ${seed} (replay: VIREO_DATA_SAFETY_SEED=${seed})`);

/** mulberry32: small, and the same sequence for the same seed on every machine. */
function random(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const nextDelay = (() => {
  const r = random(seed);
  return () => Math.floor(r() * MAX_KILL_DELAY_MS);
})();

/** Raw disk markers: sector n holds "MARK-n\n" padded with zeroes. */
const RAW_SCRIPT =
  "i=0;while :;do i=$((i+1));echo MARK-$i|dd of=/dev/vda bs=512 seek=$i conv=sync,fsync 2>/dev/null&&echo SYNCED $i;done";
/** On the ext4 root: a small file and a 32K one per round, then sync. Nothing deleted or truncated. */
const EXT4_SCRIPT =
  "i=0;while :;do i=$((i+1));echo data-$i>/root/s$i;dd if=/dev/zero of=/root/z$i bs=4k count=8 2>/dev/null;sync;echo SYNCED $i;done";

interface Killed {
  /** The markers the guest reported synced before the kill (whole lines only). */
  synced: number[];
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs vireo until the guest has reported a first SYNCED line, then kills it with SIGKILL after
 * `delayMs`. Fails (rejects) when no SYNCED line comes within the boot timeout.
 */
function runAndKill(args: string[], delayMs: number): Promise<Killed> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [main, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let armed = false;
    const onData = (d: Buffer) => {
      output += d;
      if (!armed && /^SYNCED \d+\r?$/m.test(output)) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => child.kill("SIGKILL"), BOOT_TIMEOUT_MS);
    child.on("close", (_status, signal) => {
      clearTimeout(timer);
      if (!armed) return fail(new Error(`the guest never reported a synced write:\n${output.slice(-4000)}`));
      const lines = output.split("\n").slice(0, -1);
      const synced = lines.flatMap((l) => {
        const m = /^SYNCED (\d+)\r?$/.exec(l);
        return m ? [Number(m[1])] : [];
      });
      done({ synced, signal, output });
    });
  });
}

let image: { kernel: string; initrd: string } | null = null;
let hasModules = false;

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("data safety: SIGKILL of vireo run while the guest writes", { concurrency: 1 }, () => {
  before(
    async () => {
      if (!hasApt) return;
      const { ensureRiscv64Image } = await import("../../src/images/riscv64.js");
      image = await ensureRiscv64Image({ quiet: true });
      hasModules = gunzipSync(readFileSync(image.initrd)).includes("virtio_blk.ko");
    },
    { timeout: 600_000 },
  );

  test("every marker the guest reported flushed to a raw disk is in the image", {
    timeout: 1_200_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasModules) return t.skip("the default initramfs carries no virtio modules");
    const append = `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(RAW_SCRIPT).toString("base64")}`;
    for (let trial = 0; trial < RAW_TRIALS; trial++) {
      const disk = join(scratch, `raw${trial}.img`);
      writeFileSync(disk, new Uint8Array(8 << 20));
      const delay = nextDelay();
      const r = await runAndKill(
        ["--kernel", image.kernel, "--initrd", image.initrd, "--append", append, "--drive", `file=${disk}`],
        delay,
      );
      const context = `trial ${trial}, seed ${seed}, kill ${delay} ms after the first SYNCED\n${r.output.slice(-3000)}`;
      assert.equal(r.signal, "SIGKILL", context);
      assert.ok(r.synced.length > 0, context);
      t.diagnostic(`trial ${trial}: killed ${delay} ms after the first SYNCED; ${r.synced.length} synced`);
      const bytes = readFileSync(disk);
      // Sectors as latin1 strings: a mismatch prints readably.
      const sector = (n: number) => bytes.subarray(n * 512, (n + 1) * 512).toString("latin1");
      const expected = (n: number) => `MARK-${n}\n`.padEnd(512, "\0");
      const empty = "\0".repeat(512);
      for (const n of r.synced) {
        assert.equal(sector(n), expected(n), `marker ${n} was reported synced: ${context}`);
      }
      // Every other sector holds its whole marker or nothing: a killed write is never half there.
      for (let n = 1; n < bytes.length / 512; n++) {
        const s = sector(n);
        if (s !== empty) assert.equal(s, expected(n), `sector ${n}: ${context}`);
      }
    }
  });

  test("an ext4 root disk killed mid-write is clean after journal replay", {
    timeout: 900_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasModules) return t.skip("the default initramfs carries no virtio modules");
    const e2fsck = findTool("e2fsck");
    const debugfs = findTool("debugfs");
    if (e2fsck === undefined || debugfs === undefined) {
      return t.skip("e2fsck/debugfs not installed: apt-get install e2fsprogs");
    }
    const { prepareWritableRootDisk, withRootDisk } = await import("../../src/images/riscv64.js");
    const rootImage = await prepareWritableRootDisk({ path: join(scratch, "root.ext4"), quiet: true });
    const append = withRootDisk(
      `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(EXT4_SCRIPT).toString("base64")}`,
    );
    const delay = nextDelay();
    const r = await runAndKill(
      [
        ...["--kernel", rootImage.kernel, "--initrd", rootImage.initrd, "--append", append],
        ...["--drive", `file=${rootImage.disk}`],
      ],
      delay,
    );
    const context = `seed ${seed}, kill ${delay} ms after the first SYNCED\n${r.output.slice(-3000)}`;
    assert.equal(r.signal, "SIGKILL", context);
    t.diagnostic(`killed ${delay} ms after the first SYNCED; ${r.synced.length} synced`);
    // Replays the journal as a mount would (on a copy: the killed image stays as it was for a look).
    const replayed = join(scratch, "replayed.ext4");
    copyFileSync(rootImage.disk, replayed);
    const replay = spawnSync(e2fsck, ["-y", "-E", "journal_only", replayed], { encoding: "utf8" });
    assert.ok(replay.status === 0 || replay.status === 1, `journal replay: ${replay.stdout}${replay.stderr}`);
    const fsck = spawnSync(e2fsck, ["-f", "-n", replayed], { encoding: "utf8" });
    assert.equal(fsck.status, 0, `e2fsck -fn after replay:\n${fsck.stdout}${fsck.stderr}\n${context}`);
    for (const n of r.synced) {
      const cat: SpawnSyncReturns<string> = spawnSync(debugfs, ["-R", `cat /root/s${n}`, replayed], {
        encoding: "utf8",
      });
      assert.equal(cat.stdout, `data-${n}\n`, `file ${n} was reported synced: ${cat.stderr}`);
    }
  });
});
