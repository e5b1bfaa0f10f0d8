// Runs `vireo images …` as a child process: through dist/src/cli/main.js once it dispatches to
// imagesCommand, else through imagesCommand directly with main.js's error handling.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const mainJs = join(root, "dist/src/cli/main.js");
const imagesJs = join(root, "dist/src/cli/images.js");
const errorsJs = join(root, "dist/src/util/errors.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function vireoImages(env: NodeJS.ProcessEnv, ...args: string[]): CliResult {
  const wired = existsSync(mainJs) && readFileSync(mainJs, "utf8").includes("imagesCommand");
  const argv = wired
    ? [mainJs, "images", ...args]
    : [
        "--input-type=module",
        "-e",
        `import { imagesCommand } from ${JSON.stringify(imagesJs)};
         import { UserError } from ${JSON.stringify(errorsJs)};
         imagesCommand(process.argv.slice(1)).then((s) => { process.exitCode = s; }, (e) => {
           process.stderr.write("vireo: " + (e instanceof UserError ? e.message : "internal error: " + e.stack) + "\\n");
           process.exitCode = e instanceof UserError ? 2 : 70;
         });`,
        ...args,
      ];
  const r = spawnSync(process.execPath, argv, { env, encoding: "utf8", timeout: 15 * 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
