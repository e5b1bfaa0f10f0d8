#!/usr/bin/env node
import { UserError } from "../util/errors.js";
import { runVireo } from "./program.js";

// A reader that goes away (`vireo images list | head -1`) ends the output, as SIGPIPE ends a C tool;
// without a listener Node throws EPIPE out of the event loop as an internal error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(process.exitCode ?? 0);
  });
}

runVireo(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    if (error instanceof UserError) {
      process.stderr.write(`vireo: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`vireo: internal error: ${(error as Error).stack ?? error}\n`);
      process.exitCode = 70;
    }
  },
);
