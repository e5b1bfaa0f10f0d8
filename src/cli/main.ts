#!/usr/bin/env node
import { UserError } from "../util/errors.js";
import { runCommand } from "./run.js";

const USAGE = `usage: vireo run --kernel FILE [--arch riscv64] [--bios none] [--memory 64M] [--cpus N]
                 [--max-insns N] [--stats]
       vireo --help | --version`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runCommand(rest);
    case undefined:
    case "--help":
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    case "--version":
      process.stdout.write("vireo 0.1.0\n");
      return 0;
    default:
      throw new UserError(`unknown command '${command}' (try 'vireo --help')`);
  }
}

main(process.argv.slice(2)).then(
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
