import { TAP_NAME } from "../host/tap.js";
import { formatMac, isUnicastMac, parseMac } from "../net/mac.js";
import { SwitchRegistry } from "../net/switch.js";
import { UserError } from "../util/errors.js";
import { nicProblems } from "../vm/spec.js";

/** One `--net switch[:NAME][,mac=..]` or `--net tap:IFNAME[,mac=..]`. */
export type NetSpec =
  | { kind: "switch"; name: string; mac: Uint8Array | null }
  | { kind: "tap"; name: string; mac: Uint8Array | null };

const SWITCH_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
export const DEFAULT_SWITCH = "default";

/** The process's named switches: every VM of this process that says `switch:NAME` joins the same one. */
export const processSwitches = new SwitchRegistry();

export function parseNet(text: string): NetSpec {
  const [backend = "", ...options] = text.split(",");
  let mac: Uint8Array | null = null;
  for (const option of options) {
    const eq = option.indexOf("=");
    const key = eq < 0 ? option : option.slice(0, eq);
    if (key !== "mac") throw new UserError(`--net ${text}: unknown option '${key}' (mac)`);
    if (mac !== null) throw new UserError(`--net ${text}: mac given twice`);
    const parsed = parseMac(option.slice(eq + 1));
    if (eq < 0 || parsed === null)
      throw new UserError(`--net ${text}: mac must be six hex pairs like 52:54:00:12:34:56`);
    if (!isUnicastMac(parsed))
      throw new UserError(`--net ${text}: mac must be a unicast address, not all zero`);
    mac = parsed;
  }
  const colon = backend.indexOf(":");
  const kind = colon < 0 ? backend : backend.slice(0, colon);
  const name = colon < 0 ? "" : backend.slice(colon + 1);
  if (kind === "switch") {
    const n = colon < 0 ? DEFAULT_SWITCH : name;
    if (!SWITCH_NAME.test(n))
      throw new UserError(`--net ${text}: switch name must be 1 to 32 letters, digits, '_', '.' or '-'`);
    return { kind: "switch", name: n, mac };
  }
  if (kind === "tap") {
    if (!TAP_NAME.test(name))
      throw new UserError(
        `--net ${text}: tap:IFNAME needs an interface name of 1 to 15 letters, digits, '_', '.' or '-'`,
      );
    return { kind: "tap", name, mac };
  }
  throw new UserError(`--net ${text}: expected switch[:NAME] or tap:IFNAME`);
}

/** Checks the NICs of one VM together (the spec's rules: no TAP and no MAC address twice). */
export function checkNets(specs: NetSpec[], vm: number): void {
  const nics = specs.map((s) => ({
    backend: `${s.kind}:${s.name}`,
    ...(s.mac === null ? {} : { mac: formatMac(s.mac) }),
  }));
  const first = nicProblems(nics, vm)[0];
  if (first !== undefined) throw new UserError(`--net: ${first.message}`);
}
