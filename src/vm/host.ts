/**
 * What a VM needs of the host it runs on, injected so that src/vm/ itself uses no Node API: the Node
 * implementation is `nodeVmHost()` (src/cli/vm-host.ts); a browser worker or a test can bring its own.
 */
import type { ByteSink } from "../devices/byte-sink.js";
import type { HostClock } from "../devices/host-clock.js";
import type { PageReclaimer } from "../devices/virtio/balloon/reclaimer.js";
import type { BlockBackend } from "../devices/virtio/blk/backend.js";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import type { EntropySource } from "../devices/virtio/rng/virtio-rng.js";
import type { VsockBackend } from "../devices/virtio/vsock/backend.js";
import type { TurnGate } from "../engines/interpreter.js";
import type { VcpuPlacement } from "../engines/kvm/engine.js";
import type { SnapshotStore } from "../snapshot/store.js";
import type { DriveSpec } from "./spec.js";

/** A spec's drives, opened (and locked against other VMs) in order; `close` releases them all. */
export interface OpenedDrives {
  readonly backends: readonly BlockBackend[];
  close(): Promise<void>;
  /**
   * Live migration: waits for the I/O under way, makes it durable and drops the locks so that a target
   * on this machine can open the images; absent where the host cannot.
   */
  handOver?(): Promise<void>;
  /** The migration failed after handOver: takes the locks back; false when another process has one. */
  takeBack?(): boolean;
}

export interface VmHost {
  /** Where the guest's console output goes (the UART and the virtio console alike). */
  readonly console: ByteSink;
  /** Guest time: the riscv64 board's timers and RTC read this clock. */
  readonly clock: HostClock;
  /** The terminal's size for the virtio console, when there is a terminal. */
  readonly consoleSize?: { cols: number; rows: number } | null;
  /** The bytes of a guest file (kernel, initrd, firmware); refuses one larger than `limit` bytes. */
  readGuestFile(path: string, what: "kernel" | "initrd" | "firmware", limit: number): Uint8Array;
  /** Opens and locks the drives' image files; a failure closes what was opened and says which. */
  openDrives(drives: readonly DriveSpec[]): Promise<OpenedDrives>;
  readonly entropy: EntropySource;
  /** Gives the host the memory behind ballooned pages of `ram` back (or only counts them). */
  pageReclaimer(ram: Uint8Array): PageReclaimer;
  /** A NIC's backend: "switch:NAME" (a port of this host's switch of that name) or "tap:IFNAME". */
  netBackend(backend: string): NetBackend;
  /** A vsock backend listening on the Unix socket `uds` (guest connections to port P go to uds_P). */
  vsockBackend(uds: string): Promise<VsockBackend>;
  /** Bytes of memory the host can give a KVM guest now, or null when unknown. */
  availableMemory(): number | null;
  /**
   * Locks guest RAM into host memory (reserved memory: mlock); throws why not (the host's limit, no
   * privilege). Absent: reserved memory is pre-faulted only.
   */
  lockMemory?(bytes: Uint8Array): void;
  /** The KVM device node (default /dev/kvm). */
  readonly kvmDevice?: string;
  /**
   * riscv64: the shared CPU pool's turns for this VM (manager/scheduler/cpu-pool.ts); absent, the
   * engine takes its turns by itself.
   */
  readonly cpuTurns?: TurnGate;
  /** x86_64: where the daemon's scheduler puts the vCPU threads (absent: wherever the kernel likes). */
  readonly kvmPlacement?: VcpuPlacement;
  /** Where snapshots are written and read (absent: this host cannot snapshot or restore). */
  readonly snapshots?: SnapshotStore;
}
