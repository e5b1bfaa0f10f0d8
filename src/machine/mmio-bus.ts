import type { MmioBus } from "../cpu/riscv/bus.js";
import type { MmioDevice } from "../devices/device.js";

interface Region {
  base: number;
  size: number;
  device: MmioDevice;
}

/** Routes physical addresses outside RAM to the device mapped there. */
export class DeviceBus implements MmioBus {
  private readonly regions: Region[] = [];

  map(base: number, size: number, device: MmioDevice): void {
    for (const r of this.regions) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new Error(`${device.name} at 0x${base.toString(16)} overlaps ${r.device.name}`);
      }
    }
    this.regions.push({ base, size, device });
  }

  read(paddr: number, size: number, out: Uint32Array): boolean {
    const r = this.find(paddr, size);
    out[1] = 0;
    return r ? r.device.read(paddr - r.base, size, out) : false;
  }

  write(paddr: number, size: number, lo: number, hi: number): boolean {
    const r = this.find(paddr, size);
    return r ? r.device.write(paddr - r.base, size, lo, hi) : false;
  }

  private find(paddr: number, size: number): Region | null {
    for (const r of this.regions) {
      if (paddr >= r.base && paddr + size <= r.base + r.size) return r;
    }
    return null;
  }
}
