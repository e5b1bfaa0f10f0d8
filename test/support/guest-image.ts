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
