/**
 * The guest-side fuzzer (fuzz.c) against the real devices of `vireo run`: a bounded number of random
 * requests per device, one in five mutated. vireo must not crash or hang, every device must complete
 * valid requests (and net must carry frames between its two NICs), and the mutated ones must get a
 * device error (an error status, or DEVICE_NEEDS_RESET) rather than a host exception.
 */
import assert from "node:assert/strict";
import { describe, test } from "../support/test.js";
import { buildGuest, runGuest, toolchainMissing } from "./run-guest.js";

const REQUESTS = 80;
const TIMEOUT_MS = 120_000;

const skipReason = toolchainMissing();
if (skipReason !== undefined) console.log(`# guest fuzzer skipped: ${skipReason}`);

describe("guest-side virtio fuzzer", () => {
  test("random valid and mutated requests on blk, rng, console and net", {
    skip: skipReason ?? false,
    timeout: TIMEOUT_MS + 30_000,
  }, async () => {
    const build = buildGuest();
    assert.ok(build.ok, `make -C test/guest-fuzz failed:\n${build.output}`);
    const seed = Number(process.env.VIREO_GUEST_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
    console.log(`# guest fuzzer seed ${seed} (replay: VIREO_GUEST_FUZZ_SEED=${seed})`);
    const run = await runGuest(seed, REQUESTS, TIMEOUT_MS);
    const details = `${run.command}\nseed ${seed}\n--- stdout ---\n${run.stdout.slice(-4000)}\n--- stderr ---\n${run.stderr.slice(-4000)}`;
    assert.equal(run.timedOut, false, `timed out\n${details}`);
    assert.equal(run.code, 0, `exit status ${run.code} signal ${run.signal}\n${details}`);
    assert.ok(run.done, `no "FUZZ done"\n${details}`);
    for (const name of ["blk", "rng", "console", "net"]) {
      const c = run.devices.get(name);
      assert.ok(c, `no counts for ${name}\n${details}`);
      assert.ok(c.ok > 0, `${name}: no valid request completed\n${details}`);
      assert.equal(c.timeout, 0, `${name}: requests went unanswered\n${details}`);
      assert.equal(c.bad, 0, `${name}: valid requests answered with an error\n${details}`);
      assert.ok(c.err + c.reset > 0, `${name}: no mutated request got a device error\n${details}`);
    }
    assert.ok((run.devices.get("blk")?.err ?? 0) > 0, `blk: no IOERR/UNSUPP status\n${details}`);
    assert.ok((run.devices.get("net")?.rx ?? 0) > 0, `net: no frame got through the switch\n${details}`);
  });
});
