/**
 * Module hooks for module-log.ts: every module the ES loader resolves is appended to the log file (the
 * path comes from register's data), written before the module loads, so nothing is lost at exit.
 */
import { appendFileSync } from "node:fs";
import type { InitializeHook, ResolveHook } from "node:module";

let log = "";

export const initialize: InitializeHook<{ log: string }> = (data) => {
  log = data.log;
};

export const resolve: ResolveHook = async (specifier, context, next) => {
  const resolved = await next(specifier, context);
  appendFileSync(log, `${resolved.url}\n`);
  return resolved;
};
