/**
 * Where a VM's guest agent is reached: the spec's own vsock socket if it has one, else a vsock device
 * the daemon adds with a socket in a folder of its own (no path for the user to choose or clean up).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { hasAgent, type VmSpec } from "../vm/spec.js";

/** The CID a daemon-added vsock device gives its guest (the first one a guest may have). */
export const AGENT_GUEST_CID = 3;

const FOLDER_PREFIX = "vireo-agent-";

/** Whether `dir` is a folder a daemon made for agent sockets. */
function isAgentFolder(dir: string): boolean {
  return dirname(dir) === tmpdir() && basename(dir).startsWith(FOLDER_PREFIX);
}

export class AgentSockets {
  private dir: string | null = null;

  /** The folder, made on first use (mode 0700: the socket is root in the guest). */
  private folder(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), FOLDER_PREFIX));
    return this.dir;
  }

  /** The spec a run of the VM is built from, and where its agent is reached (null: no agent). */
  runSpec(spec: VmSpec): { spec: VmSpec; socket: string | null } {
    if (!hasAgent(spec)) return { spec, socket: null };
    const own = spec.vsock?.uds;
    // A socket a daemon added (this one's, or one before it: a snapshot keeps the run's spec) is
    // replaced by one of this daemon's, named after this VM (a clone or restore has a name of its own).
    if (own !== undefined && !isAgentFolder(dirname(own))) return { spec, socket: own };
    const socket = join(this.folder(), `${spec.name}.sock`);
    // `agent: true` said outright: the run's spec (which snapshots keep) has a vsock device of its own
    // now, which would otherwise mean "no agent unless asked".
    return {
      spec: { ...spec, agent: true, vsock: { cid: spec.vsock?.cid ?? AGENT_GUEST_CID, uds: socket } },
      socket,
    };
  }

  close(): void {
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
