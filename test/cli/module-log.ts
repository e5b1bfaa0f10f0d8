/**
 * `node --import …/module-log.js`: writes every module the process loads to $VIREO_MODULE_LOG, one
 * URL or path a line. ES modules come from a resolve hook; CommonJS ones (packages that `require` one
 * another, which the hook does not see on Node 20) from the require cache at exit.
 */
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";

const log = process.env.VIREO_MODULE_LOG;
if (log === undefined || log === "") throw new Error("module-log: VIREO_MODULE_LOG is not set");
register("./module-log-hooks.js", import.meta.url, { data: { log } });
const cache = createRequire(import.meta.url).cache;
process.on("exit", () => {
  const loaded = Object.keys(cache);
  if (loaded.length > 0) appendFileSync(log, `${loaded.join("\n")}\n`);
});
