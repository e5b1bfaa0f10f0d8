/** A riscv64 VM: the `virt` board on the interpreter engine, hot code translated to wasm unless `--engine interpreter`. */
import type { VirtioMmio } from "../devices/virtio/mmio.js";
import { InterpreterEngine, type RunResult } from "../engines/interpreter.js";
import { isElf, parseElf } from "../machine/loader/elf.js";
import { firmwareImage } from "../machine/loader/firmware.js";
import { flattenElf, isLinuxImage, type LinuxImage, parseLinuxImage } from "../machine/loader/linux-image.js";
import { describeNonCode } from "../machine/loader/sniff.js";
import { VirtBoard } from "../machine/riscv-virt/board.js";
import { bootLinux } from "../machine/riscv-virt/linux-boot.js";
import { VIRT_IRQ, VIRT_MAP } from "../machine/riscv-virt/memory-map.js";
import { formatMac } from "../net/mac.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives, VmHost } from "./host.js";
import { type ReservedMemory, reserveMemory } from "./prefault.js";
import {
  finishMigration,
  type IncomingMigration,
  type MigrationChannel,
  migrateOut,
  receivePasses,
} from "./riscv-migrate.js";
import { checkDrives, type RestoreSource, restoreRiscv, snapshotRiscv } from "./riscv-snapshot.js";
import type { VmSpec } from "./spec.js";
import { attachVirtio, type VirtioSetup } from "./virtio.js";
import { VmBase, type VmDevice, type VmExit, type VmStats } from "./vm.js";

/** The default kernel command line: the 16550 console, SBI early console. */
export const DEFAULT_CMDLINE_RISCV = "console=ttyS0 earlycon=sbi";

const EXCEPTIONS: Record<number, string> = {
  0: "fetch-misaligned",
  1: "fetch-access",
  2: "illegal-instruction",
  3: "breakpoint",
  4: "load-misaligned",
  5: "load-access",
  6: "store-misaligned",
  7: "store-access",
  8: "ecall-u",
  9: "ecall-s",
  11: "ecall-m",
  12: "fetch-page",
  13: "load-page",
  15: "store-page",
};
const INTERRUPTS: Record<number, string> = { 1: "ssi", 3: "msi", 5: "sti", 7: "mti", 9: "sei", 11: "mei" };

export class RiscvVm extends VmBase {
  /** The flattened device tree handed to a Linux boot (null for bare metal). */
  readonly deviceTree: Uint8Array | null;

  constructor(
    spec: VmSpec,
    readonly board: VirtBoard,
    readonly engine: InterpreterEngine,
    virtio: VirtioSetup,
    deviceTree: Uint8Array | null,
    host: VmHost,
    drives: OpenedDrives,
    reserved: ReservedMemory | null = null,
  ) {
    super(
      spec,
      {
        run: async () => exitOf(await engine.run(), board),
        pause: () => engine.pause(),
        resume: () => engine.resume(),
        halt: () => engine.stop(),
        requestPowerOff: () => {
          if (virtio.keyboard === null) return false;
          virtio.keyboard.pressCtrlAltDel();
          // A guest idling in WFI looks at the interrupt the press raised.
          engine.wake();
          return true;
        },
        uartInput: (bytes) => board.consoleInput(bytes),
        wake: () => engine.wake(),
        release: () => virtio.close(),
        stats: (seconds) => ({
          ...riscvStats(board, engine, virtio, seconds),
          ...(reserved === null ? {} : { reservedMemory: reserved }),
        }),
        devices: (): VmDevice[] => [
          { name: "uart0", kind: "uart16550", device: board.uart },
          { name: "clint", kind: "clint", device: board.clint },
          { name: "plic", kind: "plic", device: board.plic },
          { name: "rtc", kind: "goldfish-rtc", device: board.rtc },
          ...virtio.devices,
        ],
        snapshot: async (location, compression) => {
          const store = host.snapshots;
          if (store === undefined) throw new UserError("this host cannot store snapshots");
          const { files, info } = snapshotRiscv(board, spec, drives, compression);
          await store.write(location, files);
          return info;
        },
        migrate: (channel: MigrationChannel, options, control) =>
          migrateOut({ board, engine, spec, drives, ...control }, channel, options),
      },
      virtio.console,
    );
    this.deviceTree = deviceTree;
  }
}

/** Builds the VM `spec` describes; with `restore`, fills it from that snapshot instead of booting. */
export async function createRiscvVm(
  spec: VmSpec,
  host: VmHost,
  restore?: RestoreSource,
  incoming?: IncomingMigration,
): Promise<RiscvVm> {
  const { memory, cpus, boot } = spec;
  const kernel =
    restore === undefined && incoming === undefined
      ? host.readGuestFile(boot.kernel, "kernel", memory)
      : null;
  const board = new VirtBoard({
    memory,
    cpus,
    console: host.console,
    virtioRing: spec.virtioRing,
    clock: host.clock,
  });
  // An incoming migration's RAM arrives first; its drives are opened once the source let go of them.
  const arrived = incoming === undefined ? null : await receivePasses(board.cpu.ram, incoming.next);
  // Opened and locked before the devices: a drive another VM uses stops the VM before they are set up.
  const drives = await host.openDrives(spec.drives);
  // Devices go in before the device tree is built.
  const virtio = await attachVirtio(board, spec, host, drives);
  let dtb: Uint8Array | null = null;
  try {
    if (restore !== undefined) {
      checkDrives(restore, spec, drives);
      await restoreRiscv(board, restore);
    } else if (incoming !== undefined && arrived !== null) {
      await finishMigration(board, arrived, incoming.start, spec, drives, incoming.next);
    } else dtb = loadGuest(board, spec, host, kernel as Uint8Array);
  } catch (e) {
    await virtio.close();
    throw e;
  }
  const reserved = spec.memoryMode === "reserved" ? reserveMemory([board.cpu.ram], host.lockMemory) : null;
  // "auto" is the translator: it boots Debian with about a quarter less CPU than the interpreter and runs
  // the CPU benchmark 3–4× faster (docs/BENCHMARKS.md), and passes the same tests.
  if (spec.engine === "translate" || spec.engine === "auto") board.cpu.enableTranslation();
  const engine = new InterpreterEngine(board, {
    ...(spec.maxInstructions === undefined ? {} : { maxInstructions: spec.maxInstructions }),
    ...(host.cpuTurns === undefined ? {} : { turns: host.cpuTurns }),
  });
  return new RiscvVm(spec, board, engine, virtio, dtb, host, drives, reserved);
}

/** Puts the guest in RAM: a bare-metal program, or a Linux boot (whose device tree it returns). */
function loadGuest(board: VirtBoard, spec: VmSpec, host: VmHost, kernel: Uint8Array): Uint8Array | null {
  const { boot, memory } = spec;
  const firmware = boot.firmware ?? "builtin";
  if (firmware === "none") {
    if (isElf(kernel)) board.loadElf(parseElf(kernel, boot.kernel), boot.kernel);
    else {
      const looksLike = describeNonCode(kernel);
      if (looksLike !== null)
        throw new UserError(`${boot.kernel}: not a bare-metal program: it looks like ${looksLike}`);
      board.loadRaw(kernel, boot.kernel);
    }
    return null;
  }
  return bootLinux(board, {
    kernel: asLinuxImage(kernel, boot.kernel, memory),
    initrd: boot.initrd === undefined ? null : host.readGuestFile(boot.initrd, "initrd", memory),
    bootargs: boot.cmdline ?? DEFAULT_CMDLINE_RISCV,
    firmware:
      firmware === "builtin"
        ? null
        : firmwareImage(
            host.readGuestFile(firmware, "firmware", memory),
            firmware,
            VIRT_MAP.dram.base,
            memory,
          ),
  });
}

/** The kernel for a Linux boot: a RISC-V `Image` or ELF; say what it is instead when it is neither. */
function asLinuxImage(bytes: Uint8Array, path: string, ramSize: number): LinuxImage {
  if (isLinuxImage(bytes)) return parseLinuxImage(bytes, path);
  // parseElf rejects ELF files for other machines with a one-line reason.
  if (isElf(bytes)) return flattenElf(parseElf(bytes, path), VIRT_MAP.dram.base, ramSize, path);
  const looksLike = describeNonCode(bytes);
  if (looksLike !== null) throw new UserError(`${path}: not a RISC-V kernel: it looks like ${looksLike}`);
  throw new UserError(`${path}: not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56)`);
}

function exitOf(result: RunResult, board: VirtBoard): VmExit {
  if (result.reason !== "exit") return { reason: result.reason };
  return { reason: "exit", code: result.code, reboot: board.exit?.reason === "reboot" };
}

function byCount(counts: Iterable<[string, number]>): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1]);
}

function riscvStats(
  board: VirtBoard,
  engine: InterpreterEngine,
  virtio: VirtioSetup,
  seconds: number,
): VmStats {
  const traps: [string, number][] = [];
  const interrupts: [string, number][] = [];
  for (let cause = 0; cause < 32; cause++) {
    let exceptions = 0;
    let irqs = 0;
    for (const h of board.cpu.harts) {
      exceptions += h.trapCounts[cause] as number;
      irqs += h.trapCounts[32 + cause] as number;
    }
    if (exceptions > 0) traps.push([EXCEPTIONS[cause] ?? `cause${cause}`, exceptions]);
    if (irqs > 0) interrupts.push([INTERRUPTS[cause] ?? `irq${cause}`, irqs]);
  }
  const stats: VmStats = {
    arch: "riscv64",
    seconds,
    instructions: engine.instructions(),
    hypercalls: byCount(board.hypercalls.entries()),
    traps: byCount(traps),
    interrupts: byCount(interrupts),
    nics: virtio.nics.map((d) => ({ mac: formatMac(d.mac), counters: { ...d.stats } })),
    virtio: board.virtio.used().map((slot) => {
      const transport = board.virtio.at(slot) as VirtioMmio;
      return {
        slot,
        device: transport.device.name,
        gsi: VIRT_IRQ.VIRTIO_FIRST + slot,
        counters: { ...transport.counters },
      };
    }),
  };
  const balloon = board.balloon;
  if (balloon !== null) {
    const c = balloon.counters;
    stats.balloon = {
      target: balloon.target,
      actual: balloon.actual,
      inflated: balloon.inflatedPages,
      "peak-actual": c.peakActual,
      "peak-inflated": c.peakInflatedPages,
      resets: c.resets,
      ignored: c.ignoredPfns,
      "reclaimed-bytes": c.reclaimedBytes,
      reclaimer: balloon.reclaimerKind,
    };
  }
  const translation = board.cpu.translation;
  if (translation !== null) {
    const t = translation.stats;
    stats.translation = {
      blocks: t.blocks,
      "guest-insns": t.instructions,
      modules: t.modules,
      "wasm-bytes": t.wasmBytes,
      invalidations: t.invalidations,
      "compile-ms": Math.round(t.compileMs),
      "guest-code-bytes": t.guestBytes,
      // Compile cost per KiB of guest code translated (µs), the figure QEMU-style translators quote.
      "compile-us-per-kib": t.guestBytes === 0 ? 0 : Math.round((t.compileMs * 1000 * 1024) / t.guestBytes),
      "translated-retired": t.translatedRetired,
      "live-wasm-bytes": Math.round(t.liveWasmBytes),
      evictions: t.evictions,
    };
    stats.translationExits = byCount([...translation.exits.events]);
    stats.translationInterpreted = byCount([...translation.exits.interpreted]);
  }
  if (virtio.vsock !== null)
    stats.vsock = { cid: virtio.vsock.guestCid, counters: { ...virtio.vsock.stats } };
  if (virtio.keyboard !== null)
    stats.keyboard = { ...virtio.keyboard.stats, pending: virtio.keyboard.pendingEvents };
  return stats;
}
