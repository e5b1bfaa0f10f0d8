/**
 * `--vsock-uds PATH` and `--nic INDEX=BACKEND`: other host backends for a VM restored, cloned or
 * migrated in (vm/backend-overrides.ts). Only the shape is checked here; the backend itself is checked
 * by the VmSpec schema with the rest of the spec, wherever the spec is made.
 */
import { resolve } from "node:path";
import { UserError } from "../util/errors.js";
import type { BackendOverrides } from "../vm/backend-overrides.js";
import type { FlagSpec, ParsedArgs } from "./flags.js";

export const BACKEND_FLAGS: FlagSpec = {
  "vsock-uds": {
    kind: "value",
    arg: "PATH",
    help: "the vsock device's host Unix socket, in place of the saved one",
  },
  nic: {
    kind: "repeatable",
    arg: "INDEX=BACKEND",
    help: "NIC INDEX (0 is the first) on switch:NAME or tap:IFNAME instead of its saved backend (repeatable)",
  },
};

/** The overrides the flags give (socket paths made absolute: a daemon binds them, not this process). */
export function backendOverridesFromFlags(args: ParsedArgs): BackendOverrides {
  const overrides: BackendOverrides = {};
  const uds = args.values.get("vsock-uds");
  if (uds !== undefined) {
    if (uds === "") throw new UserError("--vsock-uds needs a path");
    overrides.vsockUds = resolve(uds);
  }
  const nics: Record<string, string> = {};
  for (const text of args.repeated.get("nic") ?? []) {
    const m = /^(0|[1-9][0-9]{0,3})=(.+)$/.exec(text);
    if (m === null) throw new UserError(`--nic ${text}: expected INDEX=BACKEND, e.g. 0=switch:lan`);
    const [, index, backend] = m as unknown as [string, string, string];
    if (nics[index] !== undefined) throw new UserError(`--nic ${text}: NIC ${index} is given twice`);
    nics[index] = backend;
  }
  if (Object.keys(nics).length > 0) overrides.nics = nics;
  return overrides;
}
