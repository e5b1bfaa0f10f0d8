import { UserError } from "../util/errors.js";

/** A command's flags: name → whether it takes a value, none, or a value and may be given repeatedly. */
export type FlagSpec = Record<string, "value" | "switch" | "repeatable">;

export interface ParsedArgs {
  values: Map<string, string>;
  switches: Set<string>;
  positional: string[];
  /** Values of "repeatable" flags, in command-line order (absent when not given). */
  repeated: Map<string, string[]>;
}

/**
 * Parses `--name value`, `--name=value` and `--switch`. Unknown flags, missing values and repeated flags
 * (other than "repeatable" ones) are user errors, reported as one line.
 */
export function parseArgs(argv: readonly string[], spec: FlagSpec, command: string): ParsedArgs {
  const parsed: ParsedArgs = { values: new Map(), switches: new Set(), positional: [], repeated: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      parsed.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined) throw new UserError(`unknown option --${name} for 'vireo ${command}'`);
    if (parsed.values.has(name) || parsed.switches.has(name)) throw new UserError(`--${name} given twice`);
    if (kind === "switch") {
      if (eq >= 0) throw new UserError(`--${name} takes no value`);
      parsed.switches.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || value === "") throw new UserError(`--${name} needs a value`);
    if (kind === "repeatable") {
      const list = parsed.repeated.get(name);
      if (list === undefined) parsed.repeated.set(name, [value]);
      else list.push(value);
    } else parsed.values.set(name, value);
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
