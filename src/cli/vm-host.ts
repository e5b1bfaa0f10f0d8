/** The Node implementation of VmHost: files, locks, TAP, Unix sockets, /proc, the process's switches. */
import { readFileSync } from "node:fs";
import type { ByteSink } from "../devices/byte-sink.js";
import { type HostClock, platformClock } from "../devices/host-clock.js";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import { cryptoEntropy } from "../host/entropy.js";
import { hostPageReclaimer } from "../host/page-reclaimer.js";
import { TapBackend } from "../host/tap.js";
import { lockMemory } from "../hypervisor/libc.js";
import type { SwitchRegistry } from "../net/switch.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives, VmHost } from "../vm/host.js";
import type { DriveSpec } from "../vm/spec.js";
import { openDrives } from "./drive-files.js";
import { readGuestFile } from "./guest-file.js";
import { processSwitches } from "./net.js";
import { nodeSnapshotStore } from "./snapshot-store.js";
import { listenVsock } from "./vsock.js";

export interface NodeVmHostOptions {
  console: ByteSink;
  consoleSize?: { cols: number; rows: number } | null;
  /** How each drive is named in messages, by index (default "--drive"; the CLI's root disk differs). */
  driveFlags?: readonly string[];
  /** The switches `switch:NAME` NICs join (default: this process's). */
  switches?: SwitchRegistry;
  kvmDevice?: string;
  /** Where warnings go (default: stderr, as "vireo: warning: ..."). */
  warn?: (message: string) => void;
  /** Guest time (default: the process's monotonic and wall clocks). */
  clock?: HostClock;
}

/** MemAvailable from /proc/meminfo in bytes, or null when it cannot be read. */
function hostAvailableMemory(): number | null {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function nodeVmHost(options: NodeVmHostOptions): VmHost {
  const switches = options.switches ?? processSwitches;
  const host: VmHost = {
    console: options.console,
    clock: options.clock ?? platformClock,
    consoleSize: options.consoleSize ?? null,
    readGuestFile,
    async openDrives(drives: readonly DriveSpec[]): Promise<OpenedDrives> {
      const opened = await openDrives(
        drives.map((d, i) => ({
          file: d.path,
          readOnly: d.readOnly,
          id: d.id,
          flag: options.driveFlags?.[i] ?? "--drive",
        })),
        options.warn,
      );
      const backends = opened.drives.map((d) => d.backend);
      return {
        backends,
        close: () => opened.close(),
        handOver: async () => {
          await Promise.all(backends.map((b) => b.handOver()));
        },
        takeBack: () => backends.every((b) => b.takeBack()),
      };
    },
    entropy: cryptoEntropy,
    snapshots: nodeSnapshotStore(),
    pageReclaimer: hostPageReclaimer,
    netBackend(backend: string): NetBackend {
      const colon = backend.indexOf(":");
      const kind = backend.slice(0, colon);
      const name = backend.slice(colon + 1);
      if (kind === "switch") return switches.get(name).connect();
      try {
        return TapBackend.open(name);
      } catch (e) {
        throw new UserError(`--net tap:${name}: ${(e as Error).message}`);
      }
    },
    vsockBackend: listenVsock,
    availableMemory: hostAvailableMemory,
    lockMemory,
  };
  return options.kvmDevice === undefined ? host : { ...host, kvmDevice: options.kvmDevice };
}
