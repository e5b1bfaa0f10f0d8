/** Running the built `vireo` CLI from the CLI tests, and what they expect of its errors. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const vireoMain = join(repoRoot, "dist/src/cli/main.js");

export interface VireoResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `vireo ARGS…`, waited for (at most a minute: a hang is a failure, not a stuck suite). */
export function vireo(...args: string[]): VireoResult {
  const r = spawnSync(process.execPath, [vireoMain, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Bad input must end with exactly one `vireo: …` line on stderr, status 2, and no stack trace. */
export function assertUserError(r: VireoResult, pattern: RegExp): void {
  assert.equal(r.status, 2, `status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0] as string, /^vireo: /);
  assert.match(lines[0] as string, pattern);
}
