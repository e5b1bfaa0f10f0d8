import type { VirtioConsole } from "../devices/virtio/console/virtio-console.js";
import { InterpreterEngine, type RunResult } from "../engines/interpreter.js";
import { isElf, parseElf } from "../machine/loader/elf.js";
import { firmwareImage } from "../machine/loader/firmware.js";
import { flattenElf, isLinuxImage, type LinuxImage, parseLinuxImage } from "../machine/loader/linux-image.js";
import { describeNonCode } from "../machine/loader/sniff.js";
import { type GuestExit, VirtBoard } from "../machine/riscv-virt/board.js";
import { bootLinux } from "../machine/riscv-virt/linux-boot.js";
import { VIRT_MAP } from "../machine/riscv-virt/memory-map.js";
import { UserError } from "../util/errors.js";
import { parseSize } from "../util/size.js";
import { type ParsedArgs, parseArgs, parseCount } from "./args.js";
import { openDrives } from "./drive-files.js";
import { readGuestFile } from "./guest-file.js";
import { attachNet, checkNets, parseNet, printNetStats } from "./net.js";
import { writeOutputFile } from "./output-file.js";
import { printStats } from "./stats.js";
import { BufferedOutput } from "./terminal.js";
import { attachTerminal } from "./terminal-input.js";
import { attachVirtio, checkDrives, parseBalloon, parseDrive, parseVirtioRing } from "./virtio.js";
import { attachVsock, parseVsock, printVsockStats, type VsockSetup } from "./vsock.js";

const RUN_FLAGS = {
  arch: "value",
  bios: "value",
  kernel: "value",
  initrd: "value",
  append: "value",
  memory: "value",
  cpus: "value",
  "max-insns": "value",
  "dump-dtb": "value",
  engine: "value",
  "cpu-features": "value",
  stats: "switch",
  drive: "repeatable",
  rng: "switch",
  "virtio-console": "switch",
  balloon: "switch",
  "balloon-target": "value",
  "root-disk": "switch",
  net: "repeatable",
  vsock: "value",
  "virtio-ring": "value",
} as const;

/** Exit status when --max-insns ends the run (as timeout(1) does for a time limit). */
export const EXIT_LIMIT = 124;
/** The default kernel command line: the 16550 console, SBI early console. */
export const DEFAULT_APPEND = "console=ttyS0 earlycon=sbi";
const MiB = 2 ** 20;

export async function runCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, RUN_FLAGS, "run");
  if (args.positional.length > 0) throw new UserError(`unexpected argument '${args.positional[0]}'`);
  const arch = args.values.get("arch") ?? "riscv64";
  if (arch === "x86_64") {
    const { runX86 } = await import("./run-x86.js");
    return runX86(args);
  }
  if (arch !== "riscv64") throw new UserError(`--arch ${arch}: supported are riscv64 and x86_64`);
  const engine = args.values.get("engine") ?? "auto";
  if (engine !== "auto" && engine !== "interpreter") {
    throw new UserError(
      `--engine ${engine}: riscv64 guests run on the interpreter (--engine interpreter or auto)`,
    );
  }
  if (args.values.has("cpu-features")) throw new UserError("--cpu-features is for x86_64 guests on KVM");
  const bios = args.values.get("bios") ?? "builtin";
  const memoryText = args.values.get("memory") ?? "512M";
  const memory = parseSize(memoryText, "--memory");
  // The interpreter's RAM lives in one 32-bit wasm memory (4 GiB, less hart state): 3G keeps it clear.
  if (memory < MiB || memory > 3 * 2 ** 30 || memory % 4096 !== 0) {
    throw new UserError(`--memory ${memoryText}: riscv64 guests take from 1M to 3G, in multiples of 4K`);
  }
  const cpus = parseCount(args.values.get("cpus") ?? "1", "cpus", 1, 8);
  const maxText = args.values.get("max-insns");
  const maxInstructions =
    maxText === undefined ? undefined : parseCount(maxText, "max-insns", 1, Number.MAX_SAFE_INTEGER);
  const drives = (args.repeated.get("drive") ?? []).map(parseDrive);
  const wantRng = args.switches.has("rng");
  const wantConsole = args.switches.has("virtio-console");
  const nets = (args.repeated.get("net") ?? []).map(parseNet);
  checkNets(nets, 0);
  const balloon = parseBalloon(args, memory);
  const vsockText = args.values.get("vsock");
  const vsockSpec = vsockText === undefined ? null : parseVsock(vsockText);
  const otherDevices =
    (wantRng ? 1 : 0) +
    (wantConsole ? 1 : 0) +
    (balloon !== null ? 1 : 0) +
    nets.length +
    (vsockSpec !== null ? 1 : 0);
  checkDrives(drives, otherDevices);

  let kernelPath = args.values.get("kernel");
  let initrdPath = args.values.get("initrd");
  let append = args.values.get("append") ?? DEFAULT_APPEND;
  if (args.switches.has("root-disk")) {
    if (bios === "none") throw new UserError("--root-disk needs a Linux boot (--bios builtin or a firmware)");
    // The default image's ext4 disk, as /dev/vda: it must be the first drive the guest probes.
    const { prepareWritableRootDisk, withRootDisk } = await import("../images/riscv64.js");
    const root = await prepareWritableRootDisk({ quiet: false });
    if (kernelPath === undefined) {
      kernelPath = root.kernel;
      initrdPath ??= root.initrd;
    }
    drives.unshift({ file: root.disk, readOnly: false, id: "root", flag: "--root-disk" });
    append = withRootDisk(append);
    checkDrives(drives, otherDevices);
  }
  if (kernelPath === undefined) {
    if (bios === "none") throw new UserError("--bios none needs --kernel FILE (a bare-metal program)");
    if (initrdPath !== undefined) throw new UserError("--initrd needs --kernel");
    const { ensureRiscv64Image } = await import("../images/riscv64.js");
    const image = await ensureRiscv64Image({});
    kernelPath = image.kernel;
    initrdPath = image.initrd;
  }
  const kernel = readGuestFile(kernelPath, "kernel", memory);
  const output = new BufferedOutput(process.stdout);
  const board = new VirtBoard({ memory, cpus, console: output, virtioRing: parseVirtioRing(args) });
  // Opened and locked before the devices: a drive another VM uses stops the run before they are set up.
  const disks = await openDrives(drives);
  // Devices go in before the device tree is built; both consoles write to the same terminal.
  const virtio = attachVirtio(board, { drives: disks, rng: wantRng, console: wantConsole, balloon }, output);
  let net: ReturnType<typeof attachNet>;
  try {
    net = attachNet(board, nets);
  } catch (e) {
    await virtio.close();
    throw e;
  }
  // The vsock device goes last; with uds=PATH it listens there from now on.
  let vsock: VsockSetup | null = null;
  try {
    if (vsockSpec !== null) vsock = await attachVsock(board, vsockSpec);
  } catch (e) {
    net.close();
    await virtio.close();
    throw e;
  }
  try {
    if (!loadGuest(board, args, bios, kernel, kernelPath, initrdPath, append)) return 0;
    const stats = args.switches.has("stats");
    const status = await runGuest(board, output, virtio.console, maxInstructions, stats);
    if (stats) printNetStats(net.devices);
    if (stats && vsock !== null) printVsockStats(vsock.device);
    return status;
  } finally {
    net.close();
    await vsock?.close();
    await virtio.close();
  }
}

/** Puts the guest in RAM (bare metal or Linux boot); false when the run ends here (--dump-dtb). */
function loadGuest(
  board: VirtBoard,
  args: ParsedArgs,
  bios: string,
  kernel: Uint8Array,
  kernelPath: string,
  initrdPath: string | undefined,
  append: string,
): boolean {
  if (bios === "none") {
    for (const flag of ["initrd", "append", "dump-dtb"]) {
      if (args.values.has(flag))
        throw new UserError(`--${flag} needs a Linux boot (--bios builtin or a firmware)`);
    }
    if (isElf(kernel)) board.loadElf(parseElf(kernel, kernelPath), kernelPath);
    else {
      const looksLike = describeNonCode(kernel);
      if (looksLike !== null)
        throw new UserError(`${kernelPath}: not a bare-metal program: it looks like ${looksLike}`);
      board.loadRaw(kernel, kernelPath);
    }
    return true;
  }
  const dtb = bootLinux(board, {
    kernel: asLinuxImage(kernel, kernelPath, board.options.memory),
    initrd: initrdPath === undefined ? null : readGuestFile(initrdPath, "initrd", board.options.memory),
    bootargs: append,
    firmware: bios === "builtin" ? null : readFirmware(bios, board.options.memory),
  });
  const dumpPath = args.values.get("dump-dtb");
  if (dumpPath === undefined) return true;
  writeOutputFile(dumpPath, dtb, "--dump-dtb");
  return false;
}

/**
 * Runs the guest on the terminal. Output of the UART (ttyS0) and of the virtio console (hvc0) both go
 * to stdout; keyboard input goes to one of them: hvc0 when there is one, else ttyS0, and Ctrl-A c
 * switches between the two.
 */
async function runGuest(
  board: VirtBoard,
  output: BufferedOutput,
  hvc: VirtioConsole | null,
  maxInstructions: number | undefined,
  stats: boolean,
): Promise<number> {
  const engine = new InterpreterEngine(board, maxInstructions === undefined ? {} : { maxInstructions });
  let toHvc = hvc !== null;
  const terminal = attachTerminal(
    process.stdin,
    (bytes) => {
      if (toHvc && hvc !== null) hvc.receive(bytes);
      else board.consoleInput(bytes);
      engine.wake();
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
  const started = performance.now();
  let result: RunResult;
  try {
    result = await engine.run();
  } finally {
    process.stdout.off("resize", onResize);
    terminal.close();
    output.close();
  }
  if (stats) printStats(board, engine.instructions(), (performance.now() - started) / 1000);
  return exitStatus(result, board.exit);
}

function readFirmware(path: string, ramSize: number): Uint8Array {
  return firmwareImage(readGuestFile(path, "firmware", ramSize), path, VIRT_MAP.dram.base, ramSize);
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

function exitStatus(result: RunResult, exit: GuestExit | null): number {
  if (result.reason === "limit") {
    process.stderr.write("vireo: instruction limit reached\n");
    return EXIT_LIMIT;
  }
  if (result.reason === "stopped") {
    process.stderr.write("\nvireo: stopped from the host (Ctrl-A x)\n");
    return 0;
  }
  if (exit?.reason === "reboot") process.stderr.write("vireo: the guest asked for a reboot; stopping\n");
  if (result.code !== 0) process.stderr.write(`vireo: guest exited with code ${result.code}\n`);
  // Keep failures non-zero even when the code is a multiple of 256.
  return result.code === 0 ? 0 : result.code & 0xff || 1;
}
