import type { FlagSpec } from "./flags.js";

/**
 * The device flags, shared by `vireo run` and `vireo vm create` (one definition: both commands get
 * them from here, and both turn them into a VmSpec with run-spec.ts's `runSpecFromFlags`). Not in
 * run-spec.ts itself: the command tree is built from them without loading the VmSpec schema.
 */
export const DEVICE_FLAGS: FlagSpec = {
  arch: { kind: "value", arg: "ARCH", help: "riscv64 (default) or x86_64 (under KVM)" },
  engine: {
    kind: "value",
    arg: "ENGINE",
    help: "auto (default: translate on riscv64, kvm on x86_64), translate (riscv64: hot code compiled to wasm), interpreter, kvm",
  },
  kernel: {
    kind: "value",
    arg: "FILE",
    help: "the guest kernel (Image, bzImage or PVH ELF; with --bios none a bare-metal ELF or raw binary); default: the Debian guest image, fetched on first use",
  },
  initrd: { kind: "value", arg: "FILE", help: "an initramfs for the kernel" },
  append: { kind: "value", arg: "CMDLINE", help: "the kernel command line" },
  bios: {
    kind: "value",
    arg: "FIRMWARE",
    help: "builtin (default), none (run --kernel in M-mode) or an M-mode firmware file (OpenSBI, raw or ELF)",
  },
  memory: {
    kind: "value",
    arg: "SIZE",
    help: "guest RAM (default 512M): 1M to 3G for riscv64, 4M up to the host's free memory for x86_64",
  },
  cpus: { kind: "value", arg: "N", help: "virtual CPUs (default 1)" },
  "max-insns": { kind: "value", arg: "N", help: "stop after N guest instructions (exit status 124)" },
  "cpu-features": { kind: "value", arg: "LIST", help: "x86_64: CPUID features to hide, e.g. -x2apic,-cx16" },
  drive: {
    kind: "repeatable",
    arg: "SPEC",
    help: "file=PATH[,readonly=on][,id=NAME]: a raw disk image as virtio-blk (the first is /dev/vda; repeatable)",
  },
  rng: { kind: "switch", help: "a virtio entropy device" },
  "virtio-console": {
    kind: "switch",
    help: "a second console (/dev/hvc0) that gets the keyboard (Ctrl-A c switches between hvc0 and ttyS0)",
  },
  balloon: {
    kind: "switch",
    help: "a virtio memory balloon (host memory behind inflated pages is released)",
  },
  "balloon-target": {
    kind: "value",
    arg: "SIZE",
    help: "ask the guest to give SIZE back once its balloon driver is up (implies --balloon)",
  },
  net: {
    kind: "repeatable",
    arg: "SPEC",
    help: "switch[:NAME] or tap:IFNAME, then [,mac=MAC]: a virtio-net NIC on an in-process switch or a host TAP (repeatable)",
  },
  vsock: {
    kind: "value",
    arg: "SPEC",
    help: "cid=N[,uds=PATH]: a virtio-vsock device (guest CID 3 by default), bridged to Unix sockets at PATH",
  },
  "no-keyboard": {
    kind: "switch",
    help: "no virtio keyboard (riscv64 Linux boots get one: it carries `vireo vm stop`'s Ctrl-Alt-Del, the guest's cue to power off)",
  },
  "virtio-ring": {
    kind: "value",
    arg: "FORMAT",
    help: "packed (default: offered, the driver chooses) or split",
  },
};
