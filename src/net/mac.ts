/** Ethernet MAC addresses as six bytes: parsing, printing, and the default address of a NIC. */

/** Parses "52:54:00:12:34:56" (or with '-'); null if it is not six hex pairs. */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return null;
  return Uint8Array.from(parts, (p) => Number.parseInt(p, 16));
}

export function formatMac(mac: ArrayLike<number>): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Whether an address can be a NIC's own: unicast (group bit clear) and not all zero. */
export function isUnicastMac(mac: ArrayLike<number>): boolean {
  return mac.length === 6 && ((mac[0] as number) & 1) === 0 && Array.from(mac).some((b) => b !== 0);
}

/**
 * The default address of NIC `nic` of VM `vm` in this process: 52:54:00:76:VM:NIC (the locally
 * administered 52:54:00 prefix QEMU also uses; 0x76 is 'v'). Deterministic, and distinct for up to 256
 * VMs with 256 NICs each.
 */
export function defaultMac(vm: number, nic: number): Uint8Array {
  if (!Number.isInteger(vm) || !Number.isInteger(nic) || vm < 0 || vm > 255 || nic < 0 || nic > 255) {
    throw new RangeError(`default MAC: VM ${vm} and NIC ${nic} must be 0..255`);
  }
  return Uint8Array.from([0x52, 0x54, 0x00, 0x76, vm, nic]);
}
