/**
 * Flags on commander: each command lists its flags once as a FlagSpec; `addFlags` attaches them to a
 * commander Command (so `--help` is generated from the same list) and `parsedArgs` reads them back in
 * the plain shape the rest of the CLI works on. Bad flags are UserErrors: one `vireo: …` line, status 2.
 */
import { type Command, Option } from "commander";
import { UserError } from "../util/errors.js";

/** A flag takes a value, none, or a value and may be given repeatedly. */
export interface FlagDef {
  kind: "value" | "switch" | "repeatable";
  /** The value's placeholder in help ("FILE"); commander splits flags on `|` and `,`, so keep it plain. */
  arg?: string;
  help: string;
}
export type FlagSpec = Record<string, FlagDef>;

export interface ParsedArgs {
  values: Map<string, string>;
  switches: Set<string>;
  positional: string[];
  /** Values of "repeatable" flags, in command-line order (absent when not given). */
  repeated: Map<string, string[]>;
}

function attribute(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Whether switch `name` was given: commander keeps `--no-x` as x = false (x is true by default). */
function switchGiven(cmd: Command, name: string): boolean {
  return name.startsWith("no-")
    ? cmd.getOptionValue(attribute(name.slice(3))) === false
    : cmd.getOptionValue(attribute(name)) === true;
}

/**
 * Adds the flags to `cmd`. A value flag or switch given twice is an error rather than the last one
 * winning (a script that says `--memory` twice has a bug); an empty value is a missing one.
 */
export function addFlags(cmd: Command, spec: FlagSpec): Command {
  for (const [name, def] of Object.entries(spec)) {
    if (def.kind === "switch") {
      // Registered before commander's own listener, so it sees the value from before this occurrence.
      cmd.on(`option:${name}`, () => {
        if (switchGiven(cmd, name)) throw new UserError(`--${name} given twice`);
      });
      cmd.addOption(new Option(`--${name}`, def.help));
      continue;
    }
    const option = new Option(`--${name} <${def.arg ?? "VALUE"}>`, def.help);
    const nonEmpty = (value: string) => {
      if (value === "") throw new UserError(`--${name} needs a value`);
      return value;
    };
    if (def.kind === "repeatable") {
      option.argParser((value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        nonEmpty(value),
      ]);
    } else {
      option.argParser((value: string, previous: string | undefined) => {
        if (previous !== undefined) throw new UserError(`--${name} given twice`);
        return nonEmpty(value);
      });
    }
    cmd.addOption(option);
  }
  return cmd;
}

/** The flags of `spec` as parsed into `cmd`, and its operands. */
export function parsedArgs(cmd: Command, spec: FlagSpec): ParsedArgs {
  const parsed: ParsedArgs = {
    values: new Map(),
    switches: new Set(),
    positional: [...cmd.args],
    repeated: new Map(),
  };
  const opts = cmd.opts();
  for (const [name, def] of Object.entries(spec)) {
    if (def.kind === "switch") {
      if (switchGiven(cmd, name)) parsed.switches.add(name);
      continue;
    }
    const value: unknown = opts[attribute(name)];
    if (value === undefined) continue;
    if (def.kind === "repeatable") parsed.repeated.set(name, value as string[]);
    else parsed.values.set(name, value as string);
  }
  return parsed;
}

/**
 * A whole number flag in [min, max] (e.g. --cpus, --max-insns), written in decimal digits. Both failures
 * say the same range, so the message never disagrees with what is accepted.
 */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
    throw new RangeError(`parseCount: bad range ${min}..${max}`);
  }
  const range = `a whole number from ${min} to ${max}${max === Number.MAX_SAFE_INTEGER ? " (2^53 - 1)" : ""}`;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) throw new UserError(`--${flag} must be ${range}, got '${text}'`);
  return n;
}
