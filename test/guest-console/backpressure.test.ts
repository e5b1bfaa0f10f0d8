/**
 * End to end: a bare-metal guest prints without pause on the UART into a pipe the test reads slowly,
 * pausing now and then. vireo must stall the guest instead of buffering: its RSS stays bounded while the
 * guest writes far more than the bound, and every byte arrives, in order.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { floodGuest, repoRoot, toolchainMissing } from "./build.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const MiB = 2 ** 20;
const TOTAL = 96 * MiB;
/** Read this much, then stop reading for a while (pacing only: nothing is asserted about time). */
const BURST = 8 * MiB;
const PAUSE_MS = 400;
const RSS_GROWTH_BOUND = 64 * MiB;

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

const why = toolchainMissing() ?? (process.platform !== "linux" ? "needs /proc (Linux)" : undefined);
if (why !== undefined) console.log(`# skipping console backpressure test: ${why}`);

describe("console backpressure, end to end", { skip: why }, () => {
  test("a guest flooding the UART into a slow pipe: RSS bounded, every byte in order", {
    timeout: 300_000,
  }, async () => {
    const elf = floodGuest(TOTAL);
    const child = spawn(
      process.execPath,
      [cli, "run", "--bios", "none", "--kernel", elf, "--memory", "16M"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const pid = child.pid as number;
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    let received = 0;
    let mismatch = -1;
    let nextPause = BURST;
    const samples: number[] = [];
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        for (let i = 0; i < chunk.length && mismatch < 0; i++) {
          if (chunk[i] !== (received + i) % 251) mismatch = received + i;
        }
        received += chunk.length;
        if (received >= nextPause && received < TOTAL) {
          nextPause += BURST;
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
    const code = await exited;
    assert.equal(code, 0, `vireo failed: ${stderr}`);
    assert.equal(mismatch, -1, `byte ${mismatch} out of order`);
    assert.equal(received, TOTAL);
    const first = samples[0] as number;
    const growth = Math.max(...samples) - first;
    console.log(
      `# ${samples.length} RSS samples: first ${(first / MiB).toFixed(1)} MiB, max growth ${(growth / MiB).toFixed(1)} MiB, guest wrote ${TOTAL / MiB} MiB`,
    );
    assert.ok(samples.length >= 8, `only ${samples.length} samples`);
    assert.ok(growth < RSS_GROWTH_BOUND, `vireo's RSS grew by ${growth} bytes`);
  });
});
