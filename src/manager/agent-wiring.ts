/**
 * Where a VM's guest agent is reached: the spec's own vsock socket if it has one, else a vsock device
 * the daemon adds with a socket in a folder of its own (no path for the user to choose or clean up).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasAgent, type VmSpec } from "../vm/spec.js";

/** The CID a daemon-added vsock device gives its guest (the first one a guest may have). */
export const AGENT_GUEST_CID = 3;

export class AgentSockets {
  private dir: string | null = null;

  /** The folder, made on first use (mode 0700: the socket is root in the guest). */
  private folder(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), "vireo-agent-"));
    return this.dir;
  }

  /** The spec a run of the VM is built from, and where its agent is reached (null: no agent). */
  runSpec(spec: VmSpec): { spec: VmSpec; socket: string | null } {
    if (!hasAgent(spec)) return { spec, socket: null };
    const own = spec.vsock?.uds;
    if (own !== undefined) return { spec, socket: own };
    const socket = join(this.folder(), `${spec.name}.sock`);
    return { spec: { ...spec, vsock: { cid: spec.vsock?.cid ?? AGENT_GUEST_CID, uds: socket } }, socket };
  }

  close(): void {
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
