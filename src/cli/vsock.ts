import { type Stats, statSync } from "node:fs";
import { dirname } from "node:path";
import { MAX_GUEST_CID, MIN_GUEST_CID } from "../devices/virtio/vsock/protocol.js";
import { socketPathProblem, UdsVsockBackend } from "../host/vsock-uds.js";
import { UserError } from "../util/errors.js";
import { describeFsError } from "./fs-errors.js";

/** `--vsock cid=N[,uds=PATH]`. */
export interface VsockSpec {
  cid: number;
  /** The Unix socket host clients connect to (guest connections to port P go to PATH_P), or null. */
  uds: string | null;
}

export const DEFAULT_GUEST_CID = 3;

/** Parses a --vsock value: comma-separated KEY=VALUE options (",," is a literal comma, as in --drive). */
export function parseVsock(text: string): VsockSpec {
  const options = new Map<string, string>();
  for (const part of text.replaceAll(",,", "\0").split(",")) {
    const option = part.replaceAll("\0", ",");
    const eq = option.indexOf("=");
    if (eq <= 0) throw new UserError(`--vsock ${text}: '${option}' is not KEY=VALUE`);
    const key = option.slice(0, eq);
    if (key !== "cid" && key !== "uds")
      throw new UserError(`--vsock ${text}: unknown option '${key}' (cid, uds)`);
    if (options.has(key)) throw new UserError(`--vsock ${text}: '${key}' given twice`);
    options.set(key, option.slice(eq + 1));
  }
  const cidText = options.get("cid");
  let cid = DEFAULT_GUEST_CID;
  if (cidText !== undefined) {
    cid = /^[0-9]{1,10}$/.test(cidText) ? Number(cidText) : -1;
    if (cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
      throw new UserError(`--vsock ${text}: cid must be a number from ${MIN_GUEST_CID} to ${MAX_GUEST_CID}`);
    }
  }
  const uds = options.get("uds");
  if (uds === "") throw new UserError(`--vsock ${text}: uds needs a path`);
  const problem = uds === undefined ? null : socketPathProblem(uds);
  if (problem !== null) throw new UserError(`--vsock: uds path too long: ${problem}`);
  return { cid, uds: uds ?? null };
}

/** bind() reports a missing directory as EACCES; say what is really wrong before it is tried. */
function checkSocketDirectory(path: string): void {
  const dir = dirname(path);
  let stats: Stats;
  try {
    stats = statSync(dir);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    const why = missing ? `no such directory '${dir}'` : `directory '${dir}': ${describeFsError(e)}`;
    throw new UserError(`--vsock: cannot listen on '${path}': ${why}`);
  }
  if (!stats.isDirectory()) {
    throw new UserError(`--vsock: cannot listen on '${path}': '${dir}' is not a directory`);
  }
}

/** A vsock backend listening on `uds`; a missing directory or a failed bind is a UserError naming it. */
export async function listenVsock(uds: string): Promise<UdsVsockBackend> {
  checkSocketDirectory(uds);
  try {
    return await UdsVsockBackend.listen(uds);
  } catch (e) {
    throw new UserError(`--vsock: cannot listen on '${uds}': ${describeFsError(e)}`);
  }
}
