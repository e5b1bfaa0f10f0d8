/**
 * `vireo run --arch x86_64`: a Linux bzImage (or PVH ELF kernel) on the x86 microVM board under KVM,
 * with the same virtio devices as the RISC-V board (--drive, --rng, --virtio-console, --balloon, --net).
 */
import { readFileSync } from "node:fs";
import type { VirtioConsole } from "../devices/virtio/console/virtio-console.js";
import { KvmEngine, type KvmRunResult } from "../engines/kvm/engine.js";
import { parseCpuFeatures } from "../hypervisor/kvm/cpuid.js";
import { isElf } from "../machine/loader/elf.js";
import { X86MicroVm } from "../machine/x86-microvm/board.js";
import { parseBzImage } from "../machine/x86-microvm/bzimage.js";
import { VIRTIO_MMIO } from "../machine/x86-microvm/memory-map.js";
import { parsePvhKernel } from "../machine/x86-microvm/pvh.js";
import { UserError } from "../util/errors.js";
import { formatSize, parseSize } from "../util/size.js";
import { type ParsedArgs, parseCount } from "./args.js";
import { openDrives } from "./drive-files.js";
import { readGuestFile } from "./guest-file.js";
import { attachNet, checkNets, type NetSetup, parseNet, printNetStats } from "./net.js";
import { BufferedOutput } from "./terminal.js";
import { attachTerminal } from "./terminal-input.js";
import {
  attachVirtio,
  checkDrives,
  parseBalloon,
  parseDrive,
  parseVirtioRing,
  type VirtioSetup,
} from "./virtio.js";
import { defaultX86Guest } from "./x86-default.js";

/** Exit status when the guest dies (triple fault, KVM entry failure or internal error). */
export const EXIT_GUEST_CRASH = 3;
export const DEFAULT_APPEND_X86 = "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd";
/** No guest gets more than this, whatever the host has. */
const MEMORY_CAP = 1024 * 2 ** 30;

/** The flags an x86_64 run understands (the others are riscv64-only, or not wired to x86 yet). */
const X86_FLAGS = new Set([
  "arch",
  "engine",
  "kernel",
  "initrd",
  "append",
  "memory",
  "cpus",
  "cpu-features",
  "stats",
  "drive",
  "rng",
  "virtio-console",
  "balloon",
  "balloon-target",
  "net",
  "virtio-ring",
]);

/** MemAvailable from /proc/meminfo in bytes, or null when it cannot be read. */
function hostAvailableMemory(): number | null {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The kernel (a bzImage or a PVH ELF) and initrd, checked (readGuestFile), read and parsed. */
function readKernel(kernelPath: string, initrdPath: string | undefined, memory: number) {
  const kernelBytes = readGuestFile(kernelPath, "kernel", memory);
  const initrd = initrdPath === undefined ? null : readGuestFile(initrdPath, "initrd", memory);
  const image = isElf(kernelBytes)
    ? parsePvhKernel(kernelBytes, kernelPath)
    : parseBzImage(kernelBytes, kernelPath);
  return { image, initrd };
}

export async function runX86(args: ParsedArgs): Promise<number> {
  const given = [...args.values.keys(), ...args.switches, ...(args.repeated?.keys() ?? [])];
  const unsupported = given.find((flag) => !X86_FLAGS.has(flag));
  if (unsupported !== undefined)
    throw new UserError(`--${unsupported} is not supported with --arch x86_64 yet`);
  const engineName = args.values.get("engine") ?? "auto";
  if (engineName !== "kvm" && engineName !== "auto") {
    throw new UserError(`--engine ${engineName}: x86_64 guests run on KVM (--engine kvm or auto)`);
  }
  const memory = parseSize(args.values.get("memory") ?? "512M", "--memory");
  if (memory < 4 * 2 ** 20 || memory % 4096 !== 0) {
    throw new UserError("--memory must be at least 4M and a multiple of 4K");
  }
  const available = hostAvailableMemory();
  const limit = Math.min(MEMORY_CAP, available ?? MEMORY_CAP);
  if (memory > limit) {
    const why = available !== null && available < MEMORY_CAP ? "MemAvailable in /proc/meminfo" : "the limit";
    throw new UserError(
      `--memory ${formatSize(memory)} is more than this host can give (${formatSize(limit)}, ${why})`,
    );
  }
  const cpus = parseCount(args.values.get("cpus") ?? "1", "cpus", 1, 255);
  const featuresText = args.values.get("cpu-features");
  const removeCpuFeatures = featuresText === undefined ? [] : parseCpuFeatures(featuresText);
  const drives = (args.repeated.get("drive") ?? []).map(parseDrive);
  const wantRng = args.switches.has("rng");
  const wantConsole = args.switches.has("virtio-console");
  const nets = (args.repeated.get("net") ?? []).map(parseNet);
  checkNets(nets, 0);
  const balloon = parseBalloon(args, memory);
  const otherDevices = (wantRng ? 1 : 0) + (wantConsole ? 1 : 0) + (balloon !== null ? 1 : 0) + nets.length;
  checkDrives(drives, otherDevices, VIRTIO_MMIO.slots);

  let kernelPath = args.values.get("kernel");
  let initrdPath = args.values.get("initrd");
  if (kernelPath === undefined) {
    if (initrdPath !== undefined) throw new UserError("--initrd needs --kernel");
    ({ kernelPath, initrdPath } = await defaultX86Guest());
  }
  const createdAt = performance.timeOrigin + performance.now();
  const output = new BufferedOutput(process.stdout);
  // VIREO_KVM_DEVICE points at another device node (tests use it to check the no-KVM error path).
  const device = process.env.VIREO_KVM_DEVICE || undefined;
  // Opened and locked before anything else is read or built: a drive another VM uses stops the run first.
  const disks = await openDrives(drives);
  let board: X86MicroVm;
  let kernel: ReturnType<typeof readKernel>;
  try {
    kernel = readKernel(kernelPath, initrdPath, memory);
    const virtioRing = parseVirtioRing(args);
    board = X86MicroVm.create({ memory, cpus, console: output, removeCpuFeatures, device, virtioRing });
  } catch (e) {
    await disks.close();
    throw e;
  }
  const { image, initrd } = kernel;
  const cmdline = args.values.get("append") ?? DEFAULT_APPEND_X86;
  let result: KvmRunResult;
  let virtio: VirtioSetup | null = null;
  let net: NetSetup | null = null;
  try {
    // Devices go in before the kernel is loaded: the DSDT and the command line list them.
    virtio = attachVirtio(board, { drives: disks, rng: wantRng, console: wantConsole, balloon }, output);
    net = attachNet(board, nets);
    if ("entry" in image) board.loadPvh(image, initrd, cmdline);
    else board.loadLinux(image, initrd, cmdline);
    if (engineName === "auto") process.stderr.write(`vireo: engine kvm (${device ?? "/dev/kvm"})\n`);
    const engine = new KvmEngine(board);
    const started = performance.now();
    result = await runOnTerminal(board, engine, output, virtio.console);
    if (args.switches.has("stats")) {
      printKvmStats(board, engine, createdAt, (performance.now() - started) / 1000);
      printNetStats(net.devices);
    }
  } finally {
    net?.close();
    await (virtio ?? disks).close();
    board.close();
  }
  return exitStatus(result);
}

/**
 * Runs the guest with the terminal attached: keyboard input goes to hvc0 when there is a virtio console
 * (Ctrl-A c switches between hvc0 and ttyS0), else to the UART; both consoles write to stdout.
 */
async function runOnTerminal(
  board: X86MicroVm,
  engine: KvmEngine,
  output: BufferedOutput,
  hvc: VirtioConsole | null,
): Promise<KvmRunResult> {
  let toHvc = hvc !== null;
  const terminal = attachTerminal(
    process.stdin,
    (bytes) => {
      if (toHvc && hvc !== null) hvc.receive(bytes);
      else board.consoleInput(bytes);
    },
    () => engine.stop(),
    hvc === null
      ? undefined
      : () => {
          toHvc = !toHvc;
          output.flush();
          process.stderr.write(`\r\nvireo: keyboard input now goes to ${toHvc ? "hvc0" : "ttyS0"}\r\n`);
        },
  );
  const onResize = () => hvc?.resize(process.stdout.columns, process.stdout.rows);
  if (hvc !== null && process.stdout.isTTY) process.stdout.on("resize", onResize);
  try {
    return await engine.run();
  } finally {
    process.stdout.off("resize", onResize);
    terminal.close();
    output.close();
  }
}

function printKvmStats(board: X86MicroVm, engine: KvmEngine, createdAt: number, seconds: number): void {
  const counters = engine.counters();
  const sum = (f: (c: (typeof counters)[number]) => number) => counters.reduce((s, c) => s + f(c), 0);
  const firstExit = counters[0]?.firstExitTime ?? 0;
  const lines = [
    `seconds ${seconds.toFixed(3)}`,
    `exits ${sum((c) => c.exits)}`,
    `exits-forwarded ${sum((c) => c.forwarded)}`,
    `exits-local-pio ${sum((c) => c.localPio)}`,
    `exits-mmio ${sum((c) => c.mmio)}`,
    `first-exit-ms ${firstExit > 0 ? (firstExit - createdAt).toFixed(1) : "none"}`,
  ];
  if (board.virtio.used().length > 0) {
    lines.push(`virtio-interrupts ${board.irqfdResample ? "irqfd-resample" : "irq-line"}`);
  }
  for (const slot of board.virtio.used()) {
    const c = board.virtio.counters(slot.index);
    if (c === null) continue;
    lines.push(
      `virtio${slot.index} ${slot.transport.device.name} gsi=${slot.gsi} mmio-exits=${c.mmioExits} ` +
        `notify-exits=${c.notifyExits} notify-ioeventfd=${c.ioeventfd} irqfd=${c.irqfd} resamples=${c.resamples}`,
    );
  }
  if (board.rejectedMsrs.length > 0) {
    lines.push(`rejected-msrs ${board.rejectedMsrs.map((m) => `0x${m.toString(16)}`).join(" ")}`);
  }
  process.stderr.write(lines.map((l) => `stats: ${l}\n`).join(""));
}

function exitStatus(result: KvmRunResult): number {
  switch (result.reason) {
    case "stopped":
      process.stderr.write("\nvireo: stopped from the host (Ctrl-A x)\n");
      return 0;
    case "reboot":
      process.stderr.write("vireo: the guest asked for a reboot; stopping\n");
      return 0;
    case "poweroff":
      return 0;
    case "fatal":
      process.stderr.write(`vireo: vCPU ${result.vcpu}: ${result.exit}\n${result.dump}\n`);
      return EXIT_GUEST_CRASH;
  }
}
