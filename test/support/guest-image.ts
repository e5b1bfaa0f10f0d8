import type { Riscv64Image } from "../../src/images/riscv64.js";

let announced = false;

/**
 * The default riscv64 guest image, fetched on first use, and the kernel it holds printed once per test
 * file: Debian's current kernel changes under the suite, and a failure should say which one it met.
 */
export async function riscv64Image(): Promise<Riscv64Image> {
  const { ensureRiscv64Image } = await import("../../src/images/riscv64.js");
  const image = await ensureRiscv64Image({ quiet: true });
  if (!announced) {
    announced = true;
    process.stdout.write(`guest kernel: ${image.kernelPackage}\n`);
  }
  return image;
}

/**
 * An API body for a VM of the default Debian guest as the agent tests run it: one hart, 256 MiB, a
 * console on the UART, no disk, NIC, rng or hvc (the daemon wires the agent's vsock itself).
 */
export function debianVmBody(
  image: { kernel: string; initrd: string },
  name: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory: 256 * 2 ** 20,
    boot: { kernel: image.kernel, initrd: image.initrd, cmdline: "console=ttyS0 earlycon=sbi" },
    drives: [],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "split",
    ...extra,
  };
}
