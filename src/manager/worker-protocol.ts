/**
 * The messages between a WorkerVm (the daemon's thread) and the worker thread its VM runs in. Only
 * structured-clonable data crosses: devices go as name and kind (the device objects stay in the worker).
 */
import type { MessagePort } from "node:worker_threads";
import type { CompiledInterpreter } from "../cpu/riscv/interpreter/shared.js";
import type { Frame, StartHeader } from "../snapshot/migration-wire.js";
import type { VmSpec } from "../vm/spec.js";
import type {
  MigrateOptions,
  MigrationResult,
  SnapshotOptions,
  SnapshotResult,
  VmState,
  VmStats,
} from "../vm/vm.js";
import type { BalloonFigures, BalloonPoll } from "./balloon.js";
import type { Placement } from "./scheduler/vm-scheduler.js";

/** What a test hook makes the worker do after the guest's first 64 console bytes (VIREO_TEST_HOOKS). */
export type WorkerFault =
  /** The console sink throws inside the guest's write: the VM's run fails, the worker reports it. */
  | "console"
  /** An exception nobody catches, outside the run loop: the worker thread dies of it. */
  | "uncaught"
  /** process.exit(3) in the worker: the thread ends without a word. */
  | "exit";

/**
 * A worker's workerData. A worker starts before it knows its VM (a warm pool starts them ahead), so
 * the spec comes later, in the "build" message.
 */
export interface WorkerInit {
  /** Marks the worker as a VM worker, so that the entry module does nothing when merely imported. */
  vireoVmWorker: true;
  /** The daemon's compiled interpreter, so that the worker neither generates nor compiles its own. */
  interpreter: CompiledInterpreter;
}

/**
 * The worker's ends of the frame links (src/net/frame-link.ts) of a spec's `switch:` NICs, in NIC
 * order: the switch stays in the daemon's thread, which attaches a port of it to the other end.
 */
export type WorkerLinks = { nic: number; backend: string; port: MessagePort }[];

export type ToWorker =
  /** The first message, and only once: build this VM, answered by "ready" or "build-failed". */
  | {
      t: "build";
      spec: VmSpec;
      fault: WorkerFault | null;
      links: WorkerLinks;
      /** The CPUs the thread is confined to, and (shared) that its engine takes turns from the daemon. */
      placement: Placement | null;
      /** Continue the guest of this snapshot (`spec` is the snapshot's, overrides applied). */
      restore?: WorkerRestore;
      /** Receive a live migration (START accepted): its frames follow as "migrate-frame" messages. */
      incoming?: { start: StartHeader };
    }
  /** A turn of the shared pool: the engine may run this long (answers a "turn" message). */
  | { t: "grant"; sliceMs: number; seq: number }
  /** The shared pool's CPUs changed (a dedicated VM came or went). */
  | { t: "affinity"; cpus: number[] }
  | { t: "start" | "pause" | "resume" | "kill" | "switch" }
  /** The board's power-off request (Vm.requestPowerOff), sent by stop() before its grace period. */
  | { t: "poweroff" }
  | { t: "input"; bytes: Uint8Array }
  | { t: "resize"; cols: number; rows: number }
  | { t: "stats"; id: number }
  /** Sets the balloon's target (null: only reads it); answered by a "balloon" message with this id. */
  | { t: "balloon"; id: number; targetBytes: number | null }
  /** The balloon's figures and guest statistics (and a request for fresh ones): a "balloon-poll" answer. */
  | { t: "balloon-poll"; id: number }
  /** Vm.saveSnapshot in the worker; answered by a "snapshot" message with this id. */
  | { t: "snapshot"; id: number; path: string; options: SnapshotOptions }
  /** The next frame of an incoming migration (null: the stream ended; `error`: it broke). */
  | { t: "migrate-frame"; frame: Frame | null; error: string | null }
  /** Vm.migrate in the worker, to the target at `to` (it connects); answered by "migrate-out". */
  | { t: "migrate-out"; id: number; to: string; options: MigrateOptions };

export type FromWorker =
  | {
      t: "ready";
      devices: { name: string; kind: string }[];
      hasHvc: boolean;
      stats: VmStats;
      /** The worker's kernel thread id (what /proc/PID/task/TID shows), where libc can say. */
      thread: number | null;
    }
  | { t: "build-failed"; message: string; user: boolean }
  | { t: "console"; bytes: Uint8Array }
  | { t: "state"; state: VmState; stats: VmStats }
  | { t: "stats"; stats: VmStats; id: number | null }
  | { t: "log"; message: string }
  /** figures null: the VM has no balloon. */
  | { t: "balloon"; id: number; figures: BalloonFigures | null }
  /** poll null: the VM has no balloon. */
  | { t: "balloon-poll"; id: number; poll: BalloonPoll | null }
  /** A shared VM's engine asks for a turn; `usedMs`: it just ran one that long (CPU time). */
  | { t: "turn"; usedMs: number | null; seq: number }
  /** It no longer wants turn `seq` (it stops or pauses while waiting): forget it, or take it back. */
  | { t: "turn-cancel"; seq: number }
  /** Its turn is over and it has no work (or pauses or ends). */
  | { t: "turn-end"; usedMs: number }
  /** How a "snapshot" request went: the result, or why it failed (`user`: a UserError). */
  | {
      t: "snapshot";
      id: number;
      result: SnapshotResult | null;
      error: { message: string; user: boolean } | null;
    }
  | MigrateOutAnswer;

/** How a "migrate-out" request went. */
export type MigrateOutAnswer = {
  t: "migrate-out";
  id: number;
  result: MigrationResult | null;
  error: { message: string; user: boolean } | null;
};

/** A build from a snapshot: where it is, and whether the VM is a clone (see RestoreSource.clone). */
export interface WorkerRestore {
  path: string;
  clone: boolean;
}
