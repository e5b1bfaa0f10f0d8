// Runs every compiled test file with Node's built-in runner. A directory walk (not a shell glob)
// keeps this identical on every Node version >= 20.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...collect(path));
    else if (entry.name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const files = collect("dist/test").sort();
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...selected], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
