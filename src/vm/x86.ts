/** An x86_64 VM: the microVM board under KVM. */
import { KvmEngine, type KvmRunResult, type VcpuPlacement } from "../engines/kvm/engine.js";
import { isElf } from "../machine/loader/elf.js";
import { X86MicroVm } from "../machine/x86-microvm/board.js";
import { parseBzImage } from "../machine/x86-microvm/bzimage.js";
import { parsePvhKernel } from "../machine/x86-microvm/pvh.js";
import { formatMac } from "../net/mac.js";
import type { SnapshotBody } from "../snapshot/state-file.js";
import { UserError } from "../util/errors.js";
import { formatSize } from "../util/size.js";
import type { OpenedDrives, VmHost } from "./host.js";
import { type ReservedMemory, reserveMemory } from "./prefault.js";
import {
  awaitComplete,
  checkIncomingDrives,
  type IncomingMigration,
  receivePasses,
} from "./riscv-migrate.js";
import { checkDrives, type RestoreSource } from "./riscv-snapshot.js";
import { type VmSpec, VmSpecError, X86_MEMORY } from "./spec.js";
import { attachVirtio, type VirtioSetup } from "./virtio.js";
import { VmBase, type VmDevice, type VmExit, type VmStats } from "./vm.js";
import { migrateOutX86 } from "./x86-migrate.js";
import { checkSectionsX86, ramView, restoreX86, snapshotX86 } from "./x86-snapshot.js";

export const DEFAULT_CMDLINE_X86 = "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd";

export class X86Vm extends VmBase {
  constructor(
    spec: VmSpec,
    readonly board: X86MicroVm,
    readonly engine: KvmEngine,
    virtio: VirtioSetup,
    createdAt: number,
    reserved: ReservedMemory | null,
    host: VmHost,
    drives: OpenedDrives,
  ) {
    super(
      spec,
      {
        run: async (): Promise<VmExit> => exitOf(await engine.run()),
        pause: () => engine.pause(),
        resume: () => engine.resume(),
        halt: () => engine.stop(),
        // Firecracker's SendCtrlAltDel: Linux's keyboard driver hands it to init (ctrl_alt_del).
        requestPowerOff: () => {
          board.i8042.pressCtrlAltDel();
          return true;
        },
        uartInput: (bytes) => board.consoleInput(bytes),
        // vCPUs run on their own threads; input reaches them through the devices' interrupts.
        wake: () => {},
        release: async () => {
          await virtio.close();
          board.close();
        },
        stats: (seconds) => ({
          ...x86Stats(board, engine, virtio, createdAt, seconds),
          ...(reserved === null ? {} : { reservedMemory: reserved }),
        }),
        devices: (): VmDevice[] => [
          { name: "uart0", kind: "uart16550", device: board.uart },
          { name: "i8042", kind: "i8042", device: board.i8042 },
          ...virtio.devices,
        ],
        snapshot: async (location, compression) => {
          const store = host.snapshots;
          if (store === undefined) throw new UserError("this host cannot store snapshots");
          const { files, info } = snapshotX86(board, engine, spec, drives, compression);
          await store.write(location, files);
          return info;
        },
        migrate: (channel, options, control) =>
          migrateOutX86({ board, engine, spec, drives, virtio, ...control }, channel, options),
      },
      virtio.console,
    );
  }

  /** Moves the vCPU threads (the daemon's shared CPUs changed). */
  placeVcpus(placement: VcpuPlacement): void {
    this.engine.place(placement);
  }

  /** The vCPU threads' kernel ids, and what could not be applied of their placement. */
  vcpuThreads(): { threads: number[]; errors: string[] } {
    return { threads: this.engine.threadIds(), errors: [...this.engine.placementErrors] };
  }
}

/**
 * Builds the VM `spec` describes; with `restore`, fills it from that snapshot, with `incoming`, from a
 * live migration (START already accepted), instead of booting.
 */
export async function createX86Vm(
  spec: VmSpec,
  host: VmHost,
  restore?: RestoreSource,
  incoming?: IncomingMigration,
): Promise<X86Vm> {
  const { memory, cpus, boot } = spec;
  const available = host.availableMemory();
  const limit = Math.min(X86_MEMORY.max, available ?? X86_MEMORY.max);
  if (memory > limit) {
    const why =
      available !== null && available < X86_MEMORY.max ? "MemAvailable in /proc/meminfo" : "the limit";
    throw new VmSpecError([
      {
        path: "/memory",
        message: `is more than this host can give (${formatSize(limit)}, ${why})`,
      },
    ]);
  }
  const createdAt = performance.timeOrigin + performance.now();
  const build = () =>
    X86MicroVm.create({
      memory,
      cpus,
      console: host.console,
      removeCpuFeatures: spec.removeCpuFeatures ?? [],
      device: host.kvmDevice,
      virtioRing: spec.virtioRing,
    });
  let board: X86MicroVm;
  let kernel: ReturnType<typeof readKernel> | null = null;
  let drives: OpenedDrives;
  let arrived: SnapshotBody | null = null;
  if (incoming !== undefined) {
    // An incoming migration's RAM arrives first; its drives are opened once the source let go of them.
    board = build();
    try {
      arrived = await receivePasses({ bytes: ramView(board), base: 0 }, incoming.next, "x86_64");
      drives = await host.openDrives(spec.drives);
    } catch (e) {
      board.close();
      throw e;
    }
  } else {
    // Opened and locked before anything else is read or built: a drive another VM uses stops it first.
    drives = await host.openDrives(spec.drives);
    try {
      kernel = restore === undefined ? readKernel(spec, host) : null;
      board = build();
    } catch (e) {
      await drives.close();
      throw e;
    }
  }
  let virtio: VirtioSetup;
  try {
    // Devices go in before the kernel is loaded: the DSDT and the command line list them.
    virtio = await attachVirtio(board, spec, host, drives);
  } catch (e) {
    board.close();
    throw e;
  }
  try {
    const cmdline = boot.cmdline ?? DEFAULT_CMDLINE_X86;
    const reserved = spec.memoryMode === "reserved" ? reserveMemory(board.ram.chunks, host.lockMemory) : null;
    let vcpuStates: Awaited<ReturnType<typeof restoreX86>> | undefined;
    if (restore !== undefined) {
      checkDrives(restore, spec, drives);
      vcpuStates = await restoreX86(board, virtio, restore);
    } else if (incoming !== undefined && arrived !== null) {
      checkIncomingDrives(incoming.start, spec, drives);
      vcpuStates = checkSectionsX86(board, arrived, "migration state")(virtio, false);
      await awaitComplete(incoming.next);
    } else if (kernel !== null) {
      const { image, initrd } = kernel;
      if ("entry" in image) board.loadPvh(image, initrd, cmdline);
      else board.loadLinux(image, initrd, cmdline);
    }
    const engine = new KvmEngine(board, {
      ...(host.kvmPlacement === undefined ? {} : { placement: host.kvmPlacement }),
      ...(vcpuStates === undefined ? {} : { restore: vcpuStates }),
    });
    return new X86Vm(spec, board, engine, virtio, createdAt, reserved, host, drives);
  } catch (e) {
    await virtio.close();
    board.close();
    throw e;
  }
}

/** The kernel (a bzImage or a PVH ELF) and initrd, read and parsed. */
function readKernel(spec: VmSpec, host: VmHost) {
  const { boot, memory } = spec;
  const kernelBytes = host.readGuestFile(boot.kernel, "kernel", memory);
  const initrd = boot.initrd === undefined ? null : host.readGuestFile(boot.initrd, "initrd", memory);
  const image = isElf(kernelBytes)
    ? parsePvhKernel(kernelBytes, boot.kernel)
    : parseBzImage(kernelBytes, boot.kernel);
  return { image, initrd };
}

function exitOf(result: KvmRunResult): VmExit {
  return result;
}

function x86Stats(
  board: X86MicroVm,
  engine: KvmEngine,
  virtio: VirtioSetup,
  createdAt: number,
  seconds: number,
): VmStats {
  const counters = engine.counters();
  const sum = (f: (c: (typeof counters)[number]) => number) => counters.reduce((s, c) => s + f(c), 0);
  const firstExit = counters[0]?.firstExitTime ?? 0;
  const stats: VmStats = {
    arch: "x86_64",
    seconds,
    exits: {
      total: sum((c) => c.exits),
      forwarded: sum((c) => c.forwarded),
      localPio: sum((c) => c.localPio),
      mmio: sum((c) => c.mmio),
      firstExitMs: firstExit > 0 ? firstExit - createdAt : null,
    },
    nics: virtio.nics.map((d) => ({ mac: formatMac(d.mac), counters: { ...d.stats } })),
    virtio: [],
    rejectedMsrs: [...board.rejectedMsrs],
  };
  if (virtio.vsock !== null)
    stats.vsock = { cid: virtio.vsock.guestCid, counters: { ...virtio.vsock.stats } };
  if (board.virtio.used().length > 0) {
    stats.virtioInterrupts = board.irqfdResample ? "irqfd-resample" : "irq-line";
  }
  for (const slot of board.virtio.used()) {
    const c = board.virtio.counters(slot.index);
    if (c === null) continue;
    stats.virtio?.push({
      slot: slot.index,
      device: slot.transport.device.name,
      gsi: slot.gsi,
      counters: {
        "mmio-exits": c.mmioExits,
        "notify-exits": c.notifyExits,
        "notify-ioeventfd": c.ioeventfd,
        irqfd: c.irqfd,
        resamples: c.resamples,
      },
    });
  }
  return stats;
}
