/**
 * eventfds between KVM and the main thread's device models: doorbells (KVM_IOEVENTFD: a guest write
 * signals an eventfd inside the kernel, the vCPU does not leave the guest) and interrupt lines
 * (KVM_IRQFD: signalling an eventfd asserts a GSI of the in-kernel irqchip, no ioctl per interrupt).
 * Readiness comes from koffi's libuv poll, so device work runs on the event loop between forwarded exits.
 */
import type { InterruptLine } from "../../devices/device.js";
import * as libc from "../libc.js";
import type { Vm } from "./kvm.js";

/** A non-blocking eventfd, optionally watched on the event loop. */
export class EventFd {
  readonly fd: number;
  private watch: libc.FdWatch | null = null;

  constructor() {
    this.fd = libc.eventfd(libc.EFD_NONBLOCK);
  }

  /** The signals since the last read (0 if none); resets the counter. */
  read(): number {
    return libc.eventfdRead(this.fd);
  }

  signal(): void {
    libc.eventfdWrite(this.fd, 1);
  }

  /**
   * Calls `onSignals(n)` on the event loop with the counter (drained first) each time the eventfd is
   * signalled; several signals between two wake-ups arrive as one call.
   */
  onSignals(onSignals: (count: number) => void): void {
    if (this.watch !== null) throw new Error("eventfd is already watched");
    this.watch = libc.watchReadable(this.fd, (status) => {
      if (status < 0) return;
      const n = this.read();
      if (n > 0) onSignals(n);
    });
  }

  close(): void {
    this.watch?.close();
    this.watch = null;
    libc.close(this.fd);
  }
}

export interface IrqfdCounters {
  /** Writes to the irqfd (each asserts the GSI, or keeps it asserted). */
  signals: number;
  /** Resample notifications: the guest acknowledged the interrupt and KVM deasserted the GSI. */
  resamples: number;
}

/**
 * A level-triggered interrupt line into the in-kernel IOAPIC through an irqfd with a resample eventfd
 * (KVM_IRQFD_FLAG_RESAMPLE). Rising: signal the irqfd, KVM asserts the GSI. KVM keeps it asserted until
 * the guest's EOI, then deasserts it and signals the resample eventfd; if the device's line is still up
 * by then (InterruptStatus not yet acknowledged, or raised again), the irqfd is signalled again. So the
 * guest sees a level that is high whenever the device wants service, and a lowering needs no syscall.
 * With an IOAPIC pin the guest programmed edge-triggered the same holds: each re-assertion is a new edge.
 */
export class IrqfdLine implements InterruptLine {
  readonly counters: IrqfdCounters = { signals: 0, resamples: 0 };
  private level = false;
  private readonly trigger = new EventFd();
  private readonly resample = new EventFd();
  private closed = false;

  constructor(
    vm: Vm,
    readonly gsi: number,
  ) {
    try {
      vm.irqfd(this.trigger.fd, gsi, this.resample.fd);
      this.resample.onSignals(() => {
        this.counters.resamples++;
        if (this.level) this.assert();
      });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    if (level) this.assert();
  }

  private assert(): void {
    if (this.closed) return;
    this.counters.signals++;
    this.trigger.signal();
  }

  /** Stops watching and closes both eventfds (KVM drops the irqfd when the VM closes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.resample.close();
    this.trigger.close();
  }
}
