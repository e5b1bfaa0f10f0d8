/**
 * `vireo run`'s body (the command and its flags are in run.ts): flags → VmSpec → createVm on the Node
 * host → the terminal attached → start → wait → --stats → exit status.
 */

import { UserError } from "../util/errors.js";
import { createVm } from "../vm/create.js";
import { restoreVm } from "../vm/restore.js";
import type { RiscvVm } from "../vm/riscv.js";
import type { Vm, VmExit } from "../vm/vm.js";
import { BACKEND_FLAGS, backendOverridesFromFlags } from "./backend-flags.js";
import type { ParsedArgs } from "./flags.js";
import { writeOutputFile } from "./output-file.js";
import { RESTORE_FLAGS } from "./run.js";
import { asFlagError, runSpecFromFlags } from "./run-spec.js";
import { absoluteSpecPaths } from "./spec-paths.js";
import { printStats } from "./stats.js";
import { BufferedOutput } from "./terminal.js";
import { attachTerminal } from "./terminal-input.js";
import { nodeVmHost } from "./vm-host.js";

/** Exit status when --max-insns ends the run (as timeout(1) does for a time limit). */
export const EXIT_LIMIT = 124;
/** Exit status when an x86 guest dies (triple fault, KVM entry failure or internal error). */
export const EXIT_GUEST_CRASH = 3;

export async function runCommand(args: ParsedArgs): Promise<number> {
  const restore = args.values.get("restore");
  if (restore !== undefined) return restoreCommand(restore, args);
  for (const flag of Object.keys(BACKEND_FLAGS)) {
    if (args.values.has(flag) || args.repeated.has(flag))
      throw new UserError(`--${flag} only goes with --restore (a new VM takes --vsock and --net)`);
  }
  const { spec, driveFlags } = await runSpecFromFlags(args);
  // A snapshot stores the spec: its paths must still mean the same files from another directory.
  if (args.values.has("snapshot-dir"))
    absoluteSpecPaths(spec as unknown as Record<string, unknown>, process.cwd());
  const arch = spec.arch;
  const output = new BufferedOutput(process.stdout);
  const tty = process.stdout.isTTY === true;
  // VIREO_KVM_DEVICE points at another device node (tests use it to check the no-KVM error path).
  const kvmDevice = process.env.VIREO_KVM_DEVICE || undefined;
  const host = nodeVmHost({
    console: output,
    consoleSize: tty ? { cols: process.stdout.columns, rows: process.stdout.rows } : null,
    driveFlags,
    ...(kvmDevice === undefined ? {} : { kvmDevice }),
  });
  let vm: Vm;
  try {
    vm = await createVm(spec, host);
  } catch (e) {
    throw asFlagError(e, args);
  }
  const dumpPath = args.values.get("dump-dtb");
  if (dumpPath !== undefined) {
    vm.kill();
    await vm.wait();
    writeOutputFile(dumpPath, (vm as RiscvVm).deviceTree as Uint8Array, "--dump-dtb");
    return 0;
  }
  if (arch === "x86_64" && spec.engine === "auto") {
    process.stderr.write(`vireo: engine kvm (${kvmDevice ?? "/dev/kvm"})\n`);
  }
  const exit = await runOnTerminal(vm, output, spec.console, snapshotter(vm, args, output));
  if (args.switches.has("stats")) printStats(vm.stats());
  return exitStatus(exit);
}

/** `vireo run --restore DIR`: the VM and its spec come from the snapshot. */
async function restoreCommand(dir: string, args: ParsedArgs): Promise<number> {
  for (const flag of [...args.values.keys(), ...args.switches, ...args.repeated.keys()]) {
    if (!RESTORE_FLAGS.has(flag))
      throw new UserError(`--${flag} cannot go with --restore (the snapshot holds the VM)`);
  }
  const output = new BufferedOutput(process.stdout);
  const tty = process.stdout.isTTY === true;
  const host = nodeVmHost({
    console: output,
    consoleSize: tty ? { cols: process.stdout.columns, rows: process.stdout.rows } : null,
  });
  const started = performance.now();
  const vm = await restoreVm(dir, host, backendOverridesFromFlags(args));
  process.stderr.write(`vireo: restored ${dir} in ${Math.round(performance.now() - started)} ms\n`);
  const exit = await runOnTerminal(vm, output, vm.spec.console, snapshotter(vm, args, output));
  if (args.switches.has("stats")) printStats(vm.stats());
  return exitStatus(exit);
}

/** What Ctrl-A s and SIGUSR1 do: save a snapshot into --snapshot-dir (or say that there is none). */
function snapshotter(vm: Vm, args: ParsedArgs, output: BufferedOutput): () => void {
  const dir = args.values.get("snapshot-dir");
  const andStop = args.switches.has("snapshot-and-stop");
  let busy = false;
  return () => {
    output.flush();
    if (dir === undefined) {
      process.stderr.write("\r\nvireo: no --snapshot-dir to save a snapshot in\r\n");
      return;
    }
    if (busy || vm.saveSnapshot === undefined) return;
    busy = true;
    const compression = args.switches.has("snapshot-zlib") ? "zlib" : "none";
    vm.saveSnapshot(dir, { resume: !andStop, compression }).then(
      (r) => {
        busy = false;
        process.stderr.write(
          `\r\nvireo: snapshot saved to ${dir} (${r.pages} pages, ${(r.ramBytes / 2 ** 20).toFixed(1)} MiB of RAM, paused ${Math.round(r.pausedMs)} ms)\r\n`,
        );
        if (andStop) vm.kill();
      },
      (e: unknown) => {
        busy = false;
        process.stderr.write(`\r\nvireo: snapshot failed: ${e instanceof Error ? e.message : String(e)}\r\n`);
      },
    );
  };
}

/**
 * Runs the VM with the terminal attached. Output of the UART (ttyS0) and of the virtio console (hvc0)
 * both go to stdout; keyboard input goes to hvc0 when there is one, else ttyS0, and Ctrl-A c switches.
 */
async function runOnTerminal(
  vm: Vm,
  output: BufferedOutput,
  hvc: boolean,
  onSnapshot: () => void,
): Promise<VmExit> {
  const terminal = attachTerminal(
    process.stdin,
    (bytes) => vm.input(bytes),
    () => vm.kill(),
    hvc
      ? () => {
          const target = vm.switchConsole();
          output.flush();
          process.stderr.write(`\r\nvireo: keyboard input now goes to ${target}\r\n`);
        }
      : undefined,
    undefined,
    onSnapshot,
  );
  process.on("SIGUSR1", onSnapshot);
  const onResize = () => vm.resizeConsole(process.stdout.columns, process.stdout.rows);
  if (hvc && process.stdout.isTTY) process.stdout.on("resize", onResize);
  try {
    vm.start();
    return await vm.wait();
  } finally {
    process.stdout.off("resize", onResize);
    process.off("SIGUSR1", onSnapshot);
    terminal.close();
    output.close();
  }
}

function exitStatus(exit: VmExit): number {
  switch (exit.reason) {
    case "limit":
      process.stderr.write("vireo: instruction limit reached\n");
      return EXIT_LIMIT;
    case "stopped":
      process.stderr.write("\nvireo: stopped from the host (Ctrl-A x)\n");
      return 0;
    case "reboot":
      process.stderr.write("vireo: the guest asked for a reboot; stopping\n");
      return 0;
    case "poweroff":
      return 0;
    case "fatal":
      process.stderr.write(`vireo: vCPU ${exit.vcpu}: ${exit.exit}\n${exit.dump}\n`);
      return EXIT_GUEST_CRASH;
    case "exit":
      if (exit.reboot) process.stderr.write("vireo: the guest asked for a reboot; stopping\n");
      if (exit.code !== 0) process.stderr.write(`vireo: guest exited with code ${exit.code}\n`);
      // Keep failures non-zero even when the code is a multiple of 256.
      return exit.code === 0 ? 0 : exit.code & 0xff || 1;
  }
}
