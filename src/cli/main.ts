#!/usr/bin/env node
import { UserError } from "../util/errors.js";
import { daemonCommand } from "./daemon.js";
import { imagesCommand } from "./images.js";
import { runCommand } from "./run.js";
import { VM_USAGE, vmCommand } from "./vm.js";

const USAGE = `usage: vireo run [--kernel FILE] [--initrd FILE] [--append CMDLINE] [--arch riscv64|x86_64]
                 [--engine auto|interpreter|kvm] [--bios builtin|none|FIRMWARE] [--memory 512M]
                 [--cpus N] [--max-insns N] [--dump-dtb FILE] [--cpu-features -x2apic,-cx16] [--stats]
                 [--drive file=PATH[,readonly=on][,id=NAME]]... [--rng] [--virtio-console]
                 [--balloon] [--balloon-target SIZE] [--net switch[:NAME]|tap:IFNAME[,mac=MAC]]...
                 [--vsock cid=N[,uds=PATH]] [--virtio-ring packed|split]
       vireo images fetch|list|path [--arch riscv64|x86_64] [--force] [--keep-debs] [--kernel-version V]
       vireo daemon [--socket PATH] [--state-dir DIR] [--stop-grace-ms MS] [--openapi]
                    [--listen HOST:PORT [--listen-any]]
       vireo vm VERB ... (vireo vm --help)
       vireo --help | --version

Without --kernel, 'run' boots the default Debian guest (fetched on first use) to a shell.
--memory takes 1M to 3G for riscv64, 4M up to the host's available memory for x86_64 (multiples of 4K).
--bios none runs a bare-metal ELF or raw binary in M-mode; Ctrl-A x quits. --bios FIRMWARE takes an M-mode
firmware (OpenSBI) as a raw binary or a RISC-V ELF that starts at the start of RAM.
--drive attaches a raw disk image as virtio-blk (the first is /dev/vda; repeat for more), --rng a
virtio entropy device, --virtio-console a second console (/dev/hvc0): the output of ttyS0 and hvc0
both goes to the terminal, keyboard input to hvc0 (Ctrl-A c switches it between hvc0 and ttyS0).
--balloon adds a virtio memory balloon (host memory behind inflated pages is released); with
--balloon-target SIZE (implies --balloon) the guest is asked to give SIZE back once its driver is up.
--net adds a virtio-net NIC (repeatable) on an in-process virtual switch (NICs naming the same switch
share it) or on a host TAP interface (needs CAP_NET_ADMIN); its MAC defaults to 52:54:00:76:00:<n>.
--vsock adds a virtio-vsock device (guest CID 3 unless cid=N); with uds=PATH, a host client that
connects to the Unix socket PATH and writes "CONNECT <port>\n" gets "OK <hostport>\n" and a stream to
the guest's port, and guest connections to host port P go to the Unix socket PATH_P.
--virtio-ring split stops offering packed virtqueues (VIRTIO_F_RING_PACKED, offered by default; the
guest's driver chooses).
--arch x86_64 boots a bzImage or a PVH ELF kernel under KVM (/dev/kvm), without --kernel the default
x86_64 guest's vmlinux through PVH; a guest that crashes exits with status 3.
'daemon' owns many VMs and serves a REST API on a Unix socket (default $XDG_RUNTIME_DIR/vireo/vireo.sock,
definitions in $XDG_STATE_HOME/vireo) until SIGTERM; with --listen also on TCP, where each request
needs the bearer token made at first start (printed once, kept 0600 in the state directory as
api-token); --listen refuses an address that is not loopback unless --listen-any is given.
'vm' drives it:
${VM_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runCommand(rest);
    case "images":
      return imagesCommand(rest);
    case "daemon":
      return daemonCommand(rest);
    case "vm":
      return vmCommand(rest);
    case undefined:
    case "--help":
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    case "--version":
      process.stdout.write("vireo 0.1.0\n");
      return 0;
    default:
      throw new UserError(`unknown command '${command}' (try 'vireo --help')`);
  }
}

// A reader that goes away (`vireo images list | head -1`) ends the output, as SIGPIPE ends a C tool;
// without a listener Node throws EPIPE out of the event loop as an internal error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(process.exitCode ?? 0);
  });
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    if (error instanceof UserError) {
      process.stderr.write(`vireo: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`vireo: internal error: ${(error as Error).stack ?? error}\n`);
      process.exitCode = 70;
    }
  },
);
