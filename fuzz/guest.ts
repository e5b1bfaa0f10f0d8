/**
 * The `guest` target: the bare-metal guest fuzzer (test/guest-fuzz/fuzz.c) against vireo run's real
 * devices, for --cases requests per device. A crash is vireo exiting with an error (a host exception),
 * a hang (killed at the time limit), or the guest counting valid requests answered wrongly or never.
 */
import { buildGuest, type GuestRun, runGuest, toolchainMissing } from "../test/guest-fuzz/run-guest.js";

const DEVICES = ["blk", "rng", "console", "net"];

export async function runGuestFuzz(o: { seed: number; requests: number }) {
  const started = Date.now();
  const result = {
    cases: 0,
    crashes: [] as { index: number; error: string }[],
    hangs: [] as number[],
    ms: 0,
  };
  const missing = toolchainMissing();
  const build = missing === undefined ? buildGuest() : { ok: false, output: missing };
  if (!build.ok) {
    result.crashes.push({ index: 0, error: `could not build the guest: ${build.output.trim()}` });
    return result;
  }
  // About 25 requests per device and second on the interpreter: the limit is generous, as a hang is
  // a finding (--seconds sets the number of requests instead of a deadline for this target).
  const run: GuestRun = await runGuest(o.seed, o.requests, 60_000 + o.requests * 200);
  result.ms = Date.now() - started;
  for (const name of DEVICES) {
    const c = run.devices.get(name);
    if (c === undefined) continue;
    result.cases += c.ok + c.err + c.reset + c.timeout + c.bad;
    console.log(
      `  guest ${name}: ${Object.entries(c)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    if (c.bad > 0 || c.timeout > 0)
      result.crashes.push({
        index: 0,
        error: `${name}: ${c.bad} valid requests failed, ${c.timeout} unanswered`,
      });
  }
  if (run.timedOut) result.hangs.push(0);
  else if (run.code !== 0 || !run.done)
    result.crashes.push({ index: 0, error: `vireo exit ${run.code}: ${run.stderr.trim().slice(-2000)}` });
  return result;
}
