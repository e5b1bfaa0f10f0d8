/**
 * Pre-copy live migration of an x86_64 (KVM) VM, on the riscv64 protocol and frames (riscv-migrate.ts):
 * START, memory passes while the guest runs — the first every non-zero page, each later one the pages
 * KVM's dirty log (dirty-log.ts) says the guest wrote meanwhile — until what is left fits the downtime
 * target; then pause, the last pass, the x86 state (x86-snapshot.ts sections), COMPLETE.
 *
 * KVM logs only the guest's writes. Virtio devices write guest RAM from this process, so when the VM has
 * any, the last pass (the guest paused, the devices idle) sends every non-zero page instead of the dirty
 * ones: correct, at the cost of a longer downtime. The KVM engine has no instruction budget, so there is
 * no auto-converge either: a guest that dirties faster than the passes go is paused after maxPasses.
 */
import type { KvmEngine } from "../engines/kvm/engine.js";
import { DirtyLog } from "../hypervisor/kvm/dirty-log.js";
import type { X86MicroVm } from "../machine/x86-microvm/board.js";
import { nonZeroPages } from "../snapshot/memory-file.js";
import type { OpenedDrives } from "./host.js";
import { migratePrecopy } from "./precopy.js";
import type { VmSpec } from "./spec.js";
import type { VirtioSetup } from "./virtio.js";
import type { MigrateOptions, MigrationChannel, MigrationResult } from "./vm.js";
import { ramView, stateBodyX86 } from "./x86-snapshot.js";

export interface X86MigrationSource {
  board: X86MicroVm;
  engine: KvmEngine;
  spec: VmSpec;
  drives: OpenedDrives;
  virtio: VirtioSetup;
  pause(): void;
  resume(): void;
}

/**
 * Migrates the running guest of `source` to the target at the other end of `channel` (precopy.ts);
 * resolves once it runs there. On failure the guest runs on here, ABANDON goes to the target, and it
 * rejects.
 */
export function migrateOutX86(
  source: X86MigrationSource,
  channel: MigrationChannel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const { board, engine, spec, drives } = source;
  let log: DirtyLog | null = null;
  const dirtyLog = () => {
    log ??= new DirtyLog(board.vm, board.ram);
    return log;
  };
  const ram = ramView(board);
  return migratePrecopy(
    {
      arch: "x86_64",
      spec,
      drives,
      ram: { bytes: ram, base: 0 },
      // The vCPU threads write RAM while a pass reads it: a page written again after its copy is dirty in
      // KVM's log and goes again in the next pass.
      concurrentWriters: true,
      startDirty: () => dirtyLog().start(),
      takeDirty: () => dirtyLog().take(),
      finalDirty: () => dirtyLog().take(),
      // Pages the devices wrote are in no log: with devices, everything that is not zero goes again.
      lastPass: (dirty) => (source.virtio.devices.length > 0 ? nonZeroPages(ram) : dirty),
      state: () => stateBodyX86(board, engine, spec, drives),
      pause: () => source.pause(),
      resume: () => source.resume(),
      strongestThrottle: () => 0,
      cleanUp: () => {
        log?.release();
        log = null;
      },
    },
    channel,
    options,
  );
}
