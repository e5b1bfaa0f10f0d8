/**
 * The `vireo` command tree on commander. Commander's own errors are turned into the CLI's one-line
 * `vireo: …` user errors (exit status 2), worded as the hand-written parser worded them, with the
 * command they are about; help goes to stdout (and a bare `vireo`/`vireo images`/`vireo vm`, which
 * does nothing, prints it with status 2).
 */
import { Command, CommanderError } from "commander";
import { UserError } from "../util/errors.js";
import { daemonCommand } from "./daemon.js";
import { imagesCommand } from "./images.js";
import { poolCommand } from "./pool.js";
import { runCommandDef } from "./run.js";
import { vmCommand } from "./vm.js";
import { webCommand } from "./web.js";

export const VERSION = "0.1.0";

/** Help or the version was printed: no error, just this exit status. */
export class HelpShown extends Error {
  constructor(readonly status: number) {
    super("help shown");
  }
}

/** `vireo run` → "vireo run", for messages. */
function fullName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** A commander error as a UserError about `cmd` (or HelpShown for help and --version). */
export function translate(e: CommanderError, cmd: Command): Error {
  switch (e.code) {
    case "commander.helpDisplayed":
    case "commander.version":
      return new HelpShown(0);
    case "commander.help":
      return new HelpShown(2);
  }
  const message = e.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  switch (e.code) {
    case "commander.unknownOption": {
      const eq = quoted.indexOf("=");
      const switchName = eq > 0 ? quoted.slice(0, eq) : "";
      if (switchName !== "" && cmd.options.some((o) => o.long === switchName && !o.required && !o.optional)) {
        return new UserError(`${switchName} takes no value`);
      }
      return new UserError(`${message.replace(`'${quoted}'`, quoted)} for '${fullName(cmd)}'`);
    }
    case "commander.optionMissingArgument":
      return new UserError(`${quoted.split(" ")[0]} needs a value`);
    case "commander.excessArguments":
      return new UserError(
        `unexpected argument '${cmd.args[cmd.registeredArguments.length]}' for '${fullName(cmd)}'`,
      );
    case "commander.missingArgument":
      return new UserError(`'${fullName(cmd)}' needs ${quoted.toUpperCase()}`);
    case "commander.unknownCommand": {
      const known = cmd.commands.map((c) => c.name()).join(", ");
      return new UserError(
        `unknown ${cmd.parent === null ? "" : `${cmd.name()} `}command '${quoted}' (one of: ${known}; try '${fullName(cmd)} --help')`,
      );
    }
    default:
      return new UserError(message);
  }
}

/**
 * Commander's output and exits routed through `translate`, and one help style, on `cmd` and every
 * command below it (settings are not inherited by commands added with addCommand).
 */
function routeErrors(cmd: Command): void {
  cmd.helpOption("-h, --help", "print this help").helpCommand(false);
  cmd.exitOverride((e) => {
    throw translate(e, cmd);
  });
  cmd.configureOutput({
    writeOut: (text) => process.stdout.write(text),
    // Commander writes only help here (its error messages go through outputError): usage to stdout.
    writeErr: (text) => process.stdout.write(text),
    outputError: () => {},
  });
  for (const sub of cmd.commands) routeErrors(sub);
}

/** The whole command tree; each action reports its exit status through `done`. */
export function buildProgram(done: (status: number) => void): Command {
  const program = new Command("vireo")
    .description("A hypervisor in TypeScript: RISC-V emulation, paravirtual devices, KVM")
    .version(`vireo ${VERSION}`, "--version", "print the version")
    // A subcommand's flags are its own: `vireo run --version` is an unknown option of run.
    .enablePositionalOptions();
  program.addCommand(runCommandDef(done));
  program.addCommand(imagesCommand(done));
  program.addCommand(daemonCommand(done));
  program.addCommand(vmCommand(done));
  program.addCommand(poolCommand(done));
  program.addCommand(webCommand(done));
  program.addHelpText(
    "after",
    "\nWithout --kernel, 'vireo run' boots the default Debian guest (fetched on first use) to a shell.\n" +
      "'vireo daemon' owns many VMs and serves a REST API on a Unix socket; 'vireo vm' drives it.\n" +
      "'vireo web' serves a page that runs the default guest in the browser itself (npm run build:web first).\n" +
      "'vireo COMMAND --help' lists a command's flags.",
  );
  routeErrors(program);
  return program;
}

/** Runs `vireo argv…` to its exit status; user errors are thrown as UserError. */
export async function runVireo(argv: readonly string[]): Promise<number> {
  let status = 0;
  const program = buildProgram((s) => {
    status = s;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof HelpShown) return e.status;
    if (e instanceof CommanderError) throw translate(e, program);
    throw e;
  }
  return status;
}
