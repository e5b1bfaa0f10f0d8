/**
 * node:test as every test file uses it: `test`/`it` and the hooks get a timeout when they name none,
 * so a hung guest or a lost callback fails that test instead of stalling the suite, and fast-check
 * runs from the run's seed, printed once so a failure can be replayed (`FC_SEED=N npm test`).
 * Node 20's own --test-timeout bounds only whole files, hence this wrapper; test/support/imports.test.ts
 * checks that no test file imports node:test directly.
 */
import * as nodeTest from "node:test";
import fc from "fast-check";

/**
 * What a test may take when it says nothing: generous for a unit test, short for a hung guest.
 * VIREO_TEST_TIMEOUT_MS changes it (a slower machine; the wrapper's own test).
 */
export const DEFAULT_TEST_TIMEOUT_MS = timeoutFromEnv() ?? 60_000;
/** Hooks fetch images or build guests (apt, cross-compiles): longer, still bounded. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10 * DEFAULT_TEST_TIMEOUT_MS;

function timeoutFromEnv(): number | undefined {
  const given = process.env.VIREO_TEST_TIMEOUT_MS;
  if (given === undefined || given === "") return undefined;
  const n = Number(given);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`VIREO_TEST_TIMEOUT_MS=${given}: not a positive integer`);
  return n;
}

/** The run's seed: FC_SEED when set (scripts/run-tests.js sets it for every file), else drawn here. */
function runSeed(): number {
  const given = process.env.FC_SEED;
  if (given !== undefined && given !== "") {
    const n = Number(given);
    if (!Number.isSafeInteger(n)) throw new Error(`FC_SEED=${given}: not an integer`);
    return n | 0;
  }
  const drawn = (Math.random() * 2 ** 32) | 0;
  process.env.FC_SEED = String(drawn);
  process.stderr.write(`property-test seed ${drawn} (replay: FC_SEED=${drawn})\n`);
  return drawn;
}

const seed = runSeed();
fc.configureGlobal({ seed });

/** The run's seed, for tests that draw from a PRNG of their own (mix in a constant per use). */
export function testSeed(): number {
  return seed;
}

type Args = unknown[];

/**
 * Gives the options argument a timeout when it has none, adding the argument where absent: before the
 * function for tests (`test(name, options, fn)`), after it for hooks (`before(fn, options)`).
 */
function withTimeout(args: Args, timeout: number, optionsLast: boolean): Args {
  const out = [...args];
  const at = out.findIndex((a) => typeof a === "object" && a !== null);
  if (at >= 0) {
    const options = out[at] as { timeout?: number };
    if (options.timeout === undefined) out[at] = { ...options, timeout };
    return out;
  }
  const fn = out.findIndex((a) => typeof a === "function");
  if (fn >= 0 && !optionsLast) out.splice(fn, 0, { timeout });
  else out.push({ timeout });
  return out;
}

/** A test function whose calls (and .skip/.todo/.only) get the default timeout. */
function timed<T extends (...a: never[]) => unknown>(original: T, timeout: number, optionsLast = false): T {
  const call =
    (fn: (...a: Args) => unknown) =>
    (...a: Args) =>
      fn(...withTimeout(a, timeout, optionsLast));
  const wrapped = call(original as unknown as (...a: Args) => unknown) as unknown as Record<string, unknown>;
  const source = original as unknown as Record<string, unknown>;
  for (const variant of ["skip", "todo", "only"]) {
    const v = source[variant];
    if (typeof v === "function") wrapped[variant] = call(v as (...a: Args) => unknown);
  }
  return wrapped as unknown as T;
}

export const test: typeof nodeTest.test = timed(nodeTest.test, DEFAULT_TEST_TIMEOUT_MS);
export const it: typeof nodeTest.it = timed(nodeTest.it, DEFAULT_TEST_TIMEOUT_MS);
export const before: typeof nodeTest.before = timed(nodeTest.before, DEFAULT_HOOK_TIMEOUT_MS, true);
export const after: typeof nodeTest.after = timed(nodeTest.after, DEFAULT_HOOK_TIMEOUT_MS, true);
export const beforeEach: typeof nodeTest.beforeEach = timed(
  nodeTest.beforeEach,
  DEFAULT_TEST_TIMEOUT_MS,
  true,
);
export const afterEach: typeof nodeTest.afterEach = timed(nodeTest.afterEach, DEFAULT_TEST_TIMEOUT_MS, true);
export const describe = nodeTest.describe;
export type TestContext = nodeTest.TestContext;
