/**
 * A Linux TAP interface as a virtio-net backend: /dev/net/tun opened non-blocking, attached to
 * interface IFNAME with TUNSETIFF (IFF_TAP | IFF_NO_PI: every read and write is one Ethernet frame, no
 * packet-information prefix). The TAP is created if it does not exist (a persistent one, e.g. from
 * `ip tuntap add`, is attached to); either needs CAP_NET_ADMIN unless the TAP's owner allows us.
 *
 * Reading is driven by the event loop: koffi's libuv poll watches the descriptor and each wakeup reads
 * frames until EAGAIN (at most READ_BATCH, so a flood cannot keep the loop from the VMs; the poll is
 * level-triggered and comes back). Writes are one `write` per frame; a frame the kernel refuses
 * (EAGAIN, ENOBUFS, EIO while the interface is down) is dropped and counted.
 */
import { closeSync, constants, openSync, readSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import { errnoName, ioctlPtr, SysError } from "../hypervisor/libc.js";

type Koffi = typeof import("koffi");
type PollHandle = ReturnType<Koffi["node"]["poll"]>;

/** _IOW('T', 202, int) */
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
/** struct ifreq: char ifr_name[IFNAMSIZ], then a union whose first member here is short ifr_flags. */
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const IFR_FLAGS = 16;
/** Largest frame read: a 64 KiB payload and headers. */
const READ_BUFFER = 65550 + 14;
/** Frames read per wakeup before the event loop gets a turn. */
const READ_BATCH = 64;

export interface TapCounters {
  /** Frames read from the TAP (for the guest) and written to it (from the guest). */
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Guest frames the kernel did not take. */
  txDropped: number;
}

/** Interface names Linux accepts, restricted to a safe set: 1 to 15 of letters, digits, '_', '.', '-'. */
export const TAP_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

let koffi: Koffi | null = null;

function loadKoffi(): Koffi {
  if (koffi !== null) return koffi;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch (e) {
    throw new Error(`cannot load koffi (needed for TAP networking): ${(e as Error).message.split("\n")[0]}`);
  }
  return koffi;
}

export class TapBackend implements NetBackend {
  readonly counters: TapCounters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDropped: 0 };
  private handler: ((frame: Uint8Array) => void) | null = null;
  private readonly buffer = Buffer.alloc(READ_BUFFER);
  private poller: PollHandle | null;
  private fd: number;
  /** Why reading stopped (a read error other than EAGAIN), or null. */
  failure: string | null = null;

  private constructor(
    fd: number,
    /** The interface's name as the kernel reports it. */
    readonly name: string,
    k: Koffi,
  ) {
    this.fd = fd;
    // The callback gets (status, events); index.d.ts declares only the events.
    const onReady = (status: number) => this.drain(status);
    this.poller = k.node.poll(fd, { readable: true }, onReady as never);
  }

  /**
   * Opens /dev/net/tun and attaches to (or creates) TAP `name`. Throws an Error whose message says what
   * failed (ENOENT: no /dev/net/tun; EPERM: not allowed; EBUSY: the TAP is in use).
   */
  static open(name: string): TapBackend {
    if (!TAP_NAME.test(name)) throw new Error(`TAP name '${name}': 1 to 15 letters, digits, '_', '.' or '-'`);
    const k = loadKoffi();
    let fd: number;
    try {
      // libuv opens every file close-on-exec.
      fd = openSync("/dev/net/tun", constants.O_RDWR | constants.O_NONBLOCK);
    } catch (e) {
      throw new Error(`cannot open /dev/net/tun: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    const ifr = new Uint8Array(IFREQ_SIZE);
    for (let i = 0; i < name.length; i++) ifr[i] = name.charCodeAt(i);
    new DataView(ifr.buffer).setUint16(IFR_FLAGS, IFF_TAP | IFF_NO_PI, true);
    try {
      ioctlPtr(fd, TUNSETIFF, ifr, "TUNSETIFF");
    } catch (e) {
      closeSync(fd);
      const why = e instanceof SysError ? errnoName(e.errno) : (e as Error).message;
      const hint =
        why === "EPERM"
          ? " (needs CAP_NET_ADMIN, or a persistent TAP owned by this user)"
          : why === "EBUSY"
            ? " (another process has it open)"
            : "";
      throw new Error(`cannot attach TAP '${name}': ${why}${hint}`);
    }
    const end = ifr.indexOf(0);
    const actual = String.fromCharCode(...ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end));
    try {
      return new TapBackend(fd, actual, k);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  send(frame: Uint8Array): void {
    if (this.fd < 0) return;
    try {
      writeSync(this.fd, frame);
      this.counters.txFrames++;
      this.counters.txBytes += frame.length;
    } catch {
      this.counters.txDropped++;
    }
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  close(): void {
    if (this.fd < 0) return;
    this.poller?.close();
    this.poller = null;
    closeSync(this.fd);
    this.fd = -1;
    this.handler = null;
  }

  /** The descriptor is readable: hand frames to the device until the kernel has none (or a batch). */
  private drain(status: number): void {
    if (this.fd < 0) return;
    if (status < 0) {
      this.fail(`poll: libuv status ${status}`);
      return;
    }
    for (let n = 0; n < READ_BATCH; n++) {
      let length: number;
      try {
        length = readSync(this.fd, this.buffer, 0, READ_BUFFER, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EINTR") return;
        this.fail(`read: ${code ?? e}`);
        return;
      }
      if (length <= 0) return;
      this.counters.rxFrames++;
      this.counters.rxBytes += length;
      this.handler?.(this.buffer.subarray(0, length));
      if (this.fd < 0) return;
    }
  }

  private fail(reason: string): void {
    this.failure = reason;
    this.poller?.close();
    this.poller = null;
  }
}
