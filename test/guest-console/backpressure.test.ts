/**
 * End to end: a bare-metal guest prints without pause on the UART into a pipe the test stops reading.
 * vireo must stall the guest instead of buffering: its RSS stays bounded while the guest has far more
 * to write than the bound, and every byte arrives, in order, once the test reads again.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guest, guestImages, kvmUnavailable } from "../kvm/support.js";
import { describe, test } from "../support/test.js";
import { floodGuest, repoRoot, toolchainMissing } from "./build.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const MiB = 2 ** 20;
/** More than a buffering vireo could hide: it would grow by most of it while the test does not read. */
const TOTAL = 64 * MiB;
const RSS_GROWTH_BOUND = 16 * MiB;
/** Pacing for the KVM test's reads (nothing is asserted about time). */
const PAUSE_MS = 400;

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

const why = toolchainMissing() ?? (process.platform !== "linux" ? "needs /proc (Linux)" : undefined);
if (why !== undefined) console.log(`# skipping console backpressure test: ${why}`);

interface Flood {
  code: number | null;
  stderr: string;
  received: number;
  /** The first byte out of order, or -1. */
  mismatch: number;
  /** vireo's RSS at the end of each pause. */
  samples: number[];
}

/**
 * Runs vireo with `args` (a guest that prints `total` bytes i mod 251), reading its stdout in bursts of
 * `burst` bytes with a pause after each.
 */
async function flood(args: string[], total: number, burst: number): Promise<Flood> {
  const child = spawn(process.execPath, [cli, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid as number;
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let received = 0;
  let mismatch = -1;
  let nextPause = burst;
  const samples: number[] = [];
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      for (let i = 0; i < chunk.length && mismatch < 0; i++) {
        if (chunk[i] !== (received + i) % 251) mismatch = received + i;
      }
      received += chunk.length;
      if (received >= nextPause && received < total) {
        nextPause += burst;
        child.stdout.pause();
        setTimeout(() => {
          // Sampled at the end of the pause, when unread output would have piled up.
          try {
            samples.push(rssBytes(pid));
          } catch (e) {
            reject(e);
          }
          child.stdout.resume();
        }, PAUSE_MS);
      }
    });
    child.stdout.on("end", resolve);
    child.on("error", reject);
  });
  return { code: await exited, stderr, received, mismatch, samples };
}

/**
 * vireo runs a guest that prints a known sequence of bytes; the test reads the first MiB, then stops reading while
 * it samples vireo's RSS, until the RSS has grown by more than `bound`, vireo has ended, or `samples`
 * samples were taken; then it reads the rest. A vireo that buffers what the pipe does not take grows
 * by what the guest writes meanwhile (or ends, having buffered everything); one that stalls the guest
 * stays put however long the pause. The pause only gives a buffering vireo time to show itself.
 */
async function floodWithStop(args: string[], bound: number, samples: number) {
  const child = spawn(process.execPath, [cli, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid as number;
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      ended = true;
      resolve(code);
    }),
  );
  let received = 0;
  let mismatch = -1;
  let stopped = false;
  const rss: number[] = [];
  let endedWhileStopped = false;
  const done = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      for (let i = 0; i < chunk.length && mismatch < 0; i++) {
        if (chunk[i] !== (received + i) % 251) mismatch = received + i;
      }
      received += chunk.length;
      if (stopped || received < MiB) return;
      stopped = true;
      child.stdout.pause();
      const timer = setInterval(() => {
        try {
          if (!ended) rss.push(rssBytes(pid));
        } catch {
          // vireo ended between the check and the read
        }
        const growth = rss.length === 0 ? 0 : (rss.at(-1) as number) - (rss[0] as number);
        if (ended || growth > bound || rss.length >= samples) {
          endedWhileStopped = ended;
          clearInterval(timer);
          child.stdout.resume();
        }
      }, 200);
    });
    child.stdout.on("end", resolve);
    child.on("error", reject);
  });
  await done;
  return { code: await exited, stderr, received, mismatch, rss, endedWhileStopped };
}

describe("console backpressure, end to end", { skip: why }, () => {
  test("a guest flooding the UART into a pipe nobody reads stalls: RSS bounded, every byte in order", {
    timeout: 300_000,
  }, async () => {
    const elf = floodGuest(TOTAL);
    const r = await floodWithStop(
      ["--bios", "none", "--kernel", elf, "--memory", "16M"],
      RSS_GROWTH_BOUND,
      100,
    );
    assert.equal(r.code, 0, `vireo failed: ${r.stderr}`);
    assert.equal(r.mismatch, -1, `byte ${r.mismatch} out of order`);
    assert.equal(r.received, TOTAL);
    const first = r.rss[0] as number;
    const growth = Math.max(...r.rss) - first;
    console.log(
      `# ${r.rss.length} RSS samples while not reading: first ${(first / MiB).toFixed(1)} MiB, max growth ${(growth / MiB).toFixed(1)} MiB; the guest writes ${TOTAL / MiB} MiB`,
    );
    assert.ok(
      !r.endedWhileStopped,
      "vireo finished while nobody read its output: it buffered the guest's output",
    );
    assert.ok(growth <= RSS_GROWTH_BOUND, `vireo's RSS grew by ${growth} bytes while nobody read its output`);
  });
});

const kvmWhy =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (kvmWhy !== undefined) console.log(`# skipping the KVM console backpressure test: ${kvmWhy}`);

describe("console backpressure on KVM", { skip: kvmWhy }, () => {
  // Every LSR poll and THR write is a forwarded exit, so this guest is far slower: it shows the stall
  // and resume work under KVM (nothing lost, nothing reordered), not the memory bound.
  test("a guest polling LSR on COM1 stalls while the pipe is not read, and loses nothing", {
    timeout: 300_000,
  }, async () => {
    const total = 64 * 1024;
    const dir = mkdtempSync(join(tmpdir(), "vireo-flood-x86-"));
    const count = join(dir, "count");
    const header = Buffer.alloc(4);
    header.writeUInt32LE(total);
    writeFileSync(count, header);
    try {
      const r = await flood(
        ["--arch", "x86_64", "--kernel", guest("flood"), "--initrd", count, "--memory", "64M"],
        total,
        16 * 1024,
      );
      assert.equal(r.code, 0, `vireo failed: ${r.stderr}`);
      assert.equal(r.mismatch, -1, `byte ${r.mismatch} out of order`);
      assert.equal(r.received, total);
      assert.ok(r.samples.length >= 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
