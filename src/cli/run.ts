import { readFileSync, writeFileSync } from "node:fs";
import { InterpreterEngine, type RunResult } from "../engines/interpreter.js";
import { isElf, parseElf } from "../machine/loader/elf.js";
import { isLinuxImage, type LinuxImage, parseLinuxImage } from "../machine/loader/linux-image.js";
import { type GuestExit, VirtBoard } from "../machine/riscv-virt/board.js";
import { bootLinux } from "../machine/riscv-virt/linux-boot.js";
import { UserError } from "../util/errors.js";
import { parseSize } from "../util/size.js";
import { parseArgs, parseCount } from "./args.js";
import { printStats } from "./stats.js";
import { BufferedOutput } from "./terminal.js";
import { attachTerminal } from "./terminal-input.js";

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
  stats: "switch",
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
  if (arch !== "riscv64") throw new UserError(`--arch ${arch}: only riscv64 is supported so far`);
  const bios = args.values.get("bios") ?? "builtin";
  const memory = parseSize(args.values.get("memory") ?? "512M", "--memory");
  if (memory < MiB || memory % 4096 !== 0)
    throw new UserError("--memory must be at least 1M and a multiple of 4K");
  if (memory > 3 * 2 ** 30) throw new UserError("--memory above 3G is not supported by the interpreter");
  const cpus = parseCount(args.values.get("cpus") ?? "1", "cpus", 1, 8);
  const maxText = args.values.get("max-insns");
  const maxInstructions = maxText === undefined ? undefined : parseCount(maxText, "max-insns", 1, 2 ** 53);

  let kernelPath = args.values.get("kernel");
  let initrdPath = args.values.get("initrd");
  if (kernelPath === undefined) {
    if (bios === "none") throw new UserError("--bios none needs --kernel FILE (a bare-metal program)");
    if (initrdPath !== undefined) throw new UserError("--initrd needs --kernel");
    const { ensureRiscv64Image } = await import("../images/riscv64.js");
    const image = await ensureRiscv64Image({});
    kernelPath = image.kernel;
    initrdPath = image.initrd;
  }
  const output = new BufferedOutput(process.stdout);
  const board = new VirtBoard({ memory, cpus, console: output });
  const kernel = readFile(kernelPath, "kernel");

  if (bios === "none") {
    for (const flag of ["initrd", "append", "dump-dtb"]) {
      if (args.values.has(flag))
        throw new UserError(`--${flag} needs a Linux boot (--bios builtin or a firmware)`);
    }
    if (isElf(kernel)) board.loadElf(parseElf(kernel, kernelPath), kernelPath);
    else board.loadRaw(kernel, kernelPath);
  } else {
    const dtb = bootLinux(board, {
      kernel: asLinuxImage(kernel, kernelPath),
      initrd: initrdPath === undefined ? null : readFile(initrdPath, "initrd"),
      bootargs: args.values.get("append") ?? DEFAULT_APPEND,
      firmware: bios === "builtin" ? null : readFile(bios, "firmware"),
    });
    const dumpPath = args.values.get("dump-dtb");
    if (dumpPath !== undefined) {
      writeFileSync(dumpPath, dtb);
      return 0;
    }
  }

  const engine = new InterpreterEngine(board, maxInstructions === undefined ? {} : { maxInstructions });
  const terminal = attachTerminal(
    process.stdin,
    (bytes) => {
      board.consoleInput(bytes);
      engine.wake();
    },
    () => engine.stop(),
  );
  const started = performance.now();
  let result: RunResult;
  try {
    result = await engine.run();
  } finally {
    terminal.close();
    output.flush();
  }
  if (args.switches.has("stats"))
    printStats(board, engine.instructions(), (performance.now() - started) / 1000);
  return exitStatus(result, board.exit);
}

function readFile(path: string, what: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (bytes.length === 0) throw new UserError(`${what} '${path}' is empty`);
  return bytes;
}

/** The kernel for a Linux boot must be a RISC-V `Image`; say what it is instead when it is not. */
function asLinuxImage(bytes: Uint8Array, path: string): LinuxImage {
  if (isLinuxImage(bytes)) return parseLinuxImage(bytes, path);
  if (isElf(bytes)) {
    throw new UserError(`${path}: an ELF file, not a Linux Image; run bare-metal ELFs with --bios none`);
  }
  const bzImage = bytes.length > 0x206 && String.fromCharCode(...bytes.subarray(0x202, 0x206)) === "HdrS";
  if (bzImage) throw new UserError(`${path}: an x86 bzImage, not a RISC-V kernel`);
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
