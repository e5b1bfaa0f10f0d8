/** createVm: one entry point for every board and engine. */
import type { VmHost } from "./host.js";
import type { IncomingMigration } from "./riscv-migrate.js";
import type { RestoreSource } from "./riscv-snapshot.js";
import { type VmSpec, validateVmSpec } from "./spec.js";
import type { Vm } from "./vm.js";

export interface CreateOptions {
  /** Continue the guest of this snapshot (see restore.ts) instead of booting. */
  restore?: RestoreSource;
  /** Receive the guest of a live migration (START already accepted) instead of booting. */
  incoming?: IncomingMigration;
}

/**
 * Validates the spec, then builds the VM it describes on the host's backends (riscv64: the virt board
 * on the interpreter; x86_64: the microVM board on KVM), ready to start. Whatever was opened is released
 * again when building fails.
 */
export async function createVm(spec: VmSpec, host: VmHost, options: CreateOptions = {}): Promise<Vm> {
  const valid = validateVmSpec(spec);
  if (valid.arch === "riscv64") {
    const { createRiscvVm } = await import("./riscv.js");
    return createRiscvVm(valid, host, options.restore, options.incoming);
  }
  // Loaded only for x86 guests: the KVM engine needs Node (worker threads, koffi).
  const { createX86Vm } = await import("./x86.js");
  return createX86Vm(valid, host, options.restore, options.incoming);
}
