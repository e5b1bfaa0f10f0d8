// Runs `vireo images …` as a child process through dist/src/cli/main.js.
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const mainJs = join(root, "dist/src/cli/main.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function vireoImages(env: NodeJS.ProcessEnv, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [mainJs, "images", ...args], {
    env,
    encoding: "utf8",
    timeout: 15 * 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
