/**
 * Host backends a restored, cloned or migrated-in VM gets in place of the saved ones: the vsock host
 * socket and NIC backends are linked by name, and the names the saved VM held may be taken (its source
 * still runs on this machine) or mean nothing here. NICs are named by index, as in the spec's `nics`
 * array: a NIC spec has no id of its own. The result is checked by validateVmSpec like any spec.
 */
import { UserError } from "../util/errors.js";

export interface BackendOverrides {
  /** The vsock device's host Unix socket (the VM must have a vsock device). */
  vsockUds?: string;
  /** NIC backends (`switch:NAME` or `tap:IFNAME`) by NIC index ("0", "1", …). */
  nics?: Record<string, string>;
}

/**
 * The saved spec's `nics` and `vsock` with `overrides` applied (unvalidated: the caller validates the
 * whole spec). An index or vsock the saved VM lacks is a UserError that says so.
 */
export function overrideBackends(
  stored: { nics?: unknown; vsock?: unknown },
  overrides: BackendOverrides,
  what: string,
): { nics: Record<string, unknown>[]; vsock?: Record<string, unknown> } {
  const nics = ((stored.nics as Record<string, unknown>[] | undefined) ?? []).map((n) => ({ ...n }));
  for (const [key, backend] of Object.entries(overrides.nics ?? {})) {
    const nic = /^(0|[1-9][0-9]{0,3})$/.test(key) ? nics[Number(key)] : undefined;
    if (nic === undefined) {
      throw new UserError(
        `${what}: the VM has no NIC ${key} (NICs are named by index, 0 to ${nics.length - 1}; it has ${nics.length})`,
      );
    }
    nic.backend = backend;
  }
  const vsock = stored.vsock as Record<string, unknown> | undefined;
  if (overrides.vsockUds === undefined) return { nics, ...(vsock === undefined ? {} : { vsock }) };
  if (vsock === undefined) throw new UserError(`${what}: the VM has no vsock device to give a host socket`);
  return { nics, vsock: { ...vsock, uds: overrides.vsockUds } };
}
