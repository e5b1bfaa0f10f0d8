/**
 * KVM's dirty-page log of one RAM slot, for live migration: the slot is registered again with
 * KVM_MEM_LOG_DIRTY_PAGES, and each KVM_GET_DIRTY_LOG hands over (and clears) the bitmap of the pages
 * the guest wrote since the last one. The bitmap is KVM's: unsigned longs, bit i of the slot = page i,
 * which on little-endian x86-64 is byte i >> 3, bit i & 7 — the memory file's bitmap layout.
 *
 * Only the guest's own writes are logged: writes from this process (virtio devices filling buffers) are
 * not, so whoever migrates must send those pages some other way.
 */
import * as libc from "../libc.js";
import { IOCTL } from "./abi.js";
import type { GuestRam } from "./guest-ram.js";
import type { Vm } from "./kvm.js";

const KVM_MEM_LOG_DIRTY_PAGES = 1;
const PAGE = 4096;

export class DirtyLog {
  private readonly bytes: number;
  /** KVM writes the bitmap through a pointer: it lives in memory of our own mapping. */
  private readonly address: bigint;
  private readonly bitmap: Uint8Array;
  private on = false;
  private released = false;

  constructor(
    private readonly vm: Vm,
    private readonly ram: GuestRam,
    private readonly slot = 0,
  ) {
    const region = ram.regions[slot];
    if (region === undefined) throw new RangeError(`no RAM region ${slot}`);
    // Whole u64 words, as KVM writes them.
    this.bytes = Math.ceil(region.size / PAGE / 64) * 8;
    this.address = libc.mmap(
      this.bytes,
      libc.PROT_READ | libc.PROT_WRITE,
      libc.MAP_PRIVATE | libc.MAP_ANONYMOUS,
      -1,
      "dirty bitmap",
    );
    this.bitmap = new Uint8Array(libc.view(this.address, this.bytes));
  }

  private register(flags: number): void {
    const region = this.ram.regions[this.slot] as { base: number; size: number };
    this.vm.setMemoryRegion(this.slot, region.base, region.size, this.ram.hostAddress(this.slot), flags);
  }

  /** Starts logging: from now on every page the guest writes is marked. */
  start(): void {
    if (this.on) return;
    this.register(KVM_MEM_LOG_DIRTY_PAGES);
    this.on = true;
  }

  /** The pages written since start() or the last take() (a copy, one bit a page); clears KVM's log. */
  take(): Uint8Array {
    const arg = new Uint8Array(16);
    const v = new DataView(arg.buffer);
    v.setUint32(0, this.slot, true);
    v.setBigUint64(8, this.address, true);
    libc.ioctlPtr(this.vm.fd, IOCTL.GET_DIRTY_LOG, arg, "KVM_GET_DIRTY_LOG");
    const pages = (this.ram.regions[this.slot] as { size: number }).size / PAGE;
    return this.bitmap.slice(0, Math.ceil(pages / 8));
  }

  /** Stops logging (the slot is registered as before). */
  stop(): void {
    if (!this.on) return;
    this.on = false;
    this.register(0);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.stop();
    } finally {
      libc.munmap(this.address, this.bytes);
    }
  }
}
