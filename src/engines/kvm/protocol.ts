/**
 * What the main thread and the vCPU workers share: SharedArrayBuffer layouts and the messages a worker
 * posts. No FFI here (types only).
 *
 * Forwarding an exit: the worker leaves the exit details in the kvm_run page (which the main thread also
 * maps), sets STATE = PENDING and waits; the main thread handles it (reading/writing the PIO or MMIO data
 * in kvm_run directly), sets STATE = DONE and notifies. Only the worker moves STATE to PENDING and only the
 * main thread moves it to DONE, so neither side can miss a wake-up.
 */
import type { MessagePort } from "node:worker_threads";
import type { VcpuStateBytes, VcpuStateCaps } from "../../hypervisor/kvm/vcpu-state.js";

/** Int32 words of a vCPU's control block. */
export const CTL = {
  /** IDLE / PENDING / DONE, see `STATE`. */
  state: 0,
  /** 0 starting, 1 in the run loop, 2 left the run loop (no more KVM_RUN from this thread). */
  loop: 1,
  /** Set by the main thread once it will not signal the thread again: the worker may then end. */
  release: 2,
  /** Set by the main thread when every vCPU is ready: the worker may enter KVM_RUN. */
  go: 3,
  /** 1 while the worker is parked for a pause (outside KVM_RUN, no forwarded exit pending). */
  parked: 4,
  /** 1 while a state request (on the worker's MessagePort) waits for the parked worker to answer it. */
  request: 5,
} as const;

export const STATE = { IDLE: 0, PENDING: 1, DONE: 2 } as const;
export const LOOP = { STARTING: 0, RUNNING: 1, EXITED: 2 } as const;

/** Byte offset of the BigInt64 slot holding the worker thread's pthread_t. */
export const CTL_THREAD_OFFSET = 32;
/** Byte offset of the Float64 counters (see `COUNTER`). */
export const CTL_COUNTERS_OFFSET = 48;
export const COUNTER = {
  /** Every return from KVM_RUN. */
  exits: 0,
  /** Exits handed to the main thread. */
  forwarded: 1,
  /** Port I/O exits answered in the worker (ports no device claims). */
  localPio: 2,
  /** performance.timeOrigin + now() of the first exit (ms), for start-up latency. */
  firstExitTime: 3,
  /** The same just before the first KVM_RUN. */
  firstRunTime: 4,
  /** KVM_EXIT_MMIO exits (all forwarded; an ioeventfd doorbell never gets here). */
  mmio: 5,
  /** The thread's kernel id (for affinity and nice set from the main thread). */
  tid: 6,
} as const;
export const CTL_BYTES = CTL_COUNTERS_OFFSET + 8 * 8;

/**
 * The VM-wide block: a stop flag, a pause flag (workers park while it is set; a stop clears it so that a
 * parked worker wakes), then a bitmap of the ports whose I/O goes to the main thread.
 */
export const SHARED = { stop: 0, pause: 1 } as const;
export const SHARED_PORT_BITMAP_OFFSET = 64;
export const SHARED_BYTES = SHARED_PORT_BITMAP_OFFSET + 65536 / 8;

export interface WorkerConfig {
  vcpu: number;
  fd: number;
  runAddress: bigint;
  runSize: number;
  control: SharedArrayBuffer;
  shared: SharedArrayBuffer;
  /** Requests to a parked worker and their answers (see VcpuRequest), read with receiveMessageOnPort. */
  requests: MessagePort;
  /** State to write into the vCPU before its first KVM_RUN (a restored VM). */
  restore?: VcpuStateBytes;
}

/** What the main thread asks of a parked vCPU thread (vCPU ioctls belong on the vCPU's thread). */
export type VcpuRequest = { type: "read"; caps: VcpuStateCaps };
export type VcpuReply = { type: "state"; state: VcpuStateBytes } | { type: "error"; message: string };

/** Why a vCPU left its run loop on its own (a stop request needs no message). */
export type WorkerReport =
  | { type: "event"; vcpu: number; event: "poweroff" | "reboot" }
  | { type: "fatal"; vcpu: number; exit: string; message: string };
