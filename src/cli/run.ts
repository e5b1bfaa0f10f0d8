import { readFileSync } from "node:fs";
import { InterpreterEngine, type RunResult } from "../engines/interpreter.js";
import { isElf, parseElf } from "../machine/loader/elf.js";
import { VirtBoard } from "../machine/riscv-virt/board.js";
import { UserError } from "../util/errors.js";
import { parseSize } from "../util/size.js";
import { parseArgs, parseCount } from "./args.js";
import { BufferedOutput } from "./terminal.js";

const RUN_FLAGS = {
  arch: "value",
  bios: "value",
  kernel: "value",
  memory: "value",
  cpus: "value",
  "max-insns": "value",
  stats: "switch",
} as const;

/** Exit status when --max-insns ends the run (as timeout(1) does for a time limit). */
export const EXIT_LIMIT = 124;

export async function runCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, RUN_FLAGS, "run");
  if (args.positional.length > 0) throw new UserError(`unexpected argument '${args.positional[0]}'`);
  const arch = args.values.get("arch") ?? "riscv64";
  if (arch !== "riscv64") throw new UserError(`--arch ${arch}: only riscv64 is supported so far`);
  const bios = args.values.get("bios") ?? "none";
  if (bios !== "none") throw new UserError(`--bios ${bios}: only --bios none is supported so far`);
  const kernelPath = args.values.get("kernel");
  if (kernelPath === undefined) throw new UserError("--kernel FILE is required");
  const memory = parseSize(args.values.get("memory") ?? "64M", "--memory");
  if (memory < 1 << 20 || memory % 4096 !== 0) {
    throw new UserError("--memory must be at least 1M and a multiple of 4K");
  }
  if (memory > 3 * 2 ** 30) throw new UserError("--memory above 3G is not supported by the interpreter");
  const cpus = parseCount(args.values.get("cpus") ?? "1", "cpus", 1, 8);
  const maxText = args.values.get("max-insns");
  const maxInstructions = maxText === undefined ? undefined : parseCount(maxText, "max-insns", 1, 2 ** 53);

  const kernel = readKernel(kernelPath);
  const output = new BufferedOutput(process.stdout);
  const board = new VirtBoard({ memory, cpus, console: output });
  if (isElf(kernel)) board.loadElf(parseElf(kernel, kernelPath), kernelPath);
  else board.loadRaw(kernel, kernelPath);

  const engine = new InterpreterEngine(board, maxInstructions === undefined ? {} : { maxInstructions });
  const started = performance.now();
  const result = await engine.run();
  const seconds = (performance.now() - started) / 1000;
  output.flush();
  if (args.switches.has("stats")) printStats(engine.instructions(), seconds);
  return exitStatus(result);
}

function readKernel(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read kernel '${path}': ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (bytes.length === 0) throw new UserError(`kernel '${path}' is empty`);
  return bytes;
}

function printStats(instructions: number, seconds: number): void {
  const mips = seconds > 0 ? instructions / seconds / 1e6 : 0;
  process.stderr.write(
    `stats: instructions ${instructions}\nstats: seconds ${seconds.toFixed(3)}\nstats: mips ${mips.toFixed(1)}\n`,
  );
}

function exitStatus(result: RunResult): number {
  if (result.reason === "limit") {
    process.stderr.write("vireo: instruction limit reached\n");
    return EXIT_LIMIT;
  }
  if (result.code !== 0) process.stderr.write(`vireo: guest exited with code ${result.code}\n`);
  // Keep failures non-zero even when the code is a multiple of 256.
  return result.code === 0 ? 0 : result.code & 0xff || 1;
}
