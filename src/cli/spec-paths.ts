/**
 * A VmSpec's file paths made absolute: the daemon that boots the VM has a working directory of its
 * own, so a path is resolved where the user wrote it (the shell's directory, or the spec file's).
 */
import { isAbsolute, resolve } from "node:path";

/** Resolves, in place, every relative path in a spec (or a JSON object that may become one). */
export function absoluteSpecPaths(spec: Record<string, unknown>, base: string): void {
  const abs = (p: unknown) => (typeof p === "string" && p !== "" && !isAbsolute(p) ? resolve(base, p) : p);
  const boot = spec.boot as Record<string, unknown> | undefined;
  if (typeof boot === "object" && boot !== null) {
    for (const key of ["kernel", "initrd"]) if (key in boot) boot[key] = abs(boot[key]);
    if (boot.firmware !== "builtin" && boot.firmware !== "none" && "firmware" in boot) {
      boot.firmware = abs(boot.firmware);
    }
  }
  if (Array.isArray(spec.drives)) {
    for (const d of spec.drives) if (typeof d === "object" && d !== null) d.path = abs(d.path);
  }
  const vsock = spec.vsock as Record<string, unknown> | undefined;
  if (typeof vsock === "object" && vsock !== null && "uds" in vsock) vsock.uds = abs(vsock.uds);
}
