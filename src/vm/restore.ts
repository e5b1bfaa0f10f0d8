/**
 * Opening a snapshot for restore: its state file is read and checked whole (magic, format version, arch,
 * CRC-64, every section's shape), the VmSpec it stores is validated with overrides applied (a new name,
 * other disk paths, another vsock socket or NIC backends), and the memory file is left to stream into the new VM's RAM.
 */
import { decodeMemoryHeader } from "../snapshot/memory-file.js";
import { decodeState } from "../snapshot/state-file.js";
import { isSingleFile, MEMORY_FILE, STATE_FILE } from "../snapshot/store.js";

/** How messages name a snapshot's memory: its file in a directory, or the single file. */
const memoryName = (location: string) => (isSingleFile(location) ? location : `${location}/${MEMORY_FILE}`);

import { UserError } from "../util/errors.js";
import { type BackendOverrides, overrideBackends } from "./backend-overrides.js";
import { createVm } from "./create.js";
import type { VmHost } from "./host.js";
import type { RestoreSource } from "./riscv-snapshot.js";
import { type VmSpec, validateVmSpec } from "./spec.js";
import type { Vm } from "./vm.js";

export interface RestoreOverrides extends BackendOverrides {
  /** The restored VM's name (default: the snapshot's). */
  name?: string;
  /** Other image files for drives, by drive id: they must have the snapshot's size. */
  drives?: Record<string, string>;
  /**
   * A clone of the saved VM rather than the VM itself: these MAC addresses for its NICs (in order) and
   * this vsock CID (see RestoreSource.clone).
   */
  clone?: { macs: string[]; vsockCid: number | null };
}

/** Reads and checks a snapshot's state; the VM spec to create (overrides applied) and the source. */
export async function openSnapshot(
  location: string,
  host: VmHost,
  overrides: RestoreOverrides = {},
): Promise<{ spec: VmSpec; source: RestoreSource }> {
  const store = host.snapshots;
  if (store === undefined) throw new UserError("this host cannot read snapshots");
  const read = await store.read(
    location,
    (header) => decodeMemoryHeader(header, memoryName(location)).compression,
  );
  const what = isSingleFile(location) ? location : `${location}/${STATE_FILE}`;
  const { arch, body } = decodeState(read.state, what);
  if (arch !== "riscv64" && arch !== "x86_64")
    throw new UserError(`${what}: a snapshot of an ${arch} VM; only riscv64 and x86_64 ones can be restored`);
  const stored = body.spec as Record<string, unknown>;
  if (stored.arch !== arch)
    throw new UserError(`${what}: its VM spec is for ${String(stored.arch)}, the header says ${arch}`);
  const drives = (stored.drives as { id?: unknown; path?: unknown }[] | undefined) ?? [];
  for (const id of Object.keys(overrides.drives ?? {})) {
    if (!drives.some((d) => d.id === id)) throw new UserError(`${what}: the snapshot has no drive ${id}`);
  }
  const clone = overrides.clone;
  const nics = (stored.nics as Record<string, unknown>[] | undefined) ?? [];
  const vsock = stored.vsock as Record<string, unknown> | undefined;
  const cloned = {
    nics: clone === undefined ? nics : nics.map((n, i) => ({ ...n, mac: clone.macs[i] ?? n.mac })),
    // A clone's vsock gets no host socket unless one is given: the saved VM's would be taken.
    vsock:
      clone === undefined || vsock === undefined || clone.vsockCid === null ? vsock : { cid: clone.vsockCid },
  };
  const spec = validateVmSpec({
    ...stored,
    ...(overrides.name === undefined ? {} : { name: overrides.name }),
    drives: drives.map((d) => ({ ...d, path: overrides.drives?.[d.id as string] ?? d.path })),
    ...overrideBackends(cloned, overrides, what),
  });
  return {
    spec,
    source: {
      what: location,
      body,
      memoryHeader: decodeMemoryHeader(read.memoryHeader, memoryName(location)),
      memoryPayload: read.memoryPayload,
      clone: clone !== undefined,
    },
  };
}

/** A VM that continues the guest saved in `location`, ready to start (in the created state). */
export async function restoreVm(
  location: string,
  host: VmHost,
  overrides: RestoreOverrides = {},
): Promise<Vm> {
  const { spec, source } = await openSnapshot(location, host, overrides);
  return createVm(spec, host, { restore: source });
}
