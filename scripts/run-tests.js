// Runs every compiled test file with Node's built-in runner. A directory walk (not a shell glob)
// keeps this identical on every Node version >= 20.
//
// One property-test seed for the whole run: FC_SEED if given (to replay a failure), else drawn here;
// printed first, and handed to every file (test/support/test.ts configures fast-check with
// it). Each test has its own timeout (test/support/test.ts); --test-timeout bounds a whole file too.
// The tests that boot Debian print the kernel they boot (test/support/guest-image.ts), so a failure
// can be tied to one. Nothing is printed after the runner's own closing lines.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const FILE_TIMEOUT_MS = 25 * 60_000;

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...collect(path));
    else if (entry.name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

function runSeed() {
  const given = process.env.FC_SEED;
  if (given === undefined || given === "") return (Math.random() * 2 ** 32) | 0;
  const n = Number(given);
  if (!Number.isSafeInteger(n)) {
    process.stderr.write(`FC_SEED=${given}: not an integer\n`);
    process.exit(2);
  }
  return n | 0;
}

const seed = runSeed();
const files = collect("dist/test").sort();
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const say = (line) => process.stdout.write(`${line}\n`);
say(`property-test seed ${seed} (replay: FC_SEED=${seed} npm test)`);
const result = spawnSync(
  process.execPath,
  ["--test", "--test-reporter=spec", `--test-timeout=${FILE_TIMEOUT_MS}`, ...selected],
  { stdio: "inherit", env: { ...process.env, FC_SEED: String(seed) } },
);
process.exit(result.status ?? 1);
