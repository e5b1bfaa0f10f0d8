/**
 * The messages between a WorkerVm (the daemon's thread) and the worker thread its VM runs in. Only
 * structured-clonable data crosses: devices go as name and kind (the device objects stay in the worker).
 */
import type { VmSpec } from "../vm/spec.js";
import type { VmState, VmStats } from "../vm/vm.js";
import type { BalloonFigures } from "./balloon.js";

/** What a test hook makes the worker do after the guest's first 64 console bytes (VIREO_TEST_HOOKS). */
export type WorkerFault =
  /** The console sink throws inside the guest's write: the VM's run fails, the worker reports it. */
  | "console"
  /** An exception nobody catches, outside the run loop: the worker thread dies of it. */
  | "uncaught"
  /** process.exit(3) in the worker: the thread ends without a word. */
  | "exit";

export interface WorkerInit {
  /** Marks the worker as a VM worker, so that the entry module does nothing when merely imported. */
  vireoVmWorker: true;
  spec: VmSpec;
  fault: WorkerFault | null;
}

export type ToWorker =
  | { t: "start" | "pause" | "resume" | "kill" | "switch" }
  | { t: "input"; bytes: Uint8Array }
  | { t: "resize"; cols: number; rows: number }
  | { t: "stats"; id: number }
  /** Sets the balloon's target (null: only reads it); answered by a "balloon" message with this id. */
  | { t: "balloon"; id: number; targetBytes: number | null };

export type FromWorker =
  | { t: "ready"; devices: { name: string; kind: string }[]; hasHvc: boolean; stats: VmStats }
  | { t: "build-failed"; message: string; user: boolean }
  | { t: "console"; bytes: Uint8Array }
  | { t: "state"; state: VmState; stats: VmStats }
  | { t: "stats"; stats: VmStats; id: number | null }
  /** figures null: the VM has no balloon. */
  | { t: "balloon"; id: number; figures: BalloonFigures | null }
  | { t: "log"; message: string };
