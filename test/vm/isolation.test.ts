/**
 * Two riscv64 VMs in one process, running at once (test/guest-iso/iso.c): A writes a random 64-byte
 * secret across all its free RAM; B, once A has, searches every byte of its own RAM for it, and the test
 * searches what the host can see of B (its guest RAM, its disk file). The secret is never there. As a
 * control the test plants the secret once in B's RAM from the host, and B's scan must find exactly that
 * one copy. B then programs virtio queues with addresses beyond its RAM (rng rings, a virtio-blk data
 * buffer): the device stops with DEVICE_NEEDS_RESET or answers with an error status, and a hash of A's
 * RAM taken from the host is the same before and after.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import type { ByteSink } from "../../src/devices/byte-sink.js";
import { createVm } from "../../src/vm/create.js";
import type { RiscvVm } from "../../src/vm/riscv.js";
import { toolchainMissing } from "../guest-console/build.js";
import { fillGuest, scanGuest } from "../guest-iso/build.js";
import { bareMetalSpec } from "../support/bare-metal.js";
import { describe, test } from "../support/test.js";

const MiB = 2 ** 20;
const A_RAM = 16 * MiB;
const B_RAM = 8 * MiB;

/** Collects console text; `until(re)` resolves once it matches. */
class TextSink implements ByteSink {
  text = "";
  private waiting: { re: RegExp; done: () => void }[] = [];
  readonly writable = true;
  whenWritable(resume: () => void): void {
    setImmediate(resume);
  }
  write(byte: number): void {
    this.text += String.fromCharCode(byte);
    if (byte !== 10) return;
    this.waiting = this.waiting.filter((w) => {
      if (!w.re.test(this.text)) return true;
      w.done();
      return false;
    });
  }
  until(re: RegExp): Promise<void> {
    if (re.test(this.text)) return Promise.resolve();
    return new Promise((done) => this.waiting.push({ re, done }));
  }
}

const spec = bareMetalSpec;

const ramOf = (vm: unknown) => {
  const bytes = (vm as RiscvVm).board.cpu.ram.bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
};
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Every offset of `needle` in `hay`. */
function occurrences(hay: Buffer, needle: Uint8Array): number[] {
  const at: number[] = [];
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + 1)) at.push(i);
  return at;
}

const noToolchain = toolchainMissing();
if (noToolchain) process.stderr.write(`skipping the isolation tests: ${noToolchain}\n`);

describe("VM isolation (riscv64)", { skip: noToolchain }, () => {
  test("a secret written across A's RAM never reaches B; B's bad queues leave A's RAM untouched", {
    timeout: 240_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "vireo-iso-"));
    const secret = randomBytes(64);
    process.stderr.write(`isolation secret ${secret.toString("hex")}\n`);
    const disk = join(dir, "b.img");
    writeFileSync(disk, Buffer.alloc(MiB));

    const sinkA = new TextSink();
    const sinkB = new TextSink();
    const a = await createVm(spec("a", fillGuest(dir, secret, A_RAM), A_RAM), nodeVmHost({ console: sinkA }));
    const b = await createVm(
      spec("b", scanGuest(dir, secret, B_RAM), B_RAM, {
        rng: true,
        drives: [{ path: disk, readOnly: false, id: "b" }],
      }),
      nodeVmHost({ console: sinkB }),
    );
    try {
      a.start();
      b.start();
      await sinkA.until(/FILLED\n/);
      const ramA = ramOf(a);
      const copies = occurrences(ramA, secret).length;
      // A's free RAM (all but its image and stack) is covered at every 64-byte step.
      assert.ok(copies > (A_RAM - MiB) / 64, `only ${copies} copies of the secret in A's RAM`);
      const hashBefore = sha256(ramA);

      const ramB = ramOf(b);
      assert.deepEqual(occurrences(ramB, secret), [], "the secret in B's RAM, seen from the host");
      // The control: one copy planted at an odd offset near the end of B's RAM must be found by B.
      const planted = B_RAM - 4096 + 3;
      ramB.set(secret, planted);
      b.input(new Uint8Array([0x67]));
      await sinkB.until(/DONE\n/);
      assert.deepEqual(await b.wait(), { reason: "exit", code: 0, reboot: false });

      const out = sinkB.text;
      process.stderr.write(`B said:\n${out}`);
      assert.match(out, /^SCAN found=1$/m, out);
      // B's blk request read into the last 256 bytes of RAM at most; the planted copy is further down.
      assert.deepEqual(occurrences(ramOf(b), secret), [planted], "B's RAM after its run");
      assert.deepEqual(occurrences(readFileSync(disk), secret), [], "the secret in B's disk file");

      for (const dev of ["rng", "rngfar"]) {
        const line = out.match(new RegExp(`^BADQ ${dev} status=0x([0-9a-f]+) .*$`, "m"));
        assert.ok(line, `no BADQ ${dev} line in ${out}`);
        assert.ok(
          (Number.parseInt(line[1] as string, 16) & 0x40) !== 0,
          `${dev}: no DEVICE_NEEDS_RESET: ${line[0]}`,
        );
      }
      const blk = out.match(/^BADQ blk status=0x([0-9a-f]+) used=(\d+) blkstatus=0x([0-9a-f]+)$/m);
      assert.ok(blk, `no BADQ blk line in ${out}`);
      const needsReset = (Number.parseInt(blk[1] as string, 16) & 0x40) !== 0;
      const errorStatus = blk[2] === "1" && Number.parseInt(blk[3] as string, 16) !== 0;
      assert.ok(needsReset || errorStatus, `blk accepted a buffer outside RAM: ${blk[0]}`);

      assert.equal(a.state.name, "running", "A kept running");
      assert.equal(sha256(ramOf(a)), hashBefore, "A's RAM changed while B ran");
    } finally {
      a.kill();
      b.kill();
      await Promise.allSettled([a.wait(), b.wait()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
