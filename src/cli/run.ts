/**
 * `vireo run`, the command and its flags; its body (flags → VmSpec → createVm on the Node host → the
 * terminal attached → start → wait → --stats → exit status) is run-guest.ts, loaded when it runs.
 * riscv64 guests run on the translator (or the interpreter alone), x86_64 guests on KVM.
 */

import { Command } from "commander";
import { BACKEND_FLAGS } from "./backend-flags.js";
import { DEVICE_FLAGS } from "./device-flags.js";
import { addFlags, type FlagSpec, parsedArgs } from "./flags.js";

/** `vireo run`'s flags: the device flags, and what only a run in the terminal has. */
const RUN_FLAGS: FlagSpec = {
  ...DEVICE_FLAGS,
  "dump-dtb": {
    kind: "value",
    arg: "FILE",
    help: "riscv64: write the generated device tree to FILE and exit",
  },
  stats: { kind: "switch", help: "print instruction and device counters on stderr at the end" },
  "root-disk": {
    kind: "switch",
    help: "riscv64: boot the default image's ext4 root disk as /dev/vda (writable copy)",
  },
  restore: {
    kind: "value",
    arg: "DIR",
    help: "continue the guest saved in the snapshot DIR (the VM comes from it: no VM flags)",
  },
  "snapshot-dir": {
    kind: "value",
    arg: "DIR",
    help: "Ctrl-A s or SIGUSR1 saves a snapshot of the running guest into DIR (one file if DIR ends in .vsnap)",
  },
  "snapshot-zlib": { kind: "switch", help: "with --snapshot-dir: compress the snapshot's memory file" },
  "snapshot-and-stop": {
    kind: "switch",
    help: "with --snapshot-dir: stop the VM after the snapshot (its disks stay as the snapshot saw them)",
  },
  ...BACKEND_FLAGS,
};

/** Flags that may go with --restore: the rest describe a VM, and the snapshot has its own. */
export const RESTORE_FLAGS = new Set([
  "restore",
  "stats",
  "snapshot-dir",
  "snapshot-and-stop",
  "snapshot-zlib",
  ...Object.keys(BACKEND_FLAGS),
]);

const RUN_NOTES = `
Ctrl-A x quits; Ctrl-A s saves a snapshot (with --snapshot-dir). Output of ttyS0 and of hvc0 (--virtio-console) both goes to the terminal.
--net NICs naming the same switch share it; tap:IFNAME needs CAP_NET_ADMIN; MACs default to
52:54:00:76:00:<n>. With --vsock uds=PATH, a host client that connects to PATH and writes
"CONNECT <port>\n" gets "OK <hostport>\n" and a stream to the guest's port; guest connections to host
port P go to the Unix socket PATH_P. An x86_64 guest that crashes exits with status 3.`;

/** The `run` command: flags attached from RUN_FLAGS, the run reported through `done`. */
export function runCommandDef(done: (status: number) => void): Command {
  const cmd = new Command("run").description("boot a guest with the terminal attached");
  addFlags(cmd, RUN_FLAGS).addHelpText("after", RUN_NOTES);
  // The VM stack is loaded when a guest is to run, not to build the command tree (or print help).
  return cmd.action(async () => {
    const { runCommand } = await import("./run-guest.js");
    done(await runCommand(parsedArgs(cmd, RUN_FLAGS)));
  });
}
