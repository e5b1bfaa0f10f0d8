import { Csr } from "../../../cpu/riscv/csr/csr-numbers.js";
import { Wide } from "../../../cpu/riscv/csr/csr-state.js";
import type { Hart } from "../../../cpu/riscv/hart.js";
import { Priv } from "../../../cpu/riscv/state.js";
import { SbiCall, SbiError } from "./abi.js";

/** What the SBI needs from the board around it. */
export interface SbiPlatform {
  readonly harts: readonly Hart[];
  /** Debug console output / input (DBCN, legacy putchar/getchar). */
  consoleWrite(byte: number): void;
  /** false while the console sink is full: DBCN writes then take fewer bytes (absent: never full). */
  consoleWritable?(): boolean;
  consoleRead(): number;
  /** Guest RAM for DBCN buffers; every range is checked with `contains`. */
  readonly ram: {
    base: number;
    bytes: Uint8Array;
    contains(paddr: number, length: number): boolean;
    written?(paddr: number, length: number): void;
  };
  /** SRST: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 1 = system failure. */
  systemReset(type: number, reason: number): void;
  /** Counts for --stats. */
  countCall(extension: string): void;
  /** Lets other harts run soon: the caller is about to wait for them (IPI, remote fence). */
  yieldHart(): void;
}

const EXT = {
  LEGACY_SET_TIMER: 0x00,
  LEGACY_PUTCHAR: 0x01,
  LEGACY_GETCHAR: 0x02,
  LEGACY_SHUTDOWN: 0x08,
  BASE: 0x10,
  TIME: 0x54494d45,
  IPI: 0x735049,
  RFENCE: 0x52464e43,
  HSM: 0x48534d,
  SRST: 0x53525354,
  DBCN: 0x4442434e,
} as const;

const NAMES = new Map<number, string>(Object.entries(EXT).map(([name, id]) => [id, name.toLowerCase()]));
/** SBI specification v2.0. */
const SPEC_VERSION = 2 << 24;
/** Not a registered implementation ID; identifies Vireo's built-in SBI. */
const IMPL_ID = 0x5649_5245;
const IMPL_VERSION = 1;
/** mip.SSIP: a supervisor software interrupt, which is how S-mode receives SBI IPIs. */
const SSIP = 1 << 1;

export enum HartState {
  STARTED = 0,
  STOPPED = 1,
  SUSPENDED = 4,
}

/**
 * Vireo's built-in SBI: the hypervisor answers the kernel's ECALLs itself, so no M-mode firmware runs.
 * BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN and the legacy console/timer/shutdown calls; anything else is
 * SBI_ERR_NOT_SUPPORTED (never a trap into a missing M-mode).
 */
export class SbiFirmware {
  private readonly call = new SbiCall();
  private readonly pair = new Int32Array(2);

  constructor(private readonly platform: SbiPlatform) {}

  /** The ECALL handler: always answers (returns true). */
  handle(hart: Hart): boolean {
    const c = this.call.load(hart);
    const ext = c.extension;
    this.platform.countCall(NAMES.get(ext) ?? `0x${ext.toString(16)}`);
    switch (ext) {
      case EXT.BASE:
        return this.base(c);
      case EXT.TIME:
        return c.function === 0 ? this.setTimer(c, 0) : c.result(SbiError.NOT_SUPPORTED);
      case EXT.IPI:
        return c.function === 0 ? this.sendIpi(c) : c.result(SbiError.NOT_SUPPORTED);
      case EXT.RFENCE:
        return this.remoteFence(c);
      case EXT.HSM:
        return this.hartStateManagement(c);
      case EXT.SRST:
        return this.systemReset(c);
      case EXT.DBCN:
        return this.debugConsole(c);
      case EXT.LEGACY_SET_TIMER:
        this.setTimer(c, 0);
        return this.legacyResult(c, 0);
      case EXT.LEGACY_PUTCHAR:
        this.platform.consoleWrite(c.arg32(0) & 0xff);
        return this.legacyResult(c, 0);
      case EXT.LEGACY_GETCHAR:
        return this.legacyResult(c, this.platform.consoleRead());
      case EXT.LEGACY_SHUTDOWN:
        this.platform.systemReset(0, 0);
        return this.legacyResult(c, 0);
      default:
        return c.result(SbiError.NOT_SUPPORTED);
    }
  }

  isSupported(ext: number): boolean {
    return NAMES.has(ext);
  }

  private base(c: SbiCall): boolean {
    switch (c.function) {
      case 0:
        return c.result(SbiError.SUCCESS, SPEC_VERSION);
      case 1:
        return c.result(SbiError.SUCCESS, IMPL_ID);
      case 2:
        return c.result(SbiError.SUCCESS, IMPL_VERSION);
      case 3:
        return c.result(SbiError.SUCCESS, this.isSupported(c.argNumber(0)) ? 1 : 0);
      case 4:
      case 5:
      case 6:
        // mvendorid, marchid, mimpid: all 0 on this machine.
        return c.result(SbiError.SUCCESS, 0);
      default:
        return c.result(SbiError.NOT_SUPPORTED);
    }
  }

  /** TIME.set_timer: the next timer event, through Sstc's stimecmp (which also clears a pending STIP). */
  private setTimer(c: SbiCall, arg: number): boolean {
    c.argHalves(arg, this.pair);
    c.hart.csr.regs.set(Wide.STIMECMP, this.pair[0] as number, this.pair[1] as number);
    return c.result(SbiError.SUCCESS);
  }

  private sendIpi(c: SbiCall): boolean {
    const targets = this.targets(c);
    if (targets === null) return c.result(SbiError.INVALID_PARAM);
    for (const h of targets) {
      h.csr.regs.mipSoft |= SSIP;
      h.waiting = false;
    }
    if (targets.length > 1 || targets[0] !== c.hart) this.platform.yieldHart();
    return c.result(SbiError.SUCCESS);
  }

  /** remote_fence_i has nothing to do (no instruction cache); SFENCE.VMA variants flush the TLBs. */
  private remoteFence(c: SbiCall): boolean {
    const fid = c.function;
    if (fid > 2) return c.result(SbiError.NOT_SUPPORTED);
    const targets = this.targets(c);
    if (targets === null) return c.result(SbiError.INVALID_PARAM);
    if (fid !== 0) for (const h of targets) h.tlb.flushTranslated();
    if (targets.length > 1 || targets[0] !== c.hart) this.platform.yieldHart();
    return c.result(SbiError.SUCCESS);
  }

  private hartStateManagement(c: SbiCall): boolean {
    const harts = this.platform.harts;
    switch (c.function) {
      case 0: {
        const id = c.argNumber(0);
        const target = harts[id];
        if (target === undefined || id < 0) return c.result(SbiError.INVALID_PARAM);
        if (!target.stopped) return c.result(SbiError.ALREADY_AVAILABLE);
        c.argHalves(1, this.pair);
        const startLo = this.pair[0] as number;
        const startHi = this.pair[1] as number;
        c.argHalves(2, this.pair);
        startSupervisor(target, startLo, startHi, this.pair[0] as number, this.pair[1] as number);
        return c.result(SbiError.SUCCESS);
      }
      case 1:
        c.hart.stopped = true;
        return c.result(SbiError.SUCCESS);
      case 2: {
        const target = harts[c.argNumber(0)];
        if (target === undefined) return c.result(SbiError.INVALID_PARAM);
        const state = target.stopped ? HartState.STOPPED : HartState.STARTED;
        return c.result(SbiError.SUCCESS, state);
      }
      case 3: {
        // Only the default retentive suspend: it behaves as WFI.
        if (c.arg32(0) !== 0) return c.result(SbiError.NOT_SUPPORTED);
        c.hart.waiting = true;
        return c.result(SbiError.SUCCESS);
      }
      default:
        return c.result(SbiError.NOT_SUPPORTED);
    }
  }

  private systemReset(c: SbiCall): boolean {
    const type = c.arg32(0);
    const reason = c.arg32(1);
    if (c.function !== 0) return c.result(SbiError.NOT_SUPPORTED);
    if (type > 2 || reason > 1) return c.result(SbiError.INVALID_PARAM);
    this.platform.systemReset(type, reason);
    return c.result(SbiError.SUCCESS);
  }

  private debugConsole(c: SbiCall): boolean {
    const ram = this.platform.ram;
    switch (c.function) {
      case 0:
      case 1: {
        const length = c.argNumber(0);
        const hiAddress = c.arg32(2);
        const address = hiAddress * 2 ** 32 + c.arg32(1);
        if (length < 0 || !ram.contains(address, length)) return c.result(SbiError.INVALID_PARAM);
        const at = address - ram.base;
        if (c.function === 0) {
          // A partial write is allowed (the caller retries the rest): a full console stalls the guest.
          let n = 0;
          for (; n < length && this.platform.consoleWritable?.() !== false; n++) {
            this.platform.consoleWrite(ram.bytes[at + n] as number);
          }
          return c.result(SbiError.SUCCESS, n);
        }
        let n = 0;
        for (; n < length; n++) {
          const byte = this.platform.consoleRead();
          if (byte < 0) break;
          ram.bytes[at + n] = byte;
        }
        ram.written?.(address, n);
        return c.result(SbiError.SUCCESS, n);
      }
      case 2:
        this.platform.consoleWrite(c.arg32(0) & 0xff);
        return c.result(SbiError.SUCCESS);
      default:
        return c.result(SbiError.NOT_SUPPORTED);
    }
  }

  /** Legacy calls return their value in a0 only. */
  private legacyResult(c: SbiCall, value: number): boolean {
    c.hart.writeX(10, value, value < 0 ? -1 : 0);
    return true;
  }

  /** Harts named by (hart_mask, hart_mask_base); null if the mask names a hart that does not exist. */
  private targets(c: SbiCall): Hart[] | null {
    const harts = this.platform.harts;
    const base = c.argNumber(1);
    if (base === -1) return [...harts];
    c.argHalves(0, this.pair);
    const out: Hart[] = [];
    for (let bit = 0; bit < 64; bit++) {
      const word = bit < 32 ? (this.pair[0] as number) : (this.pair[1] as number);
      if (((word >>> (bit & 31)) & 1) === 0) continue;
      const h = harts[base + bit];
      if (h === undefined) return null;
      out.push(h);
    }
    return out;
  }
}

/**
 * Puts a hart in S-mode at `start` with a0 = hartid and a1 = opaque, translation off, as SBI HSM
 * hart_start and the boot hart's entry both require.
 */
export function startSupervisor(
  h: Hart,
  startLo: number,
  startHi: number,
  opaqueLo: number,
  opaqueHi: number,
): void {
  const csr = h.csr;
  csr.priv = Priv.M;
  csr.write(Csr.SATP, 0, 0);
  csr.write(Csr.SSTATUS, 0, 0);
  h.writeX(10, h.index, 0);
  h.writeX(11, opaqueLo, opaqueHi);
  h.setPc(startLo, startHi);
  csr.priv = Priv.S;
  h.tlb.flushAll();
  h.selectTlb();
  h.stopped = false;
  h.waiting = false;
}
