/**
 * The riscv64 `virt` machine in a browser worker, put together the way src/vm/riscv.ts does for a VM
 * (vm/ itself reads files and specs through Node): the board, a virtio-blk root disk in OPFS,
 * virtio-rng on the browser's CSPRNG, virtio-console, a Linux boot with the built-in SBI, and the
 * interpreter engine (optionally translating blocks to wasm).
 */
import type { ByteSink } from "../../../devices/byte-sink.js";
import type { BlockBackend } from "../../../devices/virtio/blk/backend.js";
import { VirtioBlk } from "../../../devices/virtio/blk/virtio-blk.js";
import { VirtioConsole } from "../../../devices/virtio/console/virtio-console.js";
import { VirtioRng } from "../../../devices/virtio/rng/virtio-rng.js";
import { InterpreterEngine } from "../../../engines/interpreter.js";
import { isElf, parseElf } from "../../../machine/loader/elf.js";
import {
  flattenElf,
  isLinuxImage,
  type LinuxImage,
  parseLinuxImage,
} from "../../../machine/loader/linux-image.js";
import { VirtBoard } from "../../../machine/riscv-virt/board.js";
import { bootLinux } from "../../../machine/riscv-virt/linux-boot.js";
import { VIRT_MAP } from "../../../machine/riscv-virt/memory-map.js";

export interface MachineSetup {
  kernel: Uint8Array;
  kernelName: string;
  initrd: Uint8Array | null;
  disk: BlockBackend | null;
  cmdline: string;
  memoryBytes: number;
  translate: boolean;
  console: ByteSink;
}

export interface Machine {
  board: VirtBoard;
  engine: InterpreterEngine;
}

export function createMachine(setup: MachineSetup): Machine {
  const board = new VirtBoard({ memory: setup.memoryBytes, cpus: 1, console: setup.console });
  // The order vm/virtio.ts attaches them in: the drive (so it is /dev/vda), entropy, console.
  if (setup.disk !== null) board.virtio.attach(new VirtioBlk(setup.disk, { serial: "root" }));
  board.virtio.attach(new VirtioRng({ fill: (dst) => crypto.getRandomValues(dst) }));
  board.virtio.attach(new VirtioConsole(setup.console));
  bootLinux(board, {
    kernel: linuxImage(setup.kernel, setup.kernelName, setup.memoryBytes),
    initrd: setup.initrd,
    bootargs: setup.cmdline,
    firmware: null,
  });
  if (setup.translate) board.cpu.enableTranslation();
  return { board, engine: new InterpreterEngine(board) };
}

function linuxImage(bytes: Uint8Array, name: string, ramSize: number): LinuxImage {
  if (isLinuxImage(bytes)) return parseLinuxImage(bytes, name);
  if (isElf(bytes)) return flattenElf(parseElf(bytes, name), VIRT_MAP.dram.base, ramSize, name);
  throw new Error(`${name}: not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56) or ELF`);
}
